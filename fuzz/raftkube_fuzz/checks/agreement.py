"""State-machine safety on the applied stores: members that applied the same index hold the
same key/value state.

Checked after every step of an example, so it must be cheap: only members that share their
applied index with another are compared, since the image of a store is a whole serialization,
the costliest part of the check.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Sequence

from raftkube.mvcc import dump_snapshot
from raftkube.server.member import Member
from raftkube_fuzz.violation import Violation


def check_agreement(members: Sequence[Member | None]) -> None:
    """Raise ``StateMachineAgreement`` if two running members applied the same index but hold
    different key/value state (``None`` is a member that is down)."""
    up = [(i, member) for i, member in enumerate(members) if member is not None]
    sharing = collections.Counter(member.applied for _, member in up)
    by_index: dict[int, tuple[int, str]] = {}
    for i, member in up:
        if sharing[member.applied] < 2:
            continue
        digest = hashlib.sha256(dump_snapshot(member.mvcc)).hexdigest()
        seen = by_index.setdefault(member.applied, (i, digest))
        if seen[1] != digest:
            raise Violation(
                "StateMachineAgreement",
                f"members {seen[0]} and {i} applied index {member.applied} but hold "
                "different key/value state",
                {"members": [seen[0], i], "applied": member.applied},
            )
