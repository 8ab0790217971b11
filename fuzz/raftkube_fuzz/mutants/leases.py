"""The ``cluster`` suite's leader-election mutant: a candidate that judges the Lease by the
holder's wall clock instead of its own monotonic one."""

from __future__ import annotations

import datetime

from raftkube.controllers import leaderelection
from raftkube.controllers.leaderelection import LeaderElectionRecord, Now
from raftkube_fuzz.mutants.base import CONTROL_PLANE, Mutant, patch

# --- lease-judged-by-remote-clock ----------------------------------------------------------------


def micro_time_seconds(stamp: str) -> float:
    """A ``metav1.MicroTime`` (``2026-01-01T00:00:00.000000Z``) as Unix seconds; an empty one
    is Go's zero time, long past."""
    if not stamp:
        return float("-inf")
    moment = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.replace(tzinfo=datetime.UTC).timestamp()


def _may_acquire_by_renew_time(
    identity: str, record: LeaderElectionRecord, observed_time: float, now: Now
) -> bool:
    if not record.holder_identity or record.holder_identity == identity:
        return True
    # MUTANT: the Lease expires leaseDurationSeconds after the renewTime its holder stamped
    # with its own wall clock, judged against ours (client-go #448): any offset between the two
    # hosts' wall clocks moves the expiry, so a candidate ahead takes over a live leader.
    renewed = micro_time_seconds(record.renew_time)
    return renewed + record.lease_duration_seconds <= now.wall


MUTANTS = (
    Mutant(
        "lease-judged-by-remote-clock",
        "leader election judges a Lease expired by its holder's renewTime against the local "
        "wall clock",
        "cluster",
        "AtMostOneLeader",
        True,
        patch(leaderelection, "may_acquire", _may_acquire_by_renew_time),
        dict(CONTROL_PLANE),
    ),
)
