"""When more than one controller manager may act as leader: what ``NoOverCreation`` needs.

Leader election on a Lease (client-go's, and :mod:`raftkube.controllers.leaderelection`) is
no fence. A leader whose process is suspended (SIGSTOP, a paused VM, a long stall) past its
renew deadline while another candidate takes the Lease over still believes it leads when it
resumes: its clock moved on while it could not run, so its workers and its renew loop wake up
together, the workers sync from caches the pause left stale, and the renew loop, once it has
read the new holder, keeps trying until its renew deadline runs out (client-go's ``renew``
polls ``tryAcquireOrRenew`` for ``RenewDeadline`` from when it wakes). Upstream's package
documentation says so ("does not guarantee that only one client is acting as a leader (a.k.a.
fencing)"), and the ReplicaSet controller's expectations are a process's own memory: they
keep *one* controller from creating twice, not two.

So the checks need to know, for each revision the store committed, whether two controller
manager incarnations may have been acting (and, on the schedulers' Lease, two schedulers).
:class:`LeadershipLog` collects the two kinds of fact that decide it, both observable without
looking inside a controller:

* a manager *starts* acting at the revision that writes it into the Lease as holder (read by
  the observer from the store, :meth:`holder_written`);
* a manager *stops* acting when its incarnation ends: it lost the Lease
  (:class:`~raftkube.controllers.leaderelection.LeaderElectionLost`, and it starts again from
  fresh caches) or its host crashed. The suite reports those (:meth:`ended`), with the store's
  latest revision at that moment: its writes are at or before it.

A request the ended incarnation had already sent may still commit after that revision (there
is no fence for that either); such a write is judged as the remaining leader's. That is the
one way this bookkeeping can be too strict, and none was seen in the runs recorded in
docs/fuzzing.md.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

LEASE_KEY = b"/registry/leases/kube-system/kube-controller-manager"
"""The controller managers' Lease, as the API server stores it."""
SCHEDULER_LEASE_KEY = b"/registry/leases/kube-system/kube-scheduler"
"""The schedulers' Lease: two schedulers acting at once may bind two pods onto the room for
one, which upstream leaves to the kubelet's admission to refuse."""


@attrs.define
class LeadershipLog:
    """See the module docstring. ``current_revision`` reads the store's latest revision;
    ``lease_key`` is the Lease the candidates compete for."""

    current_revision: Callable[[], int]
    lease_key: bytes = LEASE_KEY
    ends: list[tuple[int, str]] = attrs.field(factory=list)
    """(the store's revision when it ended, manager) for every incarnation that ended."""
    acting: dict[str, int] = attrs.field(factory=dict)
    """Manager -> the revision that last wrote it as the Lease holder, while it may act."""
    _consumed: int = 0

    def ended(self, manager: str) -> None:
        """``manager``'s incarnation ended now (lost the Lease, or its host crashed)."""
        self.ends.append((self.current_revision(), manager))

    def advance_to(self, revision: int) -> None:
        """Before revision ``revision`` is judged: every incarnation that ended at an earlier
        revision, and was not written as holder again since, no longer acts."""
        while self._consumed < len(self.ends) and self.ends[self._consumed][0] < revision:
            at, manager = self.ends[self._consumed]
            self._consumed += 1
            became = self.acting.get(manager)
            if became is not None and became <= at:
                del self.acting[manager]

    def holder_written(self, revision: int, holder: str) -> None:
        if holder:
            self.acting[holder] = revision

    def overlapping(self) -> tuple[str, ...]:
        """The managers that may act at once now, if more than one; else ()."""
        return tuple(sorted(self.acting)) if len(self.acting) > 1 else ()
