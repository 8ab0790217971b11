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

**AtMostOneLeader** is checked where the overlap opens: a revision that writes a candidate
into the Lease while its previous holder may still act. Such an overlap is upstream's own
(and only recorded, for the two properties above) when the new holder's takeover was one
client-go allows: it had watched the record unchanged for ``leaseDurationSeconds`` of its
*own* monotonic clock. Then the overlap can only come from the old leader not stopping within
its renew deadline, which upstream promises only for running processes whose clocks run at
about the same rate and whose requests are answered promptly (no fencing): it was paused, one
of the two clocks drifted or its monotonic time jumped, or its last renewal's answer came
late. A takeover sooner than that, by the new holder's own clock, is the violation: nothing
upstream leaves uncovered explains it, whatever the hosts' wall clocks read (client-go #448,
the ``lease-judged-by-remote-clock`` mutant). The wait is measured without looking inside the
candidate: each host's clock is read at the instant the first store member applies a revision
writing the Lease (:meth:`LeadershipLog.lease_written`), and a correct candidate read the
record it replaces no earlier than that and wrote its takeover no earlier than
``leaseDurationSeconds`` later on the same clock (its update carries the resourceVersion it
read, so the record it replaces is the one it judged). Not covered: an old leader that keeps
acting past its own renew deadline without any of those excuses (its deadline is inside the
process).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

import attrs

from raftkube_spec.kv.types import KeyValue

LEASE_KEY = b"/registry/leases/kube-system/kube-controller-manager"
"""The controller managers' Lease, as the API server stores it."""
SCHEDULER_LEASE_KEY = b"/registry/leases/kube-system/kube-scheduler"
"""The schedulers' Lease: two schedulers acting at once may bind two pods onto the room for
one, which upstream leaves to the kubelet's admission to refuse."""


CLOCK_SLACK = 1e-6
"""Seconds of rounding a clock's readings may carry (an elector compares ``observed + d <=
now`` on readings taken a little after and before the two stamps)."""


def lease_spec(kv: KeyValue) -> tuple[str, int]:
    """A stored Lease's holder and leaseDurationSeconds."""
    spec = json.loads(kv.value).get("spec") or {}
    return str(spec.get("holderIdentity") or ""), int(spec.get("leaseDurationSeconds") or 0)


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
    clocks: Mapping[str, Callable[[], float]] = attrs.field(factory=dict)
    """Each candidate's monotonic clock (what its elector judges expiry by), by name."""
    stamps: dict[int, dict[str, float]] = attrs.field(factory=dict)
    """For each revision that wrote the Lease: what every candidate's clock read when the
    first store member applied it."""
    record: tuple[int, str, int] | None = None
    """The Lease as last written: (revision, holder, leaseDurationSeconds)."""
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

    def lease_written(self, revision: int, records: Sequence[KeyValue]) -> None:
        """At the instant the first store member applies ``revision``: if it writes the
        Lease, note what every candidate's clock reads."""
        if any(kv.key == self.lease_key for kv in records):
            self.stamps[revision] = {name: read() for name, read in sorted(self.clocks.items())}

    def holder_written(self, revision: int, holder: str, duration: int = 0) -> str | None:
        """``revision`` wrote the Lease naming ``holder`` for ``duration`` seconds; returns
        why that breaks AtMostOneLeader, if it does (see the module docstring)."""
        previous, self.record = self.record, (revision, holder, duration)
        broken = None
        if previous is not None:
            before, old_holder, old_duration = previous
            if old_holder and holder and old_holder != holder and old_holder in self.acting:
                waited = self.waited(holder, before, revision)
                if waited is not None and waited < old_duration - CLOCK_SLACK:
                    broken = (
                        f"{holder} took the Lease over from {old_holder}, which may still act "
                        f"as leader, {waited:.3f} s of its own clock after the record it "
                        f"replaced was written (revision {before}, leaseDurationSeconds "
                        f"{old_duration}): two leaders act at once"
                    )
        if holder:
            self.acting[holder] = revision
        return broken

    def waited(self, candidate: str, since: int, until: int) -> float | None:
        """How far ``candidate``'s clock moved from revision ``since`` to ``until`` (None if
        either was not stamped)."""
        start, end = self.stamps.get(since, {}), self.stamps.get(until, {})
        if candidate not in start or candidate not in end:
            return None
        return end[candidate] - start[candidate]

    def overlapping(self) -> tuple[str, ...]:
        """The managers that may act at once now, if more than one; else ()."""
        return tuple(sorted(self.acting)) if len(self.acting) > 1 else ()
