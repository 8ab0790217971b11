"""Leader election: one leader at a time; a standby takes over only after the Lease stayed
unchanged for leaseDuration of its *own* clock; clock offsets (and a holder's wrong wall
clock in renewTime) change nothing; a leader that cannot renew stops before anyone takes over.
In virtual time (Trio's MockClock) with an in-memory Lease, plus one run on the real server."""

from __future__ import annotations

import itertools
import random

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from raftkube.clock import Clock, TrioClock
from raftkube.controllers.leaderelection import (
    LeaderElectionConfig,
    LeaderElectionRecord,
    LeaderElector,
    LeaseLock,
    Now,
    may_acquire,
    next_record,
)
from raftkube.controllers.resources import LEASES
from raftkube.kubeclient import KubeAPIError, KubeConnectionError
from tests.helpers.api_server import APIHarness
from tests.helpers.clocks import OffsetClock
from tests.helpers.polling import wait_for

WALL = 1_750_000_000.0


@attrs.define
class MemoryLease:
    """The one Lease object, with a resourceVersion, and every write made to it."""

    record: LeaderElectionRecord | None = None
    version: int = 0
    writes: list[tuple[float, LeaderElectionRecord]] = attrs.Factory(list)

    def write(self, record: LeaderElectionRecord) -> None:
        self.record = record
        self.version += 1
        self.writes.append((trio.current_time(), record))


@attrs.define
class MemoryLock:
    """A ResourceLock on :class:`MemoryLease` with optimistic concurrency; ``partitioned``
    makes every call fail as an unreachable server would."""

    lease: MemoryLease
    identity: str
    partitioned: bool = False
    events: list[str] = attrs.Factory(list)
    _read_version: int = -1

    def _check(self) -> None:
        if self.partitioned:
            raise KubeConnectionError("partitioned")

    async def get(self) -> LeaderElectionRecord | None:
        await trio.lowlevel.checkpoint()
        self._check()
        self._read_version = self.lease.version
        return self.lease.record

    async def create(self, record: LeaderElectionRecord) -> None:
        await trio.lowlevel.checkpoint()
        self._check()
        if self.lease.record is not None:
            raise KubeAPIError({"code": 409, "reason": "AlreadyExists"})
        self.lease.write(record)

    async def update(self, record: LeaderElectionRecord) -> None:
        await trio.lowlevel.checkpoint()
        self._check()
        if self._read_version != self.lease.version:
            raise KubeAPIError({"code": 409, "reason": "Conflict"})
        self.lease.write(record)

    async def record_event(self, message: str) -> None:
        self.events.append(f"{self.identity} {message}")

    def describe(self) -> str:
        return "memory/lease"


@attrs.define
class Terms:
    """Who led when, in the run's (true) time."""

    spans: list[tuple[str, float, float]] = attrs.Factory(list)

    def lead(self, identity: str) -> object:
        async def leading() -> None:
            start = trio.current_time()
            try:
                await trio.sleep_forever()
            finally:
                self.spans.append((identity, start, trio.current_time()))

        return leading

    def assert_disjoint(self) -> None:
        spans = sorted(self.spans, key=lambda s: s[1])
        for (_, _, end), (_, start, _) in itertools.pairwise(spans):
            assert end <= start, f"two leaders at once: {spans}"


def elector(lock: MemoryLock, clock: Clock, wall_offset: float, seed: int) -> LeaderElector:
    return LeaderElector(
        LeaderElectionConfig(lock),
        clock,
        wall=lambda: WALL + wall_offset + trio.current_time(),
        rng=random.Random(seed),
    )


def test_expiry_is_judged_by_local_observation_only() -> None:
    record = LeaderElectionRecord("a", 15, "t0", "t0", 0)
    # The wall reading (here far past any renewTime) is never what expiry is judged by.
    assert may_acquire("a", record, observed_time=100.0, now=Now(100.0, WALL))
    assert not may_acquire("b", record, observed_time=100.0, now=Now(114.9, WALL))
    assert may_acquire("b", record, observed_time=100.0, now=Now(115.0, WALL))
    assert may_acquire("b", attrs.evolve(record, holder_identity=""), 100.0, Now(100.0, WALL))
    renewed = next_record("a", record, 15, WALL)
    assert (renewed.acquire_time, renewed.leader_transitions) == ("t0", 0)
    assert renewed.renew_time.endswith("Z") and renewed.renew_time != "t0"
    taken = next_record("b", record, 15, WALL)
    assert (taken.holder_identity, taken.leader_transitions) == ("b", 1)
    assert taken.acquire_time == taken.renew_time


