"""The small values every part of the Raft model shares: server ids, roles and log entries."""

from __future__ import annotations

import enum
from collections.abc import Hashable

import attrs

ServerId = int
"""Servers are numbered 0..N-1; the model never needs names, and ints hash deterministically."""

Value = Hashable
"""A client command. The model never looks inside it: it only has to compare and hash."""


class Role(enum.Enum):
    """The roles of the paper, plus etcd's PreCandidate (dissertation 9.6)."""

    FOLLOWER = "Follower"
    PRE_CANDIDATE = "PreCandidate"
    CANDIDATE = "Candidate"
    LEADER = "Leader"

    def __lt__(self, other: Role) -> bool:
        return _ROLE_ORDER[self] < _ROLE_ORDER[other]


_ROLE_ORDER = {role: n for n, role in enumerate(Role)}


@attrs.frozen(order=True)
class Entry:
    """One log entry. Its index is its position in the log (1-based), so it is not stored."""

    term: int
    value: Value = attrs.field(order=repr)
