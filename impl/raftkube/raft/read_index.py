"""Linearizable reads in the Raft core: ReadIndex rounds and the leader's read lease.

:class:`ReadIndex` keeps the reads a leader registered (etcd-io/raft's ``readOnly`` queue):
each remembers the commit index at registration and which servers acknowledged a heartbeat
sent after it; once a quorum did, the read completes as a :class:`~raftkube.raft.ready.ReadState`
in the next Ready. With ``NodeConfig.lease_read`` a completed round also extends the leader's
lease, during which :meth:`ReadIndex.lease_read_index` answers without a round trip
(docs/lease-reads.md). Kept apart from replication, which only carries the read context on
its heartbeats and hands the acknowledgements back here.
"""

from __future__ import annotations

from raftkube.raft.node_state import NodeState, NotLeaderError, PendingRead, RejectedError
from raftkube.raft.ready import ReadState
from raftkube_spec.raft import events as ev
from raftkube_spec.raft.types import Role


class ReadIndex(NodeState):
    """The leader's pending reads and its read lease."""

    def _register_read(self, read_id: int) -> None:
        """Register linearizable read ``read_id`` at the current commit index (the caller
        then sends the heartbeats whose answers confirm it)."""
        if not self.config.read_index:
            raise RejectedError("ReadIndex is switched off")
        if self.role is not Role.LEADER:
            raise NotLeaderError(f"server {self.id} is {self.role.value}, leader {self.leader}")
        if self.log.term_at(self.commit) != self.term:
            raise RejectedError("the leader has not yet committed an entry of its term")
        if self.pending_reads and read_id <= self.pending_reads[-1].read_id:
            raise RejectedError(f"read id {read_id} is not fresh")
        self.pending_reads.append(PendingRead(read_id, self.commit, {self.id}, self._ticks))
        if self._observer is not None:
            self._observer(ev.ReadIndexRequest(self.id, read_id))
        self._complete_reads()

    def lease_read_index(self) -> int | None:
        """With lease reads: the index a linearizable read may be served at (once applied)
        without a round trip, or None if there is no valid lease; the caller then starts a
        :meth:`read_index` round, whose quorum acknowledgement renews the lease.

        Valid while this node leads, has committed an entry of its term (so the commit
        index covers every entry committed before its term) and its tick count is below
        the registration tick of a quorum-acknowledged read plus ``lease_ticks``. No
        server can have voted in a higher term since: see docs/lease-reads.md."""
        if not self.config.lease_read or self.role is not Role.LEADER:
            return None
        if self.log.term_at(self.commit) != self.term or self._ticks >= self._lease_until:
            return None
        return self.commit

    def _read_ctx(self) -> int:
        return self.pending_reads[-1].read_id if self.pending_reads else 0

    def _complete_reads(self) -> None:
        done = [r for r in self.pending_reads if self._is_quorum(r.acks)]
        for r in done:
            self.pending_reads.remove(r)
            if self.config.lease_read:
                self._lease_until = max(self._lease_until, r.tick + self.config.lease_ticks)
            self._read_states.append(ReadState(r.read_id, r.index))
            if self._observer is not None:
                self._observer(ev.ReadIndexComplete(self.id, r.read_id))
