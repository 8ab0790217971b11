"""The output batch of a :class:`~raftkube.raft.node.RaftNode`, as etcd-io/raft's ``Ready``.

A driver handles a Ready in this order: persist (``truncate_from``, then ``snapshot``, then
``entries``, then ``hard_state``; sync if ``must_sync``), then send ``messages``, then apply
the snapshot and ``committed_entries``, serve ``read_states``, and finally call
``RaftNode.advance(ready)``.
Messages must not leave before the persistence they depend on: a vote or an acknowledgement
sent before the term, vote or entries it vouches for are durable can break safety. A leader's
Ready may say otherwise (``send_before_persist``): the driver may then send first and persist
while the followers do.
"""

from __future__ import annotations

import attrs

from raftkube.raft.log import Snapshot
from raftkube.storage.state import HardState
from raftkube_spec.raft.messages import Message
from raftkube_spec.raft.types import Entry


@attrs.frozen
class ReadState:
    """A linearizable read confirmed by a quorum: serve it once ``index`` is applied."""

    read_id: int
    index: int


@attrs.frozen
class Ready:
    hard_state: HardState | None = None
    """New term/vote/commit to persist, or None if unchanged."""
    truncate_from: int | None = None
    """Delete persisted entries from this index on, before anything else."""
    snapshot: Snapshot | None = None
    """A new snapshot to persist (and, if installed from a leader, to restore)."""
    first_index: int = 0
    entries: tuple[Entry, ...] = ()
    """Entries to append, the first at ``first_index``."""
    messages: tuple[Message, ...] = ()
    committed_first_index: int = 0
    committed_entries: tuple[Entry, ...] = ()
    """Entries to apply, the first at ``committed_first_index``."""
    read_states: tuple[ReadState, ...] = ()
    send_before_persist: bool = False
    """A leader's Ready whose term and vote are already durable and which neither truncates
    nor installs a snapshot: its messages may leave before its writes are made durable, so
    the followers write the new entries while the leader does (Raft thesis 10.2.1, as etcd's
    leader sends). Safe because the leader counts itself for an entry only once the driver
    reports it durable (``advance``), and nothing in a leader's messages vouches for its own
    log: it asks others to store entries, and tells them what a quorum already holds."""
    must_sync: bool = False
    """etcd-io/raft's ``MustSync``: this Ready's writes must be durable (synced) before its
    messages leave. False when nothing is written, or only the commit index, which is advisory
    and becomes durable with the next sync."""

    @property
    def must_persist(self) -> bool:
        return bool(
            self.hard_state is not None
            or self.truncate_from is not None
            or self.snapshot is not None
            or self.entries
        )

    def is_empty(self) -> bool:
        return not (
            self.must_persist or self.messages or self.committed_entries or self.read_states
        )
