"""The file-backed :class:`~raftkube.storage.interface.Storage`: Raft meaning on top of the WAL.

Directory layout: ``<root>/wal/`` (a :class:`~raftkube.storage.wal.WriteAheadLog`, whose lock
also guards the snapshots) and ``<root>/snapshots/`` (a
:class:`~raftkube.storage.snapshot.SnapshotStore`).

Record types and msgpack payloads written to the WAL:

=====  ===============  =====================================================================
Type   Name             Payload
=====  ===============  =====================================================================
1      HARD_STATE       ``[term, vote_or_nil, commit]``
2      ENTRY            ``[index, term, data_bytes]``
3      TRUNCATE_SUFFIX  ``[from_index]``
4      SNAPSHOT         ``[index, term, keep_suffix]``
=====  ===============  =====================================================================

Replay semantics are deliberately *literal*: each record is an assignment or deletion that
does not depend on the state it is applied to. ENTRY ``i`` stores entry ``i`` and deletes
every entry above ``i`` (the writer only appends at the end, so there were none);
TRUNCATE_SUFFIX ``i`` deletes entries ``>= i``; SNAPSHOT deletes entries ``<= index`` when
``keep_suffix`` is true and every entry otherwise (the writer decided, from the term of its own
entry at ``index``, whether the suffix agrees with the snapshot). Because no record reads state,
replaying only a *suffix* of the log yields the right answer for every entry written inside
that suffix. That is what makes segment release safe: after a snapshot, the store re-appends
SNAPSHOT and HARD_STATE, syncs, and releases only segments older than the one holding the
oldest live entry, so every live entry, the latest snapshot record and the latest hard state
are all in the suffix that remains.

Recovery then reconciles the log with the snapshot files and checks the invariants the
writer enforces: the log is contiguous from the snapshot, the commit index is within the log,
and the snapshot the log calls durable exists. A violation means damage and raises
:class:`~raftkube.storage.errors.StorageCorruptError`. Because a crash keeps a prefix of the
record sequence and every prefix of a valid sequence satisfies those invariants, the checks
cannot fire on an ordinary crash. A snapshot file the log does not mention yet (a crash inside
:meth:`RaftLogStore.save_snapshot` after the file became durable) is legitimate: recovery
applies it and writes and syncs its SNAPSHOT record before any new write.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from raftkube.storage import rules
from raftkube.storage.errors import StorageCorruptError
from raftkube.storage.interface import Storage
from raftkube.storage.snapshot import SnapshotStore
from raftkube.storage.state import (
    HardState,
    LogEntry,
    RecoveredState,
    Snapshot,
    SnapshotMeta,
)
from raftkube.storage.wal import (
    DEFAULT_SEGMENT_BYTES,
    TornTail,
    WalRecord,
    WriteAheadLog,
    segment_name,
)


class RecordType(enum.IntEnum):
    """WAL record types used by the Raft store."""

    HARD_STATE = 1
    ENTRY = 2
    TRUNCATE_SUFFIX = 3
    SNAPSHOT = 4


def _where(record: WalRecord) -> str:
    return f"{segment_name(record.position.segment)} offset {record.position.offset}"


def _fields(record: WalRecord, count: int) -> list[Any]:
    payload = record.payload
    if not isinstance(payload, list) or len(payload) != count:
        raise StorageCorruptError(
            f"record type {record.record_type} at {_where(record)} has a malformed payload"
        )
    return payload


def _vote(record: WalRecord, vote: Any) -> int | None:
    """A vote is a member's Raft id. Data dirs written before votes were stored as integers
    hold them as decimal strings, which still read back as the same id."""
    if vote is None or (isinstance(vote, int) and not isinstance(vote, bool)):
        return vote
    if isinstance(vote, str) and vote.isdecimal():
        return int(vote)
    raise StorageCorruptError(f"bad vote {vote!r} at {_where(record)}")


def _int(record: WalRecord, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise StorageCorruptError(f"record at {_where(record)} holds a bad integer {value!r}")
    return value


@attrs.define
class ReplayedLog:
    """The state described by a sequence of WAL records, before reconciling with snapshots.

    ``entries`` is always contiguous; ``segments[k]`` is the WAL segment holding the write of
    ``entries[k]`` that is still in effect (needed later to decide which segments to release).
    """

    hard_state: HardState = attrs.Factory(HardState)
    entries: list[LogEntry] = attrs.Factory(list)
    segments: list[int] = attrs.Factory(list)
    snapshot: SnapshotMeta | None = None

    def apply(self, record: WalRecord) -> None:
        """Apply one record literally (see module doc)."""
        try:
            kind = RecordType(record.record_type)
        except ValueError:
            raise StorageCorruptError(
                f"unknown record type {record.record_type} at {_where(record)}"
            ) from None
        if kind is RecordType.HARD_STATE:
            term, vote, commit = _fields(record, 3)
            self.hard_state = HardState(
                _int(record, term), _vote(record, vote), _int(record, commit)
            )
        elif kind is RecordType.ENTRY:
            index, term, data = _fields(record, 3)
            if not isinstance(data, bytes):
                raise StorageCorruptError(f"entry data is not bytes at {_where(record)}")
            self._store(LogEntry(_int(record, index), _int(record, term), data), record)
        elif kind is RecordType.TRUNCATE_SUFFIX:
            (from_index,) = _fields(record, 1)
            self.delete_from(_int(record, from_index))
        else:
            index, term, keep = _fields(record, 3)
            meta = SnapshotMeta(_int(record, index), _int(record, term))
            self.apply_snapshot(meta, keep=bool(keep))

    def _store(self, entry: LogEntry, record: WalRecord) -> None:
        if self.entries and entry.index > self.entries[-1].index + 1:
            raise StorageCorruptError(
                f"entry {entry.index} at {_where(record)} leaves a gap after entry "
                f"{self.entries[-1].index}"
            )
        self.delete_from(entry.index)
        self.entries.append(entry)
        self.segments.append(record.position.segment)

    def delete_from(self, index: int) -> None:
        """Delete entries with index >= ``index``."""
        if self.entries:
            keep = max(0, index - self.entries[0].index)
            del self.entries[keep:]
            del self.segments[keep:]

    def apply_snapshot(self, meta: SnapshotMeta, *, keep: bool) -> None:
        """Drop what ``meta`` covers; drop everything when the suffix disagrees with it."""
        if keep and self.entries:
            cut = max(0, min(len(self.entries), meta.index - self.entries[0].index + 1))
            del self.entries[:cut]
            del self.segments[:cut]
        elif not keep:
            self.entries.clear()
            self.segments.clear()
        self.snapshot = meta

    def term_at(self, index: int) -> int | None:
        """Term of the entry at ``index`` if it is in the log."""
        if self.entries and self.entries[0].index <= index <= self.entries[-1].index:
            return self.entries[index - self.entries[0].index].term
        return None


def replay(records: Iterable[WalRecord]) -> ReplayedLog:
    """Rebuild hard state, log and last recorded snapshot from WAL records, in order."""
    log = ReplayedLog()
    for record in records:
        log.apply(record)
    return log


def reconcile(
    log: ReplayedLog, newest_file: SnapshotMeta | None
) -> tuple[SnapshotMeta, bool] | None:
    """Combine a replayed log with the newest snapshot file and check the invariants.

    A snapshot file newer than the log's SNAPSHOT record is legitimate (a crash between
    writing the file and logging it); it is applied with the same rule the writer uses, and
    the ``(meta, keep_suffix)`` SNAPSHOT record the log is missing is returned so the caller
    can write it before anything else. That matters: the keep decision reads the log, so it
    must be pinned in the WAL before later writes change the log it was computed from. The
    reverse - the log calling a snapshot durable that does not exist - is damage.
    """
    recorded = log.snapshot
    if recorded is not None:
        if newest_file is None or newest_file.index < recorded.index:
            raise StorageCorruptError(
                f"the log records snapshot index {recorded.index} term {recorded.term} as "
                f"durable, but the newest snapshot file is {newest_file}"
            )
        if newest_file.index == recorded.index and newest_file.term != recorded.term:
            raise StorageCorruptError(
                f"snapshot file {newest_file} disagrees with the log's record {recorded}"
            )
    missing: tuple[SnapshotMeta, bool] | None = None
    if newest_file is not None and (recorded is None or newest_file.index > recorded.index):
        missing = (newest_file, log.term_at(newest_file.index) == newest_file.term)
        log.apply_snapshot(newest_file, keep=missing[1])
    base = 0 if log.snapshot is None else log.snapshot.index
    if log.entries and log.entries[0].index != base + 1:
        raise StorageCorruptError(
            f"the log starts at entry {log.entries[0].index} but the snapshot covers only up "
            f"to {base}: entries {base + 1}..{log.entries[0].index - 1} are missing"
        )
    last = log.entries[-1].index if log.entries else base
    if log.hard_state.commit > last:
        raise StorageCorruptError(
            f"commit index {log.hard_state.commit} is beyond the last log index {last}"
        )
    return missing


class RaftLogStore:
    """File-backed Raft storage implementing :class:`~raftkube.storage.interface.Storage`.

    Keeps a small mirror of the durable state (terms and segment numbers, not entry data) so it
    can refuse writes that would break a Raft invariant before they reach the disk.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        snapshots_retained: int = 2,
    ) -> None:
        self._root = Path(directory)
        self._segment_bytes = segment_bytes
        self._snapshots_retained = snapshots_retained
        self._wal: WriteAheadLog | None = None
        self._snapshots: SnapshotStore | None = None
        self._torn_tail: TornTail | None = None
        self._hard = HardState()
        self._snapshot: SnapshotMeta | None = None
        self._first = 1
        self._terms: list[int] = []
        self._entry_segments: list[int] = []
        self._used = False

    # ------------------------------------------------------------------ recovery

    def recover(self) -> RecoveredState:
        """Open the directory (creating it if new), replay the log and load the snapshot.

        Raises :class:`~raftkube.storage.errors.WalCorruptError`,
        :class:`~raftkube.storage.errors.SnapshotCorruptError` or
        :class:`~raftkube.storage.errors.StorageCorruptError` when the files are damaged in a
        way a crash cannot explain.
        """
        if self._used:
            raise ValueError("recover() may only be called once per RaftLogStore")
        self._used = True
        wal, recovery = WriteAheadLog.open(self._root / "wal", segment_bytes=self._segment_bytes)
        try:
            snapshots = SnapshotStore(self._root / "snapshots", retain=self._snapshots_retained)
            log = replay(recovery.records)
            snapshot = snapshots.load_latest()
            missing = reconcile(log, None if snapshot is None else snapshot.meta)
            if missing is not None:
                # Finish the save_snapshot that a crash interrupted after the file was durable.
                meta, keep = missing
                wal.append(RecordType.SNAPSHOT, [meta.index, meta.term, keep])
                wal.sync()
        except BaseException:
            wal.close(discard_pending=True)
            raise
        self._wal, self._snapshots, self._torn_tail = wal, snapshots, recovery.torn_tail
        self._hard = log.hard_state
        self._snapshot = log.snapshot
        self._first = 1 if log.snapshot is None else log.snapshot.index + 1
        self._terms = [entry.term for entry in log.entries]
        self._entry_segments = list(log.segments)
        return RecoveredState(log.hard_state, tuple(log.entries), snapshot)

    # ------------------------------------------------------------------ writes

    def append_entries(self, entries: Sequence[LogEntry]) -> None:
        """Buffer entries that must continue the log at ``last_index + 1`` with terms that
        never decrease. The whole batch is checked before any of it is written."""
        wal = self._require_wal()
        rules.check_append(entries, self.last_index, self.last_term)
        for entry in entries:
            position = wal.append(RecordType.ENTRY, [entry.index, entry.term, entry.data])
            self._terms.append(entry.term)
            self._entry_segments.append(position.segment)

    def set_hard_state(self, hard_state: HardState) -> None:
        """Buffer a new hard state. Refuses a lower term, a changed vote within a term, a lower
        commit index, or a commit index beyond the log; an unchanged state writes nothing."""
        wal = self._require_wal()
        if not rules.hard_state_changes(hard_state, self._hard, self.last_index):
            return
        wal.append(RecordType.HARD_STATE, [hard_state.term, hard_state.vote, hard_state.commit])
        self._hard = hard_state

    def truncate_suffix(self, from_index: int) -> None:
        """Buffer deletion of entries ``from_index`` onwards; committed entries and entries
        covered by the snapshot cannot be truncated. A no-op beyond the end of the log."""
        wal = self._require_wal()
        if not rules.truncation_needed(from_index, self._hard.commit, self._first, self.last_index):
            return
        wal.append(RecordType.TRUNCATE_SUFFIX, [from_index])
        keep = from_index - self._first
        del self._terms[keep:]
        del self._entry_segments[keep:]

    def stage_snapshot(self, snapshot: Snapshot) -> None:
        """Write ``snapshot``'s file durably ahead of :meth:`save_snapshot`, which then only
        renames it and records it in the log. This is the slow part of a save (the whole image
        written and fsynced) and touches only a temporary file in the snapshot directory, so
        it may run in another thread while the log is appended to and synced."""
        self._require_wal()
        assert self._snapshots is not None
        self._snapshots.stage(snapshot)

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store ``snapshot`` durably, drop the entries it covers, and reclaim WAL segments.

        If the log holds an entry at the snapshot's index with the snapshot's term, later
        entries are kept; otherwise (Raft's InstallSnapshot conflict rule) the whole log is
        discarded. Refused if the snapshot is not newer than the current one or would discard
        committed entries. Everything written before this call is durable when it returns.
        """
        wal = self._require_wal()
        snapshots = self._snapshots
        assert snapshots is not None
        meta = snapshot.meta
        keep = rules.snapshot_keeps_log(
            meta, self._snapshot, self.term_at(meta.index), self._hard.commit
        )
        # 1. The file must be durable before any log record points at it.
        snapshots.save(snapshot)
        # 2. Log it, and restate the hard state so it survives the release below.
        position = wal.append(RecordType.SNAPSHOT, [meta.index, meta.term, keep])
        wal.append(RecordType.HARD_STATE, [self._hard.term, self._hard.vote, self._hard.commit])
        if keep:
            cut = min(len(self._terms), meta.index - self._first + 1)
            del self._terms[:cut]
            del self._entry_segments[:cut]
        else:
            self._terms.clear()
            self._entry_segments.clear()
        self._snapshot, self._first = meta, meta.index + 1
        wal.sync()
        # 3. Only now may older segments and snapshots go. Entry segments never decrease
        # along the log, so the first live entry's segment is the oldest one still needed.
        oldest_needed = self._entry_segments[0] if self._entry_segments else position.segment
        wal.release_before(min(oldest_needed, position.segment))
        snapshots.prune()

    def sync(self) -> None:
        """Make every buffered write durable (one fsync for the whole batch)."""
        self._require_wal().sync()

    def close(self, *, discard_pending: bool = False) -> None:
        """Close the log (syncing buffered writes unless ``discard_pending``). Idempotent."""
        if self._wal is not None:
            self._wal.close(discard_pending=discard_pending)

    # ------------------------------------------------------------------ introspection

    @property
    def hard_state(self) -> HardState:
        """The latest hard state written (durable only after :meth:`sync`)."""
        return self._hard

    @property
    def snapshot_meta(self) -> SnapshotMeta | None:
        """The newest snapshot saved or recovered."""
        return self._snapshot

    @property
    def first_index(self) -> int:
        """Index of the first entry that is not covered by the snapshot."""
        return self._first

    @property
    def last_index(self) -> int:
        """Index of the last entry, or the snapshot index when the log is empty."""
        return self._first + len(self._terms) - 1

    @property
    def last_term(self) -> int:
        """Term of the last entry, or of the snapshot when the log is empty."""
        if self._terms:
            return self._terms[-1]
        return 0 if self._snapshot is None else self._snapshot.term

    def term_at(self, index: int) -> int | None:
        """Term of entry ``index`` if it is in the log (the snapshot's term at its index)."""
        if self._first <= index <= self.last_index:
            return self._terms[index - self._first]
        if self._snapshot is not None and index == self._snapshot.index:
            return self._snapshot.term
        return None

    @property
    def torn_tail(self) -> TornTail | None:
        """Unacknowledged bytes recovery dropped from the end of the log, for logging."""
        return self._torn_tail

    @property
    def wal(self) -> WriteAheadLog:
        """The underlying log (exposed for metrics and tests)."""
        return self._require_wal()

    def _require_wal(self) -> WriteAheadLog:
        if self._wal is None:
            raise ValueError("call recover() before using the store")
        return self._wal


if TYPE_CHECKING:

    def _implements_storage(store: RaftLogStore) -> Storage:
        """Static proof (checked by mypy) that the file store satisfies the protocol."""
        return store