@pytest.mark.trio
@pytest.mark.parametrize(
    ("offset_b", "wall_offset_a"),
    [(0.0, 0.0), (3600.0, 0.0), (-3600.0, -7200.0), (12345.6, 86400.0)],
)
async def test_standby_takes_over_only_after_its_own_lease_duration(
    autojump_clock: trio.testing.MockClock, offset_b: float, wall_offset_a: float
) -> None:
    """A leads; B (its clock offset by ``offset_b``) stands by; A's wall clock, which stamps
    renewTime, is off by ``wall_offset_a``. B never leads while A renews; once A dies, B
    leads no sooner than 15 s after A's last renewal and within a few retry periods."""
    base = TrioClock()
    lease = MemoryLease()
    terms = Terms()
    a = elector(MemoryLock(lease, "a"), base, wall_offset_a, 1)
    b = elector(MemoryLock(lease, "b"), OffsetClock(base, offset_b), 0.0, 2)
    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            a_scope = trio.CancelScope()

            async def run_a() -> None:
                with a_scope:
                    await a.run(terms.lead("a"))  # type: ignore[arg-type]

            nursery.start_soon(run_a)
            await trio.sleep(1)
            nursery.start_soon(b.run, terms.lead("b"))
            await trio.sleep(300)
            assert a.is_leader() and not b.is_leader()
            assert b.get_leader() == "a"
            a_scope.cancel()  # A crashes: it neither renews nor releases
            await trio.sleep(0)
            last_renewal = lease.writes[-1][0]
            while not b.is_leader():
                await trio.sleep(0.1)
            takeover = lease.writes[-1][0]
            assert lease.writes[-1][1].holder_identity == "b"
            assert lease.writes[-1][1].leader_transitions == 1
            assert 15.0 <= takeover - last_renewal <= 15.0 + 2 * 2.0 * 2.2
            nursery.cancel_scope.cancel()
    terms.assert_disjoint()
    assert [s[0] for s in sorted(terms.spans, key=lambda s: s[1])] == ["a", "b"]


@pytest.mark.trio
async def test_partitioned_leader_stops_before_the_standby_starts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    base = TrioClock()
    lease = MemoryLease()
    terms = Terms()
    lock_a = MemoryLock(lease, "a")
    a = elector(lock_a, base, 0.0, 3)
    b = elector(MemoryLock(lease, "b"), OffsetClock(base, -50.0), 0.0, 4)
    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            a_done = trio.Event()

            async def run_a() -> None:
                await a.run(terms.lead("a"))  # type: ignore[arg-type]
                a_done.set()

            nursery.start_soon(run_a)
            await trio.sleep(1)
            nursery.start_soon(b.run, terms.lead("b"))
            await trio.sleep(60)
            lock_a.partitioned = True
            last_renewal = lease.writes[-1][0]
            await a_done.wait()
            stopped = trio.current_time()
            assert stopped - last_renewal <= 10.0 + 2.0  # renew deadline, one retry late at most
            while not b.is_leader():
                await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
    terms.assert_disjoint()
    assert [s[0] for s in sorted(terms.spans, key=lambda s: s[1])] == ["a", "b"]
    assert lock_a.events == ["a became leader", "a stopped leading"]


@attrs.define
class HangingEventLock(MemoryLock):
    """A lock whose Event writes, while partitioned, wait out a client's 10 s timeout and
    are then dropped (as :class:`EventRecorder` logs and drops a failed write)."""

    async def record_event(self, message: str) -> None:
        if self.partitioned:
            await trio.sleep(10.0)
            return
        await super().record_event(message)


@pytest.mark.trio
async def test_a_deposed_leader_stops_at_once_though_its_event_write_hangs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cut off from the server, the leader's work is cancelled within the renew deadline of
    its last renewal, not after the "stopped leading" Event's write has timed out; and the
    write holds ``run`` up by at most one retry period."""
    lease = MemoryLease()
    terms = Terms()
    lock = HangingEventLock(lease, "a")
    a = elector(lock, TrioClock(), 0.0, 5)
    returned: list[float] = []

    async def run_a() -> None:
        await a.run(terms.lead("a"))  # type: ignore[arg-type]
        returned.append(trio.current_time())

    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_a)
            await trio.sleep(30)
            lock.partitioned = True
            last_renewal = lease.writes[-1][0]
    [(_, _, stopped)] = terms.spans
    assert stopped - last_renewal <= 10.0 + 2.0  # the renew deadline, one retry late at most
    assert returned[0] - stopped <= 2.0  # the Event write, cut off after one retry period
    assert lock.events == ["a became leader"]


@attrs.define
class SlowEventLock(MemoryLock):
    """A lock whose Event writes always wait out a client's 10 s timeout."""

    async def record_event(self, message: str) -> None:
        await trio.sleep(10.0)


