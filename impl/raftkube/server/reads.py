"""A member's linearizable reads: the ReadIndex barrier, lease reads, and the wait for apply.

:class:`ReadQueue` owns every linearizable read in flight on this member. A read first
confirms that the member still leads: with a ReadIndex round (etcd's ``ReadIndex``: the core
registers it and a quorum's heartbeat answers confirm it), or, with ``read_mode="lease"``,
from a lease such a round started while it lasts (docs/lease-reads.md: sound only while every
clock's rate stays within ``max_clock_drift``). A confirmed read then waits until the member
has applied the index the confirmation returned, and is served from local state. Kept apart
from writes because nothing here goes through the log: a read only borrows the core's
leadership check and the apply index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftkube.raft import ReadState, RejectedError
from raftkube.server.outcomes import MemberError, Waiter, not_leader, wait_for

if TYPE_CHECKING:
    from raftkube.server.member import Member


class ReadQueue:
    """The linearizable reads in flight, and the clock side of the member's read lease."""

    def __init__(self, member: Member) -> None:
        self._member = member
        self._next_read = 1
        self.waiters: dict[int, Waiter] = {}
        """Reads in flight by read id. A waiter's ``index`` is -1 until its ReadIndex round is
        registered with the core, -2 while the round runs, then the index to wait for."""
        self._confirmed: list[tuple[int, Waiter]] = []
        """Reads whose index is known, waiting for it to be applied."""
        self._lease_term = 0
        self._lease_deadline = 0.0
        """Lease mode: the clock time the lease ends, for a lease started in ``_lease_term``
        (the node's own lease is in ticks, which a stalled tick loop loses; this one is not)."""
        self.lease_reads = 0
        """Reads served from the lease, without a round trip (a statistic)."""

    async def barrier(self) -> None:
        """Return once the local state reflects every write committed before the call.

        A ReadIndex round confirms that this member still leads; in lease mode a valid lease
        stands in for it (the read waits only for the apply), and each round renews it."""
        member = self._member
        if member.disk_fault is not None:
            # Unavailable, not the write's code: the read is refused only here, and a client
            # goes on to another member (or reads serializably from this one).
            raise MemberError("unavailable", member.disk_fault.message)
        if member.stopped:
            raise MemberError("unavailable", "raftkube: member stopped")
        if not member.node.is_leader:
            raise not_leader(member.node.leader)
        clock, timeout = member.clock, member.config.request_timeout
        leased = self._leased_index()
        rid = self._next_read
        self._next_read += 1
        if leased is not None:
            if member.hooks.lease_read is not None:
                member.hooks.lease_read(member.node.term)
            self.lease_reads += 1
            w = Waiter(index=leased)
            self.waiters[rid] = w
            self._confirmed.append((rid, w))
            self.release()
            await wait_for(w, clock, timeout, lambda: self.waiters.pop(rid, None))
            return
        started, term = clock.now(), member.node.term
        w = Waiter(index=-1)
        self.waiters[rid] = w
        member.kick()
        await wait_for(w, clock, timeout, lambda: self.waiters.pop(rid, None))
        if member.config.lease_mode and member.node.term == term:
            # The round was registered after ``started``, by this leader (same term), so the
            # node's lease runs from a later tick; the clock bound is never the longer one.
            lease = member.node.config.lease_ticks * member.config.tick_interval
            if term != self._lease_term:
                self._lease_term, self._lease_deadline = term, 0.0
            self._lease_deadline = max(self._lease_deadline, started + lease)

    def _leased_index(self) -> int | None:
        """The node's lease index, if the clock also says the lease still holds."""
        node = self._member.node
        index = node.lease_read_index()
        if index is None or node.term != self._lease_term:
            return None
        return index if self._member.clock.now() < self._lease_deadline else None

    @property
    def unstarted(self) -> bool:
        """A read waits to register its ReadIndex round (retried on every ready loop pass)."""
        return bool(self.waiters) and any(w.index == -1 for w in self.waiters.values())

    def start(self) -> None:
        """Issue ReadIndex for reads waiting for a leader that has committed in its term."""
        node = self._member.node
        for rid, w in list(self.waiters.items()):
            if w.index == -1:
                try:
                    node.read_index(rid)
                except RejectedError:
                    continue
                w.index = -2

    def confirm(self, read_states: tuple[ReadState, ...]) -> None:
        """The core confirmed these rounds: each read now waits for its index to apply."""
        for rs in read_states:
            w = self.waiters.get(rs.read_id)
            if w is not None:
                w.index = rs.index
                self._confirmed.append((rs.read_id, w))

    def release(self) -> None:
        """Serve the confirmed reads whose index is applied."""
        applied = self._member.applied
        keep = []
        for rid, w in self._confirmed:
            if w.index <= applied:
                self.waiters.pop(rid, None)
                w.finish()
            else:
                keep.append((rid, w))
        self._confirmed = keep
