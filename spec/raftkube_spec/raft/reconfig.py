"""The Raft model's single-server membership changes (adding a learner or a voter, promoting a
learner, removing a member), each a configuration entry the leader appends; the rules for
when a change may start are in :mod:`.membership` and :meth:`RaftCore.may_change_membership
<raftkube_spec.raft.core.RaftCore.may_change_membership>`.
"""

from __future__ import annotations

from . import events as ev
from .core import RaftCore
from .state import (
    RaftState,
    ServerState,
)
from .types import Entry, Membership, ServerId


class Reconfiguration(RaftCore):
    """Membership changes, one method per action."""

    def add_member(self, s: RaftState, e: ev.AddMember) -> RaftState | None:
        v = s.servers[e.server]
        if not self.config.membership or not self.may_change_membership(v):
            return None
        new = self.members(v).added(e.peer, e.learner)
        if new is None:
            return None
        # A new member's progress starts afresh, as etcd's does: nothing known to match.
        match, nxt = list(v.match_index), list(v.next_index)
        match[e.peer], nxt[e.peer] = 0, v.last_index + 1
        v = v.but(match_index=tuple(match), next_index=tuple(nxt))
        return self.append_membership(s, e.server, v, new)

    def promote_member(self, s: RaftState, e: ev.PromoteMember) -> RaftState | None:
        v = s.servers[e.server]
        if not self.config.membership or not self.may_change_membership(v):
            return None
        new = self.members(v).promoted(e.peer)
        return None if new is None else self.append_membership(s, e.server, v, new)

    def remove_member(self, s: RaftState, e: ev.RemoveMember) -> RaftState | None:
        v = s.servers[e.server]
        if not self.config.membership or not self.may_change_membership(v):
            return None
        if e.peer == e.server:
            return None  # a leader hands over leadership before it is removed
        new = self.members(v).removed(e.peer)
        return None if new is None else self.append_membership(s, e.server, v, new)

    def append_membership(
        self, s: RaftState, i: ServerId, v: ServerState, new: Membership
    ) -> RaftState:
        """The leader appends configuration ``new``, in force for it from now on."""
        log = (*v.log, Entry(v.term, new))
        return s.with_server(i, self.appended_own(v, i, log))
