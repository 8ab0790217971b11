"""Simulated clients that speak the real wire protocol: raftkube's own :class:`Client`.

Each :class:`WireClient` is a machine of its own in the world (a
:class:`~raftkube_fuzz.world.host.Host` named ``c<id>`` with its own clock), and runs the
production client library, unmodified, over the in-world byte streams to the members' real
client listeners (``serve_clients``). So every request crosses the encoder, the framing, the
listener's decoder, :meth:`Member.submit`, and back; the faults hit it where they hit a real
client: partitions stall its connection, crashes reset it, paused members stop answering.

The client library's retries are part of what is tested. A client *with a session* opens one
(:meth:`Client.open_session`) before its first write on each connection and retries its writes
across timeouts, dropped connections and leader changes, relying on the cluster to apply each
once; a client *without one* uses ``at_most_once=True`` and so resends a write only after a
failure that proves it was not applied. Either way the outcome recorded into the
:class:`~raftkube_fuzz.checks.history.History` follows the library's contract:

* ``Ok(result)``: an answer (a KV error is an answer too);
* ``Unknown``: :class:`~raftkube.client.IndeterminateError`, or the simulated caller's own
  deadline expiring while a write was out;
* ``Failed(code)``: any other error (the library raises those only when no attempt can have
  been applied), and any failed read (reads change nothing).

A request names the member to start with (``member``): the client library is pointed at
that member's endpoint (:meth:`Client.use_endpoint`) and follows leader hints from there; it
keeps a connection per endpoint, so this costs no new connection. :meth:`WireClient.open`
starts the library and opens the session before the first step, as a client does at start-up,
so that the steps' requests are not delayed by a registration round.

Watches (:meth:`WireClient.watch`) go over the wire too, through :meth:`Client.watch`, and
collect into the same :class:`~raftkube_fuzz.world.client.WatchHandle` the in-process watches
fill: its events in delivery order, and how it ended (compacted, or cancelled once its
connection broke).
"""

from __future__ import annotations

import traceback

import attrs
import trio

from raftkube.client import (
    Client,
    ClientError,
    IndeterminateError,
    KVRequestError,
    WatchCompactedError,
)
from raftkube.client.connection import BrokenError
from raftkube_fuzz.checks.history import Failed, History, Ok, Outcome, Unknown
from raftkube_fuzz.world.client import WatchHandle, is_read
from raftkube_fuzz.world.driver import CancelAfter
from raftkube_fuzz.world.host import Host, HostEnv
from raftkube_fuzz.world.world import World
from raftkube_spec.kv.requests import Request


@attrs.define(eq=False)
class ClientProcess:
    """A client machine's program: a nursery its :class:`Client` objects live in."""

    env: HostEnv
    nursery: trio.Nursery | None = None

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            await trio.sleep_forever()


async def _hold(client: Client, *, task_status: trio.TaskStatus[None]) -> None:
    async with client:
        task_status.started()
        await trio.sleep_forever()