@pytest.mark.trio
async def test_a_new_leader_acts_and_renews_while_its_event_write_hangs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The "became leader" Event is written beside the leader's work: the work starts as the
    Lease is taken and renewals go on every retry period while the write waits; the write
    is dropped after one retry period."""
    lease = MemoryLease()
    terms = Terms()
    lock = SlowEventLock(lease, "a")
    a = elector(lock, TrioClock(), 0.0, 5)
    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.run, terms.lead("a"))
            await trio.sleep(12)
            nursery.cancel_scope.cancel()
    [(_, started, _)] = terms.spans
    acquired = lease.writes[0][0]
    assert started - acquired < 0.5
    renewals = [t for t, _ in lease.writes[1:] if t <= acquired + 10.0]
    assert len(renewals) >= 4  # every 2 s retry period, not after the 10 s write


@pytest.mark.trio
async def test_lease_lock_on_the_real_server(api: APIHarness) -> None:
    """Two electors on a real Lease with short (real-time) durations: one leads, the Lease
    names it; when it releases on cancel, the other takes over at once."""
    terms = Terms()

    def make(identity: str, seed: int) -> LeaderElector:
        lock = LeaseLock(api.admin, "kube-system", "test-election", identity)
        config = LeaderElectionConfig(
            lock, lease_duration=3.0, renew_deadline=2.0, retry_period=0.5, release_on_cancel=True
        )
        return LeaderElector(config, TrioClock(), rng=random.Random(seed))

    first, second = make("first", 5), make("second", 6)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            first_scope = trio.CancelScope()

            async def run_first() -> None:
                with first_scope:
                    await first.run(terms.lead("first"))  # type: ignore[arg-type]

            nursery.start_soon(run_first)
            await wait_for(first.is_leader, "the first to lead")
            nursery.start_soon(second.run, terms.lead("second"))
            await trio.sleep(1.5)
            assert not second.is_leader()
            lease = await api.admin.get(LEASES, "test-election", namespace="kube-system")
            assert lease["spec"]["holderIdentity"] == "first"
            assert lease["spec"]["leaseDurationSeconds"] == 3
            first_scope.cancel()
            await wait_for(second.is_leader, "the second to lead", timeout=5)
            lease = await api.admin.get(LEASES, "test-election", namespace="kube-system")
            assert lease["spec"]["holderIdentity"] == "second"
            assert lease["spec"]["leaseTransitions"] >= 1
            nursery.cancel_scope.cancel()
    terms.assert_disjoint()


@settings(max_examples=25)
@given(
    offsets=st.lists(st.floats(-1e5, 1e5), min_size=3, max_size=3),
    wall_offsets=st.lists(st.floats(-1e5, 1e5), min_size=3, max_size=3),
    crashes=st.lists(st.floats(1.0, 120.0), min_size=2, max_size=2),
    seed=st.integers(0, 2**16),
)
def test_never_two_leaders_whatever_the_offsets(
    offsets: list[float], wall_offsets: list[float], crashes: list[float], seed: int
) -> None:
    """Three candidates with arbitrary clock and wall offsets; the leader of the moment is
    killed twice at random times. Leadership terms never overlap, each takeover comes at
    least a lease duration after the dead leader's last renewal, and someone always leads
    again."""

    async def scenario() -> None:
        base = TrioClock()
        lease = MemoryLease()
        terms = Terms()
        electors = [
            elector(
                MemoryLock(lease, name), OffsetClock(base, offsets[i]), wall_offsets[i], seed + i
            )
            for i, name in enumerate("abc")
        ]
        scopes = {e.identity: trio.CancelScope() for e in electors}

        async def run(e: LeaderElector) -> None:
            with scopes[e.identity]:
                await e.run(terms.lead(e.identity))  # type: ignore[arg-type]

        async with trio.open_nursery() as nursery:
            for e in electors:
                nursery.start_soon(run, e)
            for crash_after in crashes:
                await trio.sleep(crash_after)
                leaders = [
                    e for e in electors if e.is_leader() and not scopes[e.identity].cancel_called
                ]
                assert len(leaders) == 1
                scopes[leaders[0].identity].cancel()
                await trio.sleep(0)
                last_renewal = lease.writes[-1][0]
                writes_before = len(lease.writes)
                while len(lease.writes) == writes_before:
                    await trio.sleep(0.1)
                takeover, record = lease.writes[-1]
                assert record.holder_identity != leaders[0].identity
                assert 15.0 <= takeover - last_renewal <= 15.0 + 2 * 2.0 * 2.2
            nursery.cancel_scope.cancel()
        terms.assert_disjoint()

    trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))
