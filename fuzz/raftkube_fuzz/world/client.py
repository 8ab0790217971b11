"""Simulated clients: KV requests and watches straight against the members' APIs, recorded.

A :class:`SimClient` talks to a :class:`~raftkube.server.member.Member` the way the client
service does (``write`` for anything that changes state, ``linearizable_barrier`` then
``read_local`` for a read) but in-process, with no wire in between. What it must get exactly
right is the *outcome* it records into the :class:`~raftkube_fuzz.checks.history.History`,
because the linearizability check is only as sound as that classification:

* ``Ok(result)``: the member answered (a KVError result is an answer too).
* ``Failed(code)``: definitely not applied. Only refusals that happen before a proposal reaches
  the Raft log qualify: ``not_leader`` (raised by the proposal path, or by a batch the core
  rejected), a member that was down or paused for the whole attempt, and any error of a read
  (reads change nothing).
* ``Unknown(reason)``: anything after a write may have reached the log: timeouts, "leader
  changed" (a displaced proposal can still be inside a snapshot the member installed), the
  member crashing mid-request, or the client's own deadline expiring while a write is out.

A down member behaves like a refused connection (the client moves on at once), a paused one
like a hung server (the client waits for it, bounded by its deadline).
"""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Protocol

import attrs
import trio

from raftkube.server.member import Member, MemberError, WriteOutcome
from raftkube_fuzz.checks.history import Failed, History, Ok, Outcome, Unknown
from raftkube_fuzz.world.driver import CancelAfter, Wakeup, sleep
from raftkube_spec.kv.requests import RangeRequest, Request, TxnRequest
from raftkube_spec.kv.responses import Result
from raftkube_spec.kv.types import Event
from raftkube_spec.kv.watch import WatchCompacted

if TYPE_CHECKING:
    from raftkube_fuzz.world.host import MemberHost
    from raftkube_fuzz.world.world import World


class RequestClient(Protocol):
    """What a run asks of a simulated client: one recorded request, its outcome returned
    (:class:`SimClient` here, or the wire protocol's
    :class:`~raftkube_fuzz.world.wire_client.WireClient`)."""

    async def request(
        self, req: Request, *, member: int, serializable: bool = False, timeout: float
    ) -> Outcome: ...


class WatchClient(Protocol):
    """What a run asks of a simulated client to open a watch."""

    async def watch(
        self, member: int, key: bytes, range_end: bytes = b"", start_revision: int = 0
    ) -> WatchHandle: ...


def is_read(req: Request) -> bool:
    """A Range, or a Txn whose branches hold only reads: nothing to replicate."""
    if isinstance(req, RangeRequest):
        return True
    if isinstance(req, TxnRequest):
        return all(is_read(op) for op in (*req.success, *req.failure))
    return False


async def _submit(member: Member, req: Request) -> Result:
    """A write through :meth:`Member.submit`, the path the client service takes (answered
    from the apply, timed out on the member's tick loop): what a real client exercises, and
    no Trio cancel scope per write."""
    done = Wakeup()
    answer: list[WriteOutcome] = []

    def on_done(outcome: WriteOutcome) -> None:
        answer.append(outcome)
        done.wake()

    member.submit(req, None, on_done)
    await done.wait()
    outcome = answer[0]
    if isinstance(outcome, MemberError):
        raise outcome
    return outcome


class _Refused(Exception):
    """An attempt the member refused before proposing: safe to retry elsewhere."""

    def __init__(self, code: str, leader: int | None) -> None:
        super().__init__(code)
        self.code = code
        self.leader = leader


