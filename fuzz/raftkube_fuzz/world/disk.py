"""An in-memory :class:`~raftkube.storage.interface.Storage` whose crashes lose what was not synced.

The simulated world gives every member a :class:`SimDisk` instead of a
:class:`~raftkube.storage.raft_log_store.RaftLogStore`. It keeps the same *logical* record
sequence the file store writes to its WAL (HARD_STATE, ENTRY, TRUNCATE_SUFFIX, SNAPSHOT with a
keep-suffix flag) and replays it with the same literal semantics, so what a member recovers
after a simulated crash is what it would recover from the real files after a real one - without
the cost of files and fsyncs, and deterministically.

Durability model (the :class:`~raftkube.storage.interface.Storage` contract made concrete):

* Every write appends a record; ``synced`` counts the durable prefix. :meth:`SimDisk.sync`
  makes all records durable; :meth:`SimDisk.save_snapshot` is itself a durability point.
* :meth:`SimDisk.crash` keeps the synced prefix plus the first ``keep_unsynced`` unsynced
  records (a torn write: the OS had flushed some pages, and the real WAL's recovery keeps the
  checksummed prefix) and drops the rest. The next :meth:`SimDisk.recover` returns the state
  after the kept prefix.
* The synced prefix is also replayed incrementally into a second view, so
  :meth:`SimDisk.durable_state` (read by the conformance checker after every sync) costs
  nothing proportional to the history.

Misuse that the file store refuses raises the same :class:`ValueError` here, so a driver bug
surfaces in simulation exactly as it would in production.

Disk faults (:meth:`SimDisk.inject_fault`): a full disk (ENOSPC) or a read-only file system
(EROFS) makes every durability point (:meth:`SimDisk.sync`, :meth:`SimDisk.save_snapshot`)
raise that ``OSError``, as the file store's ``write``/``fsync`` would; the writes before it
only buffer, there as here, so they succeed. After a failure the disk refuses every call
with :class:`~raftkube.storage.errors.WalFailedError` until it is recovered again, as the
write-ahead log's handle is poisoned until reopened. What the failed sync had buffered is
neither synced nor lost: a later :meth:`SimDisk.crash` keeps a prefix of it, as the real log's
recovery keeps the complete records that reached the file before space ran out and drops the
torn one after them.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import attrs

from raftkube.storage import rules
from raftkube.storage.errors import WalFailedError
from raftkube.storage.state import HardState, LogEntry, RecoveredState, Snapshot, SnapshotMeta

if TYPE_CHECKING:
    from raftkube.storage.interface import Storage


@attrs.frozen
class HardStateRecord:
    """Assign the hard state."""

    hard_state: HardState


@attrs.frozen
class EntryRecord:
    """Store ``entry`` and delete everything above it (the writer appends only at the end)."""

    entry: LogEntry


@attrs.frozen
class TruncateRecord:
    """Delete entries ``>= from_index``."""

    from_index: int


@attrs.frozen
class SnapshotRecord:
    """Install ``snapshot``: drop the entries it covers, or every entry unless ``keep``.

    ``keep`` is decided by the writer (its own entry at the snapshot index has the snapshot's
    term), so replay never reads state - the same rule as the file store's SNAPSHOT record.
    """

    snapshot: Snapshot
    keep: bool


Record = HardStateRecord | EntryRecord | TruncateRecord | SnapshotRecord

SyncHook = Callable[[int, "SimDisk"], None]
"""Called as ``on_sync(member_id, disk)`` after each durability point."""


@attrs.define
class DiskView:
    """The state a record prefix describes; ``entries`` are contiguous after the snapshot."""

    hard_state: HardState = attrs.Factory(HardState)
    entries: list[LogEntry] = attrs.Factory(list)
    snapshot: Snapshot | None = None

    def apply(self, record: Record) -> None:
        """Apply one record literally (see :class:`SnapshotRecord`)."""
        if isinstance(record, HardStateRecord):
            self.hard_state = record.hard_state
        elif isinstance(record, EntryRecord):
            self.delete_from(record.entry.index)
            self.entries.append(record.entry)
        elif isinstance(record, TruncateRecord):
            self.delete_from(record.from_index)
        else:
            if record.keep:
                cut = max(0, record.snapshot.meta.index - self.first_index + 1)
                del self.entries[:cut]
            else:
                self.entries.clear()
            self.snapshot = record.snapshot

    def delete_from(self, index: int) -> None:
        """Delete entries with index ``>= index``."""
        del self.entries[max(0, index - self.first_index) :]

    @property
    def snapshot_meta(self) -> SnapshotMeta | None:
        """Metadata of the current snapshot, if any."""
        return None if self.snapshot is None else self.snapshot.meta

    @property
    def first_index(self) -> int:
        """Index the first entry has (or would have): one past the snapshot."""
        return 1 if self.snapshot is None else self.snapshot.meta.index + 1

    @property
    def last_index(self) -> int:
        """Index of the last entry, or the snapshot index when there is none."""
        return self.first_index + len(self.entries) - 1

    @property
    def last_term(self) -> int:
        """Term of the last entry, or of the snapshot when there is none."""
        if self.entries:
            return self.entries[-1].term
        return 0 if self.snapshot is None else self.snapshot.meta.term

    def term_at(self, index: int) -> int | None:
        """Term of entry ``index`` if it is in the log (the snapshot's term at its index)."""
        if self.first_index <= index <= self.last_index:
            return self.entries[index - self.first_index].term
        if self.snapshot is not None and index == self.snapshot.meta.index:
            return self.snapshot.meta.term
        return None

    def copy(self) -> DiskView:
        """An independent copy (entries and snapshots are immutable, the list is not)."""
        return DiskView(self.hard_state, list(self.entries), self.snapshot)

    def recovered(self) -> RecoveredState:
        """This view as the storage layer's restart value."""
        return RecoveredState(self.hard_state, tuple(self.entries), self.snapshot)


class SimDisk:
    """In-memory Raft storage for one simulated member (see module docstring).

    Lifecycle mirrors a store instance per process: :meth:`recover` opens the disk and must come
    before any write; :meth:`crash` closes it, and the restarted member calls :meth:`recover`
    again on the same disk.
    """

    def __init__(self, member_id: int, on_sync: SyncHook | None = None) -> None:
        self.member_id = member_id
        self.on_sync = on_sync
        self._records: list[Record] = []
        self._synced = 0
        self._current = DiskView()
        self._durable = DiskView()
        self._durable_cache: RecoveredState | None = None
        self._open = False
        self.fault: int | None = None
        """The errno every durability point fails with (:meth:`inject_fault`), if any."""
        self._failed = False
        self.faults_raised = 0
        self.syncs = 0
        self.crashes = 0
        self.last_durability_point = ""
        """``"sync"`` or ``"snapshot"``: which call made the latest durability point. A checker
        hooked on ``on_sync`` needs it because ``save_snapshot`` may run in the middle of a
        driver's batch, when the rest of the batch is not written yet."""

    # ------------------------------------------------------------------ lifecycle

    def recover(self) -> RecoveredState:
        """Open the disk and return the state after every record it holds."""
        if self._open:
            raise ValueError("recover() may only be called once per incarnation of the disk")
        self._open = True
        self._failed = False
        return self._current.recovered()

    def crash(self, keep_unsynced: int = 0) -> None:
        """Lose power: keep the synced records and the first ``keep_unsynced`` unsynced ones
        (more than there are keeps them all), drop the rest, and close the disk."""
        if keep_unsynced < 0:
            raise ValueError(f"keep_unsynced must be >= 0, got {keep_unsynced}")
        kept = self._synced + min(keep_unsynced, self.unsynced_count)
        del self._records[kept:]
        # Whatever survived the crash is on the platter now: it is durable from here on.
        self._advance_durable()
        self._current = self._durable.copy()
        self._open = False
        self._failed = False  # The failed handle died with the process.
        self.crashes += 1

    def close(self) -> None:
        """Sync pending writes and close, like the file store's default close (which does
        not sync a failed log)."""
        if self._open and not self._failed:
            self.sync()
        self._open = False

    def inject_fault(self, err: int | None) -> None:
        """From now on every durability point fails with ``OSError(err)``: ``errno.ENOSPC``
        (the disk is full) or ``errno.EROFS`` (the data dir became read-only); None: the
        disk takes writes again (a member that already failed stays failed until it is
        restarted, as its log handle does)."""
        if err not in (None, errno.ENOSPC, errno.EROFS):
            raise ValueError(f"not a disk fault: {err!r}")
        self.fault = err

    @property
    def failed(self) -> bool:
        """A durability point failed since the last recovery: every call is refused."""
        return self._failed

    # ------------------------------------------------------------------ writes

    def append_entries(self, entries: Sequence[LogEntry]) -> None:
        """Append entries continuing the log at ``last_index + 1`` with non-decreasing terms;
        the whole batch is checked before any of it is written."""
        self._require_open()
        rules.check_append(entries, self._current.last_index, self._current.last_term)
        for entry in entries:
            self._write(EntryRecord(entry))

    def set_hard_state(self, hard_state: HardState) -> None:
        """Record a new hard state; refuses a lower term, a changed vote within a term, a lower
        commit, or a commit beyond the log. An unchanged state writes nothing."""
        self._require_open()
        if not rules.hard_state_changes(
            hard_state, self._current.hard_state, self._current.last_index
        ):
            return
        self._write(HardStateRecord(hard_state))

    def truncate_suffix(self, from_index: int) -> None:
        """Delete entries ``from_index`` onwards; committed or snapshotted entries are refused,
        and truncating beyond the end is a no-op."""
        self._require_open()
        current = self._current
        if not rules.truncation_needed(
            from_index, current.hard_state.commit, current.first_index, current.last_index
        ):
            return
        self._write(TruncateRecord(from_index))

    def stage_snapshot(self, snapshot: Snapshot) -> None:
        """Nothing: the simulated disk writes a snapshot whole in :meth:`save_snapshot` (the
        staging is the real store's way to keep a long write off the event loop)."""

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Install ``snapshot`` durably. Keeps the entries after it when the log holds the
        snapshot's entry with the same term, else discards the whole log (InstallSnapshot's
        conflict rule). Refused if not newer than the current snapshot or if it contradicts a
        committed entry."""
        self._require_open()
        meta = snapshot.meta
        keep = rules.snapshot_keeps_log(
            meta,
            self._current.snapshot_meta,
            self._current.term_at(meta.index),
            self._current.hard_state.commit,
        )
        self._fail_if_faulty()
        self._write(SnapshotRecord(snapshot, keep))
        self._make_durable("snapshot")

    def sync(self) -> None:
        """Make every write so far durable."""
        self._require_open()
        self._fail_if_faulty()
        self._make_durable("sync")

    # ------------------------------------------------------------------ introspection

    def durable_state(self) -> RecoveredState:
        """What a crash with ``keep_unsynced=0`` would recover right now."""
        if self._durable_cache is None:
            self._durable_cache = self._durable.recovered()
        return self._durable_cache

    def current_state(self) -> RecoveredState:
        """The state after every write, synced or not."""
        return self._current.recovered()

    @property
    def is_open(self) -> bool:
        """Whether the disk was recovered since construction or the last crash."""
        return self._open

    @property
    def record_count(self) -> int:
        """Records on the disk, synced or not."""
        return len(self._records)

    @property
    def synced_count(self) -> int:
        """Length of the durable prefix of the records."""
        return self._synced

    @property
    def unsynced_count(self) -> int:
        """Records a crash may drop."""
        return len(self._records) - self._synced

    @property
    def records(self) -> tuple[Record, ...]:
        """Every record on the disk, oldest first (for traces and tests)."""
        return tuple(self._records)

    # ------------------------------------------------------------------ internals

    def _require_open(self) -> None:
        if not self._open:
            raise ValueError(f"disk of member {self.member_id} is not open: call recover() first")
        if self._failed:
            raise WalFailedError(
                f"an earlier sync of member {self.member_id}'s disk failed; reopen to recover"
            )

    def _fail_if_faulty(self) -> None:
        """Raise the injected fault at a durability point, poisoning the disk. A snapshot
        that fails is not written at all (the file store writes it to a temporary name and
        renames it only once synced)."""
        if self.fault is None:
            return
        self._failed = True
        self.faults_raised += 1
        raise OSError(self.fault, os.strerror(self.fault), f"sim-disk-{self.member_id}")

    def _write(self, record: Record) -> None:
        self._records.append(record)
        self._current.apply(record)

    def _advance_durable(self) -> None:
        for record in self._records[self._synced :]:
            self._durable.apply(record)
            self._durable_cache = None
        self._synced = len(self._records)

    def _make_durable(self, point: str) -> None:
        self._advance_durable()
        self.syncs += 1
        self.last_durability_point = point
        if self.on_sync is not None:
            self.on_sync(self.member_id, self)


if TYPE_CHECKING:

    def _implements_storage(disk: SimDisk) -> Storage:
        """Static proof (checked by mypy) that the simulated disk satisfies the protocol."""
        return disk
