"""The Raft model's ReadIndex reads: a leader records a read at its commit index and completes
it once a quorum answered a heartbeat sent after the read began. See :mod:`.model`.
"""

from __future__ import annotations

from . import events as ev
from .core import RaftCore
from .state import (
    CompletedRead,
    PendingRead,
    RaftState,
)
from .types import Role


class Reads(RaftCore):
    """Linearizable reads without log entries (ReadIndex), one method per action."""

    def read_index_request(self, s: RaftState, e: ev.ReadIndexRequest) -> RaftState | None:
        """A leader may serve reads only once it has committed an entry of its own term: before
        that, its commit index may lag entries an earlier leader committed."""
        v = s.servers[e.server]
        if not self.config.read_index or v.role is not Role.LEADER:
            return None
        if v.term_at(v.commit_index) != v.term or e.read_id <= s.last_read_id:
            return None
        read = PendingRead(
            read_id=e.read_id,
            index=v.commit_index,
            acks=frozenset({e.server}),
            required_index=s.max_commit_index(),
        )
        s = s.with_server(e.server, v.but(pending_reads=(*v.pending_reads, read)))
        return s.but(last_read_id=e.read_id)

    def read_index_complete(self, s: RaftState, e: ev.ReadIndexComplete) -> RaftState | None:
        v = s.servers[e.server]
        if v.role is not Role.LEADER:
            return None
        for read in v.pending_reads:
            if read.read_id == e.read_id and self.quorum(v, read.acks):
                break
        else:
            return None
        rest = tuple(r for r in v.pending_reads if r is not read)
        s = s.with_server(e.server, v.but(pending_reads=rest))
        done = CompletedRead(e.server, v.term, read.read_id, read.index, read.required_index)
        return s.but(reads=tuple(sorted((*s.reads, done))))
