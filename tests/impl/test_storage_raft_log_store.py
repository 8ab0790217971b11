"""The file-backed Raft store: record meanings, truncation, snapshots, segment release."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from raftkube.storage import fsutil
from raftkube.storage.errors import SnapshotCorruptError, StorageCorruptError
from raftkube.storage.interface import Storage
from raftkube.storage.raft_log_store import RaftLogStore, RecordType
from raftkube.storage.snapshot import SnapshotStore, snapshot_name
from raftkube.storage.state import HardState, LogEntry, RecoveredState, Snapshot, SnapshotMeta
from raftkube.storage.wal import WriteAheadLog

SMALL = 200


def entries(first: int, last: int, term: int) -> list[LogEntry]:
    return [LogEntry(i, term, b"cmd-%d-%d" % (i, term)) for i in range(first, last + 1)]


def open_store(root: Path, segment_bytes: int = SMALL) -> tuple[RaftLogStore, RecoveredState]:
    store = RaftLogStore(root, segment_bytes=segment_bytes)
    return store, store.recover()


def reopen(store: RaftLogStore, root: Path, *, crash: bool = False) -> RecoveredState:
    store.close(discard_pending=crash)
    again, state = open_store(root)
    again.close()
    return state


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "member"


def test_fresh_store_is_empty_and_satisfies_the_protocol(root: Path) -> None:
    store, state = open_store(root)
    assert isinstance(store, Storage)
    assert state == RecoveredState(HardState(), (), None)
    assert (state.first_index, state.last_index) == (1, 0)
    store.close()


def test_entries_and_hard_state_round_trip(root: Path) -> None:
    store, _ = open_store(root)
    store.append_entries(entries(1, 50, 1))
    store.set_hard_state(HardState(term=2, vote=2, commit=30))
    store.append_entries(entries(51, 60, 2))
    store.sync()
    state = reopen(store, root)
    assert state.entries == tuple(entries(1, 50, 1) + entries(51, 60, 2))
    assert state.hard_state == HardState(2, 2, 30)
    assert len(list((root / "wal").glob("*.wal"))) > 3  # exercised several segments


def test_truncation_markers_rebuild_the_right_log(root: Path) -> None:
    store, _ = open_store(root)
    store.append_entries(entries(1, 10, 1))
    store.truncate_suffix(6)
    store.append_entries(entries(6, 8, 2))
    store.truncate_suffix(8)
    store.append_entries(entries(8, 12, 3))
    store.truncate_suffix(13)  # beyond the end: no-op
    store.sync()
    store.truncate_suffix(4)  # never synced: must not survive a crash
    state = reopen(store, root, crash=True)
    assert state.entries == tuple(entries(1, 5, 1) + entries(6, 7, 2) + entries(8, 12, 3))


def test_writes_that_would_break_raft_invariants_are_refused(root: Path) -> None:
    store, _ = open_store(root)
    store.append_entries(entries(1, 5, 2))
    with pytest.raises(ValueError, match="continue"):
        store.append_entries(entries(7, 8, 2))
    with pytest.raises(ValueError, match="term"):
        store.append_entries(entries(6, 6, 1))
    store.set_hard_state(HardState(term=3, vote=1, commit=2))
    with pytest.raises(ValueError, match="term"):
        store.set_hard_state(HardState(term=2, vote=1, commit=2))
    with pytest.raises(ValueError, match="vote"):
        store.set_hard_state(HardState(term=3, vote=2, commit=2))
    with pytest.raises(ValueError, match="commit"):
        store.set_hard_state(HardState(term=3, vote=1, commit=1))
    with pytest.raises(ValueError, match="beyond"):
        store.set_hard_state(HardState(term=3, vote=1, commit=6))
    with pytest.raises(ValueError, match="committed"):
        store.truncate_suffix(2)
    store.set_hard_state(HardState(term=4, vote=None, commit=2))  # new term: vote resets
    store.sync()
    state = reopen(store, root)
    assert state.hard_state == HardState(4, None, 2)
    assert state.last_index == 5


def test_use_before_recover_and_double_recover_are_errors(root: Path) -> None:
    store = RaftLogStore(root)
    with pytest.raises(ValueError, match="recover"):
        store.sync()
    store.recover()
    with pytest.raises(ValueError, match="once"):
        store.recover()
    store.close()


def test_snapshot_releases_covered_segments_and_recovers(root: Path) -> None:
    store, _ = open_store(root)
    # The only hard-state record is written first, into a segment that will be released.
    store.append_entries(entries(1, 1, 1))
    store.set_hard_state(HardState(term=1, vote=0, commit=1))
    for first in range(2, 200, 10):
        store.append_entries(entries(first, first + 9, 1))
        store.sync()
    store.set_hard_state(HardState(term=1, vote=0, commit=150))
    store.sync()
    segments_before = store.wal.segments
    store.save_snapshot(Snapshot(SnapshotMeta(150, 1), b"image@150"))
    assert store.wal.segments[0] > segments_before[0]
    assert not (root / "wal" / "0000000000000001.wal").exists()
    assert store.first_index == 151
    state = reopen(store, root, crash=True)  # save_snapshot synced everything itself
    assert state.snapshot == Snapshot(SnapshotMeta(150, 1), b"image@150")
    assert state.entries == tuple(entries(151, 201, 1))
    assert state.hard_state == HardState(1, 0, 150)


def test_a_snapshot_staged_while_the_log_grows_is_saved_and_recovered(root: Path) -> None:
    store, _ = open_store(root)
    store.append_entries(entries(1, 100, 1))
    store.set_hard_state(HardState(term=1, vote=0, commit=100))
    store.sync()
    image = Snapshot(SnapshotMeta(100, 1), b"image@100")
    store.stage_snapshot(image)
    store.append_entries(entries(101, 120, 1))  # the log goes on while the file is written
    store.sync()
    assert reopen(store, root, crash=True).snapshot is None  # staged only: not recorded
    store, _ = open_store(root)
    store.stage_snapshot(image)
    store.save_snapshot(image)
    state = reopen(store, root, crash=True)
    assert state.snapshot == image
    assert state.entries == tuple(entries(101, 120, 1))


def test_release_keeps_segments_holding_live_entries(root: Path) -> None:
    store, _ = open_store(root)
    for first in range(1, 100, 5):
        store.append_entries(entries(first, first + 4, 1))
        store.sync()
    store.set_hard_state(HardState(1, None, 30))
    store.save_snapshot(Snapshot(SnapshotMeta(20, 1), b"s20"))
    state = reopen(store, root)
    assert state.entries == tuple(entries(21, 100, 1))
    assert state.snapshot_meta == SnapshotMeta(20, 1)


def test_repeated_snapshots_and_restarts(root: Path) -> None:
    store, _ = open_store(root)
    next_index = 1
    for round_number in range(1, 6):
        store.append_entries(entries(next_index, next_index + 29, round_number))
        next_index += 30
        store.set_hard_state(HardState(round_number, None, next_index - 5))
        store.save_snapshot(Snapshot(SnapshotMeta(next_index - 10, round_number), b"r"))
        store.close()
        store, state = open_store(root)
        assert state.snapshot_meta == SnapshotMeta(next_index - 10, round_number)
        assert [e.index for e in state.entries] == list(range(next_index - 9, next_index))
    store.close()
    # Only the newest two snapshot files are retained.
    assert len(list((root / "snapshots").glob("*.snap"))) == 2


def test_conflicting_snapshot_discards_the_whole_log(root: Path) -> None:
    store, _ = open_store(root)
    store.append_entries(entries(1, 40, 1))  # spans several segments
    store.set_hard_state(HardState(2, None, 3))
    store.sync()
    store.save_snapshot(Snapshot(SnapshotMeta(10, 2), b"leader image"))
    assert (store.first_index, store.last_index) == (11, 10)
    state = reopen(store, root)
    assert state.entries == ()
    assert state.snapshot_meta == SnapshotMeta(10, 2)
    store, _ = open_store(root)
    store.append_entries(entries(11, 12, 2))
    state = reopen(store, root)
    assert state.entries == tuple(entries(11, 12, 2))


def test_conflicting_snapshot_cannot_discard_committed_entries(root: Path) -> None:
    store, _ = open_store(root)
    store.append_entries(entries(1, 10, 1))
    store.set_hard_state(HardState(1, None, 8))
    with pytest.raises(ValueError, match="committed"):
        store.save_snapshot(Snapshot(SnapshotMeta(5, 2), b""))
    store.save_snapshot(Snapshot(SnapshotMeta(5, 1), b""))
    with pytest.raises(ValueError, match="newer"):
        store.save_snapshot(Snapshot(SnapshotMeta(5, 1), b""))
    store.save_snapshot(Snapshot(SnapshotMeta(9, 1), b""))  # beyond commit, same term: kept
    assert (store.first_index, store.last_index) == (10, 10)
    with pytest.raises(ValueError, match="snapshot covers"):
        store.truncate_suffix(9)
    store.close()


def test_snapshot_beyond_the_log(root: Path) -> None:
    store, _ = open_store(root)
    store.append_entries(entries(1, 5, 1))
    store.save_snapshot(Snapshot(SnapshotMeta(50, 3), b"far ahead"))
    assert store.last_index == 50
    state = reopen(store, root)
    assert (state.entries, state.last_index) == ((), 50)


@pytest.mark.parametrize("term", [1, 2])
def test_crash_after_snapshot_file_but_before_log_record(root: Path, term: int) -> None:
    store, _ = open_store(root)
    store.append_entries(entries(1, 20, 1))
    store.set_hard_state(HardState(1, None, 10))
    store.close()
    # The snapshot file became durable, then the process died before logging it.
    SnapshotStore(root / "snapshots").save(Snapshot(SnapshotMeta(15, term), b"img"))
    store, state = open_store(root)
    assert state.snapshot_meta == SnapshotMeta(15, term)
    expected = entries(16, 20, 1) if term == 1 else []  # a different term discards the log
    assert state.entries == tuple(expected)
    # Recovery logged the interrupted snapshot, so later writes replay on top of it.
    if term == 1:
        store.truncate_suffix(16)
    store.append_entries(entries(16, 17, 2))
    state_after = reopen(store, root)
    assert state_after.entries == tuple(entries(16, 17, 2))
    assert state_after.snapshot_meta == SnapshotMeta(15, term)


def test_logged_snapshot_without_its_file_is_corruption(root: Path) -> None:
    store, _ = open_store(root)
    store.append_entries(entries(1, 20, 1))
    store.save_snapshot(Snapshot(SnapshotMeta(10, 1), b"img"))
    store.close()
    (root / "snapshots" / snapshot_name(SnapshotMeta(10, 1))).unlink()
    with pytest.raises(StorageCorruptError, match="durable"):
        open_store(root)


def test_corrupt_newest_snapshot_refuses_to_start(root: Path) -> None:
    store, _ = open_store(root)
    store.append_entries(entries(1, 20, 1))
    store.save_snapshot(Snapshot(SnapshotMeta(5, 1), b"first"))
    store.save_snapshot(Snapshot(SnapshotMeta(10, 1), b"second"))
    store.close()
    newest = root / "snapshots" / snapshot_name(SnapshotMeta(10, 1))
    newest.write_bytes(newest.read_bytes()[:-1])
    with pytest.raises(SnapshotCorruptError):
        open_store(root)
    # The directory lock was released by the failed recovery.
    newest.unlink()
    with pytest.raises(StorageCorruptError):  # the log says snapshot 10 is durable
        open_store(root)


def write_raw(root: Path, records: list[tuple[RecordType, list[object]]]) -> None:
    """Write a WAL by hand, bypassing the store's own validation."""
    wal, _ = WriteAheadLog.open(root / "wal")
    with wal:
        for record_type, payload in records:
            wal.append(record_type, payload)


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (
            [(RecordType.ENTRY, [i, 1, b""]) for i in range(1, 6)]
            + [(RecordType.HARD_STATE, [1, None, 25])],
            "commit index 25 is beyond",
        ),
        (
            [(RecordType.ENTRY, [i, 1, b""]) for i in (1, 2, 3, 8)],
            "gap",
        ),
        (
            [(RecordType.ENTRY, [i, 1, b""]) for i in (3, 4)],
            "missing",
        ),
        ([(RecordType.ENTRY, [1, 1])], "malformed"),
        ([(RecordType.ENTRY, [1, 1, "text"])], "not bytes"),
        ([(RecordType.HARD_STATE, [-1, None, 0])], "bad integer"),
        ([(RecordType.HARD_STATE, [1, "n2", 0])], "bad vote"),
        ([(RecordType.HARD_STATE, [1, True, 0])], "bad vote"),
    ],
)
def test_inconsistent_records_are_corruption(
    root: Path, records: list[tuple[RecordType, list[object]]], message: str
) -> None:
    write_raw(root, records)
    with pytest.raises(StorageCorruptError, match=message):
        open_store(root)


def test_a_vote_written_as_a_decimal_string_reads_back_as_the_member_id(root: Path) -> None:
    # Data dirs written before votes were stored as integers hold them as strings.
    write_raw(root, [(RecordType.HARD_STATE, [3, "2", 0])])
    store, state = open_store(root)
    store.close()
    assert state.hard_state == HardState(3, 2, 0)


def test_unknown_record_type_is_corruption(root: Path) -> None:
    wal, _ = WriteAheadLog.open(root / "wal")
    with wal:
        wal.append(99, [])
    with pytest.raises(StorageCorruptError, match="unknown record type 99"):
        open_store(root)


def test_group_commit_through_the_store_costs_one_fsync(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = open_store(root, segment_bytes=1 << 20)
    calls: list[int] = []
    monkeypatch.setattr(fsutil, "sync_file", calls.append)
    for index in range(1, 501):
        store.append_entries([LogEntry(index, 1, b"x" * 40)])
        store.set_hard_state(HardState(1, 0, index - 1))
    store.sync()
    assert len(calls) == 1
    monkeypatch.undo()
    state = reopen(store, root)
    assert state.last_index == 500 and state.hard_state.commit == 499
