"""What a Raft node hands its driver: the Ready batch, and when its writes must be synced.

:class:`ReadyOutput` turns what the node produced since the last :meth:`~ReadyOutput.advance`
(new hard state, entries, a truncation, a snapshot, messages, committed entries, completed
reads) into one :class:`~raftkube.raft.ready.Ready`, as etcd-io/raft's ``RawNode.Ready`` and
``Advance`` do, and decides, as etcd-io/raft's ``MustSync``, whether the driver must make the
Ready's writes durable before sending its messages. That rule belongs to the Raft core, not to
the driver: it is the core that knows which of its outputs a message vouches for. Kept apart
from the protocol's rules because this is the node's only interface to storage and network.
"""

from __future__ import annotations

from raftkube.raft.node_state import NodeState
from raftkube.raft.ready import Ready
from raftkube.storage.state import HardState
from raftkube_spec.raft.types import Role


class ReadyOutput(NodeState):
    """The node's output side: ``has_ready``, ``ready``, ``advance``."""

    def has_ready(self) -> bool:
        return bool(
            self._msgs
            or self._read_states
            or self._pending_snapshot is not None
            or self._truncate_from is not None
            or self._unstable_from <= self.log.last_index
            or self._applied < self.commit
            or self._hard_state_changed()
        )

    def has_only_messages(self) -> bool:
        """A :meth:`ready` now would hold messages and nothing else: nothing to persist,
        apply or serve, so a driver may send them at once."""
        return bool(
            self._msgs
            and not self._read_states
            and self._pending_snapshot is None
            and self._truncate_from is None
            and self._unstable_from > self.log.last_index
            and self._applied >= self.commit
            and not self._hard_state_changed()
        )

    def _hard_state_changed(self) -> bool:
        """``self._hard_state() != self._persisted``, without building a HardState: asked
        after every message and tick."""
        p = self._persisted
        return self.term != p.term or self.vote != p.vote or self.commit > p.commit

    def ready(self) -> Ready:
        """Everything produced since the last :meth:`advance`. Handle it, then advance."""
        hs = self._hard_state() if self._hard_state_changed() else None
        first = max(self._unstable_from, self.log.first_index)
        apply_from = max(self._applied, self.log.snapshot.index) + 1
        entries = self.log.slice(first - 1, self.log.last_index)
        log_changed = bool(
            entries or self._truncate_from is not None or self._pending_snapshot is not None
        )
        rd = Ready(
            hard_state=hs,
            truncate_from=self._truncate_from,
            snapshot=self._pending_snapshot,
            first_index=first,
            entries=entries,
            messages=tuple(self._msgs),
            committed_first_index=apply_from,
            committed_entries=self.log.slice(apply_from - 1, self.commit),
            read_states=tuple(self._read_states),
            send_before_persist=self._may_send_before_persist(hs),
            must_sync=self._must_sync(hs, log_changed),
        )
        if self.on_ready is not None:
            self.on_ready(rd)
        return rd

    def _may_send_before_persist(self, hs: HardState | None) -> bool:
        """Whether the Ready may send before its writes are durable (``Ready.send_before_persist``):
        a leader's, with its term and vote already durable, no truncation and no snapshot."""
        if self.role is not Role.LEADER or self._truncate_from is not None:
            return False
        if self._pending_snapshot is not None:
            return False
        p = self._persisted
        return hs is None or (hs.term == p.term and hs.vote == p.vote)

    def _must_sync(self, hs: HardState | None, log_changed: bool) -> bool:
        """etcd-io/raft's ``MustSync(st, prevst, entsnum)``: whether a Ready's writes must be
        durable before its messages leave. A change to the log (entries, a truncation, a
        snapshot) must: an acknowledgement vouches for it. So must a new term or vote: one
        forgotten in a crash lets this server vote twice in a term. A change of the commit
        index alone needs no sync of its own (the commit index is advisory: a restart may
        recover an older one, see :class:`~raftkube.raft.ready.HardState`); it is written now
        and becomes durable with the next sync. The previous hard state is the one the last
        advanced Ready carried, which its driver synced if its term or vote changed."""
        if log_changed:
            return True
        p = self._persisted
        return hs is not None and (hs.term != p.term or hs.vote != p.vote)

    def advance(self, rd: Ready) -> None:
        """The driver persisted, sent and applied ``rd``."""
        if rd.hard_state is not None:
            self._persisted = rd.hard_state
        if rd.entries or rd.snapshot is not None or rd.truncate_from is not None:
            self._unstable_from = max(self._unstable_from, rd.first_index + len(rd.entries))
        if rd.truncate_from is not None and self._truncate_from == rd.truncate_from:
            self._truncate_from = None
        if rd.snapshot is not None and self._pending_snapshot is rd.snapshot:
            self._pending_snapshot = None
        if rd.snapshot is not None:
            self._applied = max(self._applied, rd.snapshot.index)
        if rd.committed_entries:
            self._applied = rd.committed_first_index + len(rd.committed_entries) - 1
        del self._msgs[: len(rd.messages)]
        del self._read_states[: len(rd.read_states)]

    def _hard_state(self) -> HardState:
        """The persisted commit index never goes back (storage refuses that), even though the
        node itself restarts from the snapshot index."""
        return HardState(self.term, self.vote, max(self.commit, self._persisted.commit))
