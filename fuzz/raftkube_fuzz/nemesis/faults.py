"""Applying the fault schedule to the running cluster, and remembering what landed where."""

from __future__ import annotations

import collections
from collections.abc import Callable

import attrs
import trio

from raftkube.client import Client, ClientError
from raftkube.clock import Clock, move_on_after, sleep_for
from raftkube_fuzz.nemesis.cluster import ProcessCluster
from raftkube_fuzz.nemesis.schedule import Fault

STATUS_TIMEOUT = 0.5
"""Seconds to wait for a member's status when looking for the leader (a paused or cut-off
member must not hold up the schedule)."""


@attrs.define
class Injected:
    """A fault as it was applied: when (seconds since the start), to whom, and when undone."""

    fault: Fault
    at: float
    member: int
    description: str
    undone_at: float | None = None

    def line(self) -> str:
        if self.fault.kind == "reset":
            undone = "(instant)"
        elif self.undone_at is None:
            undone = "not undone"
        else:
            undone = f"undone at {self.undone_at:7.1f} s"
        return f"{self.at:7.1f} s  {self.description:<46} {undone}"


@attrs.define(eq=False)
class Nemesis:
    """Runs a schedule against ``cluster``; :attr:`injected` is the record for the summary."""

    cluster: ProcessCluster
    clock: Clock
    start: float
    progress: Callable[[Injected], None] | None = None
    """Told of each fault as it lands."""
    injected: list[Injected] = attrs.Factory(list)
    _standing: collections.Counter[tuple[str, object]] = attrs.Factory(collections.Counter)
    """How many standing faults hold each (kind, member) and each ("cut", relay): overlapping
    faults undo their effect only when the last of them ends."""

    def elapsed(self) -> float:
        return self.clock.now() - self.start

    async def run(self, faults: tuple[Fault, ...], duration: float) -> None:
        """Apply each fault at its time and undo it after its hold, until ``duration``; then
        undo whatever still stands."""
        async with trio.open_nursery() as nursery:
            for fault in faults:
                if fault.at >= duration:
                    break
                await self._sleep_until(fault.at)
                injected = await self._apply(fault)
                if fault.kind == "reset":  # nothing stands, nothing to undo
                    injected.undone_at = injected.at
                    continue
                nursery.start_soon(self._undo_later, injected, min(fault.at + fault.hold, duration))
            await self._sleep_until(duration)

    async def _sleep_until(self, offset: float) -> None:
        rest = offset - self.elapsed()
        if rest > 0:
            await sleep_for(self.clock, rest)

    async def _undo_later(self, injected: Injected, offset: float) -> None:
        await self._sleep_until(offset)
        await self._undo(injected)

    async def leader(self) -> int | None:
        """The member that says it leads (the lowest index if a cut-off one still thinks so)."""
        claims: list[int] = []

        async def ask(i: int, endpoint: str) -> None:
            with move_on_after(self.clock, STATUS_TIMEOUT):
                async with Client([endpoint], attempts=1, request_timeout=STATUS_TIMEOUT) as c:
                    try:
                        status = await c.status()
                    except ClientError:
                        return
                    if status.get("is_leader"):
                        claims.append(i)

        async with trio.open_nursery() as nursery:
            for i, endpoint in enumerate(self.cluster.client_endpoints):
                m = self.cluster.members[i]
                if m.up and not m.paused:
                    nursery.start_soon(ask, i, endpoint)
        return min(claims) if claims else None

    async def _target(self, fault: Fault) -> tuple[int, str]:
        if fault.target != "leader":
            return int(fault.target), ""
        leader = await self.leader()
        if leader is None:
            return fault.fallback, " (no leader: aimed at a fixed member)"
        return leader, " (the leader)"

    async def _apply(self, fault: Fault) -> Injected:
        at = self.elapsed()
        m, note = await self._target(fault)
        links = _links(fault, m, self.cluster.servers)
        if fault.kind == "reset":
            closed = self.cluster.reset_clients(m)
            text = f"reset {closed} client connections of member {m}{note}"
        elif fault.kind in ("kill", "pause"):
            self._standing[fault.kind, m] += 1
            if fault.kind == "kill":
                await self.cluster.kill(m)
                text = f"kill -9 member {m}{note}"
            else:
                self.cluster.pause(m)
                text = f"SIGSTOP member {m}{note}"
        else:
            for link in links:
                self._standing["cut", link] += 1
                self.cluster.cut(*link)
            text = _describe_cut(fault.kind, m, links) + note
        injected = Injected(fault, at, m, text)
        self.injected.append(injected)
        if self.progress is not None:
            self.progress(injected)
        return injected

    async def _undo(self, injected: Injected) -> None:
        """Undo one fault; a member or relay that another standing fault also holds stays as
        it is until the last of them ends."""
        fault, m = injected.fault, injected.member
        if fault.kind in ("kill", "pause"):
            if self._release((fault.kind, m)):
                if fault.kind == "kill":
                    await self.cluster.start(m)
                else:
                    self.cluster.resume(m)
        else:
            for link in _links(fault, m, self.cluster.servers):
                if self._release(("cut", link)):
                    self.cluster.relays[link].heal()
        injected.undone_at = self.elapsed()

    def _release(self, what: tuple[str, object]) -> bool:
        self._standing[what] -= 1
        if self._standing[what] > 0:
            return False
        del self._standing[what]
        return True


def _links(fault: Fault, m: int, servers: int) -> list[tuple[int, int]]:
    """The relays (source, dest) a network fault aimed at member ``m`` cuts."""
    others = [i for i in range(servers) if i != m]
    if fault.kind == "isolate":
        return [(m, o) for o in others] + [(o, m) for o in others]
    if fault.kind == "one_way":
        return [(m, fault.other if fault.other != m else others[0])]
    if fault.kind == "bridge":
        left, right = others[: len(others) // 2], others[len(others) // 2 :]
        return [(a, b) for a in left for b in right] + [(b, a) for a in left for b in right]
    return []


def _describe_cut(kind: str, m: int, links: list[tuple[int, int]]) -> str:
    if kind == "isolate":
        return f"isolate member {m}"
    if kind == "one_way":
        return f"cut messages {links[0][0]} -> {links[0][1]}"
    return f"bridge: only member {m} reaches both sides"