class WireClient:
    """One client machine; ``request`` may run concurrently in several tasks."""

    def __init__(self, world: World, client_id: int, history: History, *, session: bool) -> None:
        self.world = world
        self.client_id = client_id
        self.history = history
        self.session = session
        self.host: Host = world.add_host(f"c{client_id}", ClientProcess)
        self._clients: dict[int | None, Client] = {}
        """The requests' client (key None) and a watch client per member."""
        self._opening: dict[int | None, trio.Lock] = {}

    def _new_client(self, member: int | None, env: HostEnv) -> Client:
        endpoints = self.world.client_endpoints
        if member is None:
            order = [ep for _, ep in sorted(endpoints.items())]
        else:
            order = [endpoints[member]]
        config = self.world.config
        return Client(
            order,
            attempts=4 * len(endpoints),
            retry_delay=config.tick_interval,
            request_timeout=config.request_timeout,
            clock=env.clock,
            network=env.network,
            at_most_once=not self.session,
        )

    async def open(self) -> None:
        """Start the client library and, for a client with a session, open it (retried until
        it succeeds: the caller bounds the wait)."""
        while True:
            try:
                await self._client(None)
                return
            except ClientError:
                await trio.sleep(self.world.config.tick_interval)

    async def _client(self, member: int | None) -> Client:
        """The requests' :class:`Client` (``member`` None: all endpoints, its session opened)
        or the watch client of ``member`` (that endpoint only: a watch is served by any
        member, so it must never follow a leader hint away); started on first use."""
        key = member
        ready = self._clients.get(key)
        if ready is not None and (key is not None or not self.session or ready.session_id):
            return ready  # the usual case, without the lock's scheduler pass
        lock = self._opening.setdefault(key, trio.Lock())
        async with lock:
            client = self._clients.get(key)
            if client is None:
                process = self.host.process
                if not isinstance(process, ClientProcess) or process.nursery is None:
                    raise ClientError("unavailable", "the client machine is down")
                client = self._new_client(member, process.env)
                await process.nursery.start(_hold, client)
                self._clients[key] = client
            if self.session and key is None and client.session_id is None:
                await client.open_session()
            return client

    async def request(
        self, req: Request, *, member: int, serializable: bool = False, timeout: float
    ) -> Outcome:
        """Send ``req`` starting at ``member``, record it, return the outcome."""
        read = is_read(req)
        op_id = self.history.invoke(
            self.client_id, req, trio.current_time(), serializable=read and serializable
        )
        outcome = await self._outcome(req, member, read, read and serializable, timeout)
        self.history.complete(op_id, outcome, trio.current_time())
        return outcome

    async def _outcome(
        self, req: Request, member: int, read: bool, serializable: bool, timeout: float
    ) -> Outcome:
        sent = False
        with CancelAfter(timeout):
            try:
                client = await self._client(None)
                client.use_endpoint(self.world.client_endpoints[member])
                sent = not read
                return Ok(await client.request(req, serializable=serializable))
            except (ClientError, trio.TooSlowError) as exc:
                return outcome_of_error(exc, read=read)
            except Exception as exc:
                # Not the library's contract: a bug, reported as the client machine's.
                text = "client: " + "".join(traceback.format_exception(exc))
                self.world.failures.append((self.host.node, text))
                return Unknown(f"client error: {type(exc).__name__}")
        return Unknown("client deadline") if sent else Failed("client deadline")

    async def watch(
        self, member: int, key: bytes, range_end: bytes = b"", start_revision: int = 0
    ) -> WatchHandle:
        """Open a watch at ``member`` (0: from the next revision on); returns once the member
        has registered it (or the attempt failed: the handle is then cancelled at once)."""
        client = await self._client(member)
        process = self.host.process
        assert isinstance(process, ClientProcess) and process.nursery is not None
        handle = WatchHandle(member, key, range_end, start_revision)
        await process.nursery.start(follow_watch, client, handle)
        return handle


def outcome_of_error(exc: ClientError | trio.TooSlowError, *, read: bool) -> Outcome:
    """What a client may record when the library raised ``exc`` for a request (a read if
    ``read``), by the library's contract: a KV error is an answer, an indeterminate write or
    one that timed out may or may not have been applied, anything else was refused before it
    could be. Shared with the nemesis (:mod:`raftkube_fuzz.nemesis`), which records real
    processes' answers the same way."""
    if isinstance(exc, trio.TooSlowError):
        return Failed("timeout") if read else Unknown("client timeout")
    if isinstance(exc, KVRequestError):
        return Ok(exc.error)
    if isinstance(exc, IndeterminateError):
        return Failed(exc.code) if read else Unknown(f"{exc.code}: {exc.message}")
    return Failed(exc.code)


async def follow_watch(
    client: Client, handle: WatchHandle, *, task_status: trio.TaskStatus[None]
) -> None:
    """Open ``handle``'s watch through ``client`` and collect its events into it until the
    watch ends; reports started once the member registered it (or the attempt failed, and the
    handle is then cancelled). Shared with the nemesis."""
    started = False
    try:
        watch = client.watch(handle.key, handle.range_end, start_revision=handle.start_revision)
        async with watch as events:
            handle.start_revision = events.start_revision
            task_status.started()
            started = True
            with handle._scope:
                async for event in events:
                    handle.events.append(event)
    except WatchCompactedError as exc:
        handle.end = "compacted"
        handle.compact_revision = exc.compact_revision
    except (ClientError, BrokenError, trio.EndOfChannel, trio.BrokenResourceError):
        pass
    finally:
        if handle.end == "open":
            handle.end = "cancelled"
    if not started:
        task_status.started()