class SimClient:
    """One client. ``request`` may run concurrently in several tasks (distinct op ids)."""

    def __init__(self, world: World, client_id: int, history: History) -> None:
        self.world = world
        self.client_id = client_id
        self.history = history
        self.retry_backoff = world.config.tick_interval
        """Pause before a retry, so a leaderless cluster is not polled in a busy loop."""

    async def request(
        self, req: Request, *, member: int, serializable: bool = False, timeout: float
    ) -> Outcome:
        """Send ``req`` to ``member`` (following leader hints), record it, return the outcome."""
        read = is_read(req)
        op_id = self.history.invoke(
            self.client_id, req, trio.current_time(), serializable=read and serializable
        )
        result = await self._attempts(req, member, read, read and serializable, timeout)
        self.history.complete(op_id, result, trio.current_time())
        return result

    async def _attempts(
        self, req: Request, target: int, read: bool, serializable: bool, timeout: float
    ) -> Outcome:
        servers = len(self.world.hosts)
        last_refusal = "unavailable"
        outstanding = False
        with CancelAfter(timeout):
            while True:
                host = self.world.hosts[target]
                await host.wait_resumed()
                member = host.member
                if member is None:
                    last_refusal = "unavailable"
                    target = (target + 1) % servers
                    await sleep(self.retry_backoff)
                    continue
                outstanding = not read
                try:
                    return Ok(await self._once(host, member, req, read, serializable))
                except _Refused as refusal:
                    outstanding = False
                    last_refusal = refusal.code
                    hint = refusal.leader
                    target = hint if hint is not None and hint != target else (target + 1) % servers
                    await sleep(self.retry_backoff)
                except MemberError as exc:
                    if read:
                        return Failed(exc.code)
                    return Unknown(f"{exc.code}: {exc.message}")
                except Exception as exc:
                    self.world.failures.append(
                        (target, "client: " + "".join(traceback.format_exception(exc)))
                    )
                    return Unknown(f"client error: {type(exc).__name__}")
        if outstanding:
            return Unknown("client timeout")
        return Failed(last_refusal)

    async def _once(
        self, host: MemberHost, member: Member, req: Request, read: bool, serializable: bool
    ) -> Result:
        """One attempt at one member; refusals before proposing become :class:`_Refused`."""
        try:
            if read:
                if not serializable:
                    await member.linearizable_barrier()
                    if host.member is not member:
                        raise MemberError("unavailable", "member crashed during the read")
                return member.read_local(req)
            return await _submit(member, req)
        except MemberError as exc:
            if exc.code == "not_leader":
                raise _Refused(exc.code, exc.leader) from None
            if exc.code == "unavailable" and "transfer" in exc.message:
                raise _Refused(exc.code, None) from None
            raise

    async def watch(
        self, member: int, key: bytes, range_end: bytes = b"", start_revision: int = 0
    ) -> WatchHandle:
        """Open a watch on ``member``; its events collect in the returned handle until it is
        compacted, cancelled, or the member goes down. Waits while the member is paused."""
        host = self.world.hosts[member]
        await host.wait_resumed()
        target = host.member
        nursery = self.world.nursery
        if target is None or nursery is None:
            return WatchHandle(member, key, range_end, start_revision, end="cancelled")
        first = target.mvcc.revision + 1 if start_revision == 0 else start_revision
        handle = WatchHandle(member, key, range_end, first)
        wid = target.watches.watch(key, range_end, first)
        nursery.start_soon(handle._follow, host, target, wid, host.stopped)
        return handle


@attrs.define(eq=False)
class WatchHandle:
    """What one watch delivered: ``events`` in delivery order, and how it ended.

    ``start_revision`` is the effective first revision (a request for "now" is resolved to the
    member's revision + 1 when the watch is created). ``end`` is ``"open"``, ``"compacted"``
    (with ``compact_revision``) or ``"cancelled"`` (by :meth:`cancel` or the member going
    down).
    """

    member: int
    key: bytes
    range_end: bytes
    start_revision: int
    events: list[Event] = attrs.Factory(list)
    end: str = "open"
    compact_revision: int | None = None
    _scope: trio.CancelScope = attrs.Factory(trio.CancelScope)

    def cancel(self) -> None:
        if self.end == "open":
            self.end = "cancelled"
        self._scope.cancel()

    async def _follow(
        self, host: MemberHost, member: Member, wid: int, stopped: trio.Event
    ) -> None:
        with self._scope:
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._until_down, stopped, nursery.cancel_scope)
                    await self._drain(host, member, wid)
                    nursery.cancel_scope.cancel()
            finally:
                if host.member is member:
                    member.forget_watch(wid)

    async def _until_down(self, stopped: trio.Event, scope: trio.CancelScope) -> None:
        await stopped.wait()
        if self.end == "open":
            self.end = "cancelled"
        scope.cancel()

    async def _drain(self, host: MemberHost, member: Member, wid: int) -> None:
        while True:
            await member.watch_event(wid).wait()
            await host.wait_resumed()
            if host.member is not member:
                return
            taken = member.watches.take(wid)
            if isinstance(taken, WatchCompacted):
                self.end = "compacted"
                self.compact_revision = taken.compact_revision
                return
            self.events.extend(taken)
