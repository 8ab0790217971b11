"""Leader election on a Lease, judged by locally observed time only (client-go's leaderelection).

Theory of operation
-------------------
:meth:`Elector.sync` is client-go's ``tryAcquireOrRenew``, one attempt per step, for the
candidate ``identity``:

1. GET the Lease (a live read, not an informer). If it is missing, create it naming itself.
2. If the record differs from the one last observed, remember it together with the reading of
   the candidate's *own* clock (``observedTime``). The record's ``renewTime`` was written by
   the holder's clock and is never compared with this candidate's clock.
3. If another candidate holds it and ``observedTime + leaseDurationSeconds`` is still ahead of
   the local clock, give up this attempt.
4. Otherwise write the record naming itself with ``renewTime`` = its clock. (Upstream also
   counts ``leaderTransitions`` and keeps ``acquireTime``; no decision reads them, and an
   unbounded counter would make the state space infinite, so they are left out.) The GET and
   UPDATE are one step here; upstream's UPDATE carries the GET's resourceVersion, so a write in
   between makes it fail, which is the same as this step coming after that write.

A leader *acts* until ``renew_deadline`` after its last successful renewal, by its own clock
(client-go: the renew loop gives up after RenewDeadline and ``OnStoppedLeading`` runs).

Why that is safe with any clock offsets: a candidate takes over no earlier than
``lease_duration`` after it saw the last renewal, and it saw it no earlier than it happened; the
old leader stopped acting ``renew_deadline`` after that renewal. With equal clock rates and
``renew_deadline <= lease_duration`` the two periods never overlap (client-go tolerates any
offset, not a rate difference). Judging expiry by ``renewTime`` against the local clock
(client-go #448) breaks exactly this when clocks are offset: the ``lease-judged-by-remote-clock``
mutant.
"""

from __future__ import annotations

import attrs

from raftkube_spec.control.model import ClusterState
from raftkube_spec.control.records import Lease, Stamp, meta
from raftkube_spec.control.world import Create, Patch, Request, World

LEASE_KEY = ("Lease", "kube-system", "kube-controller-manager")


@attrs.frozen
class ElectorMemory:
    identity: str
    observed: Lease | None = None
    observed_at: Stamp | None = None
    """The local clock when ``observed`` was first seen."""
    acting_until: Stamp | None = None
    """While leader: the local clock at which it stops acting unless it renews."""


@attrs.frozen
class Elector:
    identity: str
    lease_duration: int = 3
    renew_deadline: int = 2

    def lease_valid(self, memory: ElectorMemory, record: Lease, now: int) -> bool:
        """Still held by its holder, judged by when this candidate saw it change."""
        assert memory.observed_at is not None
        return memory.observed_at.t + record.duration > now

    def sync(
        self, memory: ElectorMemory, view: World, now: int
    ) -> tuple[ElectorMemory, tuple[Request, ...]]:
        current = view.get(LEASE_KEY)
        mine = Lease(
            meta("Lease", LEASE_KEY[2], LEASE_KEY[1]),
            self.identity,
            Stamp(now),
            self.lease_duration,
        )
        leading = ElectorMemory(self.identity, mine, Stamp(now), Stamp(now + self.renew_deadline))
        if not isinstance(current, Lease):
            return leading, (Create(mine),)
        if memory.observed != current:
            memory = attrs.evolve(memory, observed=current, observed_at=Stamp(now))
        is_leader = current.holder == self.identity
        if current.holder and not is_leader and self.lease_valid(memory, current, now):
            return attrs.evolve(memory, acting_until=None), ()
        record = attrs.evolve(mine, meta=current.meta)
        fields = (
            ("holder", self.identity),
            ("renew_time", Stamp(now)),
            ("duration", self.lease_duration),
        )
        return attrs.evolve(leading, observed=record), (Patch(current.meta.ref, fields),)


@attrs.frozen
class JudgesByRemoteClock(Elector):
    """The ``lease-judged-by-remote-clock`` mutant: expiry is the record's renewTime (the
    holder's clock) plus the duration, compared with this candidate's clock (client-go #448)."""

    def lease_valid(self, memory: ElectorMemory, record: Lease, now: int) -> bool:
        return record.renew_time is not None and record.renew_time.t + record.duration > now


def acting_leaders(s: ClusterState) -> tuple[str, ...]:
    """The candidates that act as leader in ``s``, each judged by its own clock."""
    out = []
    for comp in s.components:
        m = comp.memory
        acting = isinstance(m, ElectorMemory) and m.acting_until is not None
        if acting and s.clock(m.identity) < m.acting_until.t:
            out.append(m.identity)
    return tuple(out)
