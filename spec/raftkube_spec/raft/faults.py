"""The Raft model's faults: a server crashing and recovering from what it persisted, and the
network dropping, duplicating, or leaving behind stale responses. See :mod:`.model`.
"""

from __future__ import annotations

from . import events as ev
from .core import RaftCore
from .messages import (
    RESPONSE_TYPES,
)
from .state import (
    RaftState,
    ServerState,
    bag_contains,
    bag_find,
    bag_remove_at,
)
from .types import Role


class Faults(RaftCore):
    """Crashes and the network's misbehaviour, one method per action."""

    def restart(self, s: RaftState, e: ev.Restart) -> RaftState | None:
        """Crash and recover: only term, vote, log and snapshot were persisted. With
        ``parallel_persist`` a leader's entries after its own matchIndex were not (a snapshot is
        durable of itself): the crash loses them."""
        v = s.servers[e.server]
        log = v.log
        if self.config.parallel_persist and v.role is Role.LEADER:
            log = log[: max(v.match_index[e.server], v.snapshot_index)]
        fresh = ServerState(
            term=v.term,
            voted_for=v.voted_for,
            log=log,
            snapshot_index=v.snapshot_index,
            commit_index=v.snapshot_index,
        )
        return s.with_server(e.server, fresh).but(restarts=s.restarts + 1)

    def drop_stale_response(self, s: RaftState, e: ev.DropStaleResponse) -> RaftState | None:
        m = e.message
        if not isinstance(m, RESPONSE_TYPES) or not bag_contains(s.network, m):
            return None
        if m.term >= s.servers[m.dest].term:
            return None
        return self.discard(s, m)

    def duplicate_message(self, s: RaftState, e: ev.DuplicateMessage) -> RaftState | None:
        if not self.config.network_faults or not bag_contains(s.network, e.message):
            return None
        return self.send(s, e.message)

    def drop_message(self, s: RaftState, e: ev.DropMessage) -> RaftState | None:
        if not self.config.network_faults:
            return None
        at = bag_find(s.network, e.message)
        if at < 0:
            return None
        return s.but(network=bag_remove_at(s.network, at))
