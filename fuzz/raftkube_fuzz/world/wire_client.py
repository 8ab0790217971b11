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

A request names the member to start with (``member``): the client keeps one
:class:`Client` per member it was pointed at, each with that member's endpoint first, so
concurrent requests aimed at different members do not tear each other's connection down.
"""

from __future__ import annotations

import traceback

import attrs
import trio

from raftkube.client import Client, ClientError, IndeterminateError, KVRequestError
from raftkube_fuzz.checks.history import Failed, History, Ok, Outcome, Unknown
from raftkube_fuzz.world.client import is_read
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
        self._clients: dict[int, Client] = {}
        self._opening: dict[int, trio.Lock] = {}

    def _new_client(self, member: int, env: HostEnv) -> Client:
        endpoints = self.world.client_endpoints
        order = [endpoints[member], *(ep for m, ep in sorted(endpoints.items()) if m != member)]
        config = self.world.config
        return Client(
            order,
            attempts=4 * len(order),
            retry_delay=config.tick_interval,
            request_timeout=config.request_timeout,
            clock=env.clock,
            network=env.network,
            at_most_once=not self.session,
        )

    async def _client(self, member: int) -> Client:
        """The :class:`Client` aimed at ``member``, started (and its session opened) on first
        use; one at a time per member."""
        lock = self._opening.setdefault(member, trio.Lock())
        async with lock:
            client = self._clients.get(member)
            if client is None:
                process = self.host.process
                if not isinstance(process, ClientProcess) or process.nursery is None:
                    raise ClientError("unavailable", "the client machine is down")
                client = self._new_client(member, process.env)
                await process.nursery.start(_hold, client)
                self._clients[member] = client
            if self.session and client.session_id is None:
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
                client = await self._client(member)
                sent = not read
                return Ok(await client.request(req, serializable=serializable))
            except KVRequestError as exc:
                return Ok(exc.error)
            except IndeterminateError as exc:
                return Failed(exc.code) if read else Unknown(f"{exc.code}: {exc.message}")
            except ClientError as exc:
                return Failed(exc.code)
            except trio.TooSlowError:
                return Failed("timeout") if read else Unknown("client timeout")
            except Exception as exc:
                # Not the library's contract: a bug, reported as the client machine's.
                text = "client: " + "".join(traceback.format_exception(exc))
                self.world.failures.append((self.host.node, text))
                return Unknown(f"client error: {type(exc).__name__}")
        return Unknown("client deadline") if sent else Failed("client deadline")
