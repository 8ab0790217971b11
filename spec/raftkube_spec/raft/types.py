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


@attrs.frozen(order=True)
class Membership:
    """A cluster configuration, the value of a configuration entry in the log.

    The entry carries the whole new configuration (the dissertation's C_new), not a delta as
    etcd's ConfChange does: a server's configuration is then the last one in its log, which is
    what "a configuration takes effect when appended" needs when a log is truncated. Learners
    receive the log but neither vote nor count towards any quorum (etcd's learners).
    """

    voters: tuple[ServerId, ...]
    learners: tuple[ServerId, ...] = ()

    def __attrs_post_init__(self) -> None:
        if set(self.voters) & set(self.learners):
            raise ValueError(f"servers {set(self.voters) & set(self.learners)} both vote and learn")

    @property
    def members(self) -> tuple[ServerId, ...]:
        return tuple(sorted((*self.voters, *self.learners)))

    def is_quorum(self, servers: frozenset[ServerId] | set[ServerId]) -> bool:
        """Whether ``servers`` include a majority of the voters (others do not count)."""
        return 2 * sum(1 for j in self.voters if j in servers) > len(self.voters)

    def added(self, peer: ServerId, learner: bool) -> Membership | None:
        """This configuration with ``peer`` added, or None if it is already a member."""
        if peer in self.voters or peer in self.learners:
            return None
        if learner:
            return Membership(self.voters, tuple(sorted((*self.learners, peer))))
        return Membership(tuple(sorted((*self.voters, peer))), self.learners)

    def promoted(self, peer: ServerId) -> Membership | None:
        """This configuration with learner ``peer`` made a voter, or None if it is not one."""
        if peer not in self.learners:
            return None
        return Membership(
            tuple(sorted((*self.voters, peer))), tuple(j for j in self.learners if j != peer)
        )

    def removed(self, peer: ServerId) -> Membership | None:
        """This configuration without ``peer``, or None if it is not a member."""
        if peer not in self.voters and peer not in self.learners:
            return None
        return Membership(
            tuple(j for j in self.voters if j != peer), tuple(j for j in self.learners if j != peer)
        )

    def __str__(self) -> str:
        text = "conf(" + ",".join(map(str, self.voters))
        if self.learners:
            text += " learners " + ",".join(map(str, self.learners))
        return text + ")"
