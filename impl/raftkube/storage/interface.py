"""The storage contract the Raft driver depends on.

The driver is written against this :class:`Storage` protocol, not against files, so the
deterministic simulator in ``fuzz/`` can substitute an in-memory disk whose crashes drop
exactly the writes that were not yet synced. :class:`~raftkube.storage.raft_log_store.RaftLogStore`
is the file-backed implementation.

Contract, which every implementation must honour because the driver's safety argument rests
on it:

* Writes (:meth:`Storage.append_entries`, :meth:`Storage.set_hard_state`,
  :meth:`Storage.truncate_suffix`) take effect in call order and are **not** durable until
  :meth:`Storage.sync` returns. The driver must not answer an RPC, count itself in a quorum or
  acknowledge a client before that.
* A crash keeps a *prefix* of the write sequence that includes at least everything synced;
  :meth:`Storage.recover` returns the state after that prefix.
* :meth:`Storage.save_snapshot` is itself a durability point: when it returns, the snapshot
  and every write made before it are durable.
* Misuse that would break a Raft invariant (a gap in the log, truncating committed entries,
  changing a vote within a term, a commit index beyond the log) raises :class:`ValueError`
  instead of being persisted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from raftkube.storage.state import HardState, LogEntry, RecoveredState, Snapshot


@runtime_checkable
class Storage(Protocol):
    """Durable hard state, log and snapshot for one Raft member."""

    def recover(self) -> RecoveredState:
        """Load the durable state; must be called once, before any other method."""
        ...

    def append_entries(self, entries: Sequence[LogEntry]) -> None:
        """Append entries that continue the log exactly at ``last_index + 1``."""
        ...

    def set_hard_state(self, hard_state: HardState) -> None:
        """Record a new term / vote / commit index."""
        ...

    def truncate_suffix(self, from_index: int) -> None:
        """Delete entries ``from_index`` onwards (a conflict with the leader's log)."""
        ...

    def stage_snapshot(self, snapshot: Snapshot) -> None:
        """Optionally do ahead of :meth:`save_snapshot` the part of it that need not wait
        for the log: writing the snapshot's own file durably. Called from another thread
        while the log is written, so it must touch nothing the other methods use; it records
        nothing, and a crash after it loses nothing. A storage may do nothing here."""
        ...

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Durably store ``snapshot`` and drop the log entries it covers."""
        ...

    def sync(self) -> None:
        """Make every earlier write durable (the group-commit point)."""
        ...

    def close(self) -> None:
        """Release files and locks; unsynced writes may be lost."""
        ...
