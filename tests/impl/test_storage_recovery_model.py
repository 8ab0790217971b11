"""Property tests: random histories with crashes recover exactly the synced state.

fsync is replaced by a no-op here. That is sound for these tests because a "crash" is
modelled explicitly (closing without writing the buffer, then optionally appending torn-write
debris to the last segment), not by power loss; it keeps hundreds of histories fast.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from raftkube.storage import fsutil
from raftkube.storage.raft_log_store import RaftLogStore, RecordType
from raftkube.storage.records import encode_record, pack_payload
from raftkube.storage.snapshot import SnapshotStore
from raftkube.storage.state import HardState, LogEntry, Snapshot, SnapshotMeta
from raftkube.storage.wal import WriteAheadLog

SEGMENT_BYTES = 180
TEARS = st.sampled_from(["none", "zeros", "partial-record", "flipped-record"])


@pytest.fixture(autouse=True)
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(fsutil, "sync_file", lambda fd: None)
    monkeypatch.setattr(fsutil, "sync_dir", lambda path: None)
    yield


def tear_last_segment(directory: Path, tear: str, data: bytes) -> None:
    """Leave the debris of a write that was in flight when the process died."""
    if tear == "none":
        return
    segment = sorted(directory.glob("*.wal"))[-1]
    record = encode_record(RecordType.ENTRY, pack_payload([10**6, 1, data]))
    if tear == "zeros":
        debris = bytes(len(data) + 7)
    elif tear == "partial-record":
        debris = record[: max(1, len(data) % len(record))]
    else:
        flipped = bytearray(record)
        flipped[len(data) % len(record)] ^= 0x80
        debris = bytes(flipped)
    with segment.open("ab") as handle:
        handle.write(debris)


# ---------------------------------------------------------------------------- generic WAL


@attrs.define
class WalModel:
    synced: list[tuple[int, Any]] = attrs.Factory(list)
    pending: list[tuple[int, Any]] = attrs.Factory(list)


class WalMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="wal-model-"))
        self.wal, _ = WriteAheadLog.open(self.directory, segment_bytes=SEGMENT_BYTES)
        self.model = WalModel()

    @rule(
        record_type=st.integers(1, 255),
        payload=st.one_of(
            st.binary(max_size=60), st.lists(st.integers(-(2**63), 2**64 - 1), max_size=8)
        ),
    )
    def append(self, record_type: int, payload: Any) -> None:
        self.wal.append(record_type, payload)
        self.model.pending.append((record_type, payload))

    @rule()
    def sync(self) -> None:
        self.wal.sync()
        self.model.synced += self.model.pending
        self.model.pending.clear()

    @rule(tear=TEARS, debris=st.binary(min_size=1, max_size=40))
    def crash_and_reopen(self, tear: str, debris: bytes) -> None:
        self.wal.close(discard_pending=True)
        tear_last_segment(self.directory, tear, debris)
        self.wal, recovery = WriteAheadLog.open(self.directory, segment_bytes=SEGMENT_BYTES)
        assert [(r.record_type, r.payload) for r in recovery.records] == self.model.synced
        self.model.pending.clear()

    def teardown(self) -> None:
        self.wal.close(discard_pending=True)
        shutil.rmtree(self.directory, ignore_errors=True)


def test_wal_random_histories_recover_synced_records() -> None:
    run_state_machine_as_test(
        WalMachine, settings=settings(max_examples=60, stateful_step_count=40)
    )


# ---------------------------------------------------------------------------- Raft store


@attrs.define
class RaftModel:
    """Reference semantics: plain lists, no files."""

    hard: HardState = attrs.Factory(HardState)
    entries: list[LogEntry] = attrs.Factory(list)
    snapshot: Snapshot | None = None

    def copy(self) -> RaftModel:
        return RaftModel(self.hard, list(self.entries), self.snapshot)

    @property
    def snap_index(self) -> int:
        return 0 if self.snapshot is None else self.snapshot.meta.index

    @property
    def last_index(self) -> int:
        return self.entries[-1].index if self.entries else self.snap_index

    @property
    def last_term(self) -> int:
        if self.entries:
            return self.entries[-1].term
        return 0 if self.snapshot is None else self.snapshot.meta.term


class RaftStoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="raft-model-"))
        self.current = RaftModel()
        self.durable = RaftModel()
        self.store = RaftLogStore(self.root, segment_bytes=SEGMENT_BYTES)

    @initialize()
    def start(self) -> None:
        self.store.recover()

    @rule(count=st.integers(1, 6), new_term=st.booleans(), data=st.binary(max_size=24))
    def append(self, count: int, new_term: bool, data: bytes) -> None:
        term = self.current.last_term + int(new_term or self.current.last_term == 0)
        first = self.current.last_index + 1
        batch = [LogEntry(i, term, data + bytes([i % 251])) for i in range(first, first + count)]
        self.store.append_entries(batch)
        self.current.entries += batch

    @rule(term_step=st.integers(0, 2), vote=st.sampled_from([None, 1, 2]), commit=st.data())
    def hard_state(self, term_step: int, vote: int | None, commit: st.DataObject) -> None:
        old = self.current.hard
        if term_step == 0 and old.vote is not None:
            vote = old.vote
        new_commit = commit.draw(st.integers(old.commit, max(old.commit, self.current.last_index)))
        new = HardState(old.term + term_step, vote, new_commit)
        self.store.set_hard_state(new)
        self.current.hard = new

    @precondition(
        lambda self: (
            self.current.last_index > max(self.current.hard.commit, self.current.snap_index)
        )
    )
    @rule(data=st.data())
    def truncate(self, data: st.DataObject) -> None:
        low = max(self.current.hard.commit, self.current.snap_index) + 1
        from_index = data.draw(st.integers(low, self.current.last_index))
        self.store.truncate_suffix(from_index)
        self.current.entries = [e for e in self.current.entries if e.index < from_index]

    @precondition(lambda self: self.current.entries)
    @rule(data=st.data(), image=st.binary(max_size=16))
    def snapshot_of_own_log(self, data: st.DataObject, image: bytes) -> None:
        entry = data.draw(st.sampled_from(self.current.entries))
        snapshot = Snapshot(SnapshotMeta(entry.index, entry.term), image)
        self.store.save_snapshot(snapshot)
        self.current.entries = [e for e in self.current.entries if e.index > entry.index]
        self.current.snapshot = snapshot
        self.durable = self.current.copy()

    @rule(data=st.data(), image=st.binary(max_size=16))
    def install_conflicting_snapshot(self, data: st.DataObject, image: bytes) -> None:
        low = max(self.current.hard.commit, self.current.snap_index) + 1
        index = data.draw(st.integers(low, self.current.last_index + 3))
        snapshot = Snapshot(SnapshotMeta(index, self.current.last_term + 1), image)
        self.store.save_snapshot(snapshot)
        self.current.entries = []
        self.current.snapshot = snapshot
        self.durable = self.current.copy()

    @rule(data=st.data(), image=st.binary(max_size=16), conflict=st.booleans())
    def crash_inside_save_snapshot(self, data: st.DataObject, image: bytes, conflict: bool) -> None:
        """The snapshot file became durable, then the process died before logging it."""
        self.store.close(discard_pending=True)
        expected = self.durable.copy()
        if conflict or not expected.entries:
            low = max(expected.hard.commit, expected.snap_index) + 1
            index = data.draw(st.integers(low, expected.last_index + 3))
            meta = SnapshotMeta(index, expected.last_term + 1)
            expected.entries = []
        else:
            entry = data.draw(st.sampled_from(expected.entries))
            meta = SnapshotMeta(entry.index, entry.term)
            expected.entries = [e for e in expected.entries if e.index > entry.index]
        expected.snapshot = Snapshot(meta, image)
        SnapshotStore(self.root / "snapshots").save(expected.snapshot)
        self.durable = expected
        self._recover_and_check()

    @rule()
    def sync(self) -> None:
        self.store.sync()
        self.durable = self.current.copy()

    @rule(tear=TEARS, debris=st.binary(min_size=1, max_size=40))
    def crash_and_recover(self, tear: str, debris: bytes) -> None:
        self.store.close(discard_pending=True)
        tear_last_segment(self.root / "wal", tear, debris)
        self._recover_and_check()

    def _recover_and_check(self) -> None:
        self.store = RaftLogStore(self.root, segment_bytes=SEGMENT_BYTES)
        state = self.store.recover()
        assert state.hard_state == self.durable.hard
        assert list(state.entries) == self.durable.entries
        assert state.snapshot == self.durable.snapshot
        self.current = self.durable.copy()

    @invariant()
    def mirror_matches_model(self) -> None:
        if self.store.wal is None:  # pragma: no cover - store always recovered here
            return
        assert self.store.last_index == self.current.last_index
        assert self.store.first_index == self.current.snap_index + 1
        assert self.store.hard_state == self.current.hard

    def teardown(self) -> None:
        self.store.close(discard_pending=True)
        shutil.rmtree(self.root, ignore_errors=True)


def test_raft_store_random_histories_recover_synced_state() -> None:
    run_state_machine_as_test(
        RaftStoreMachine,
        settings=settings(max_examples=80, stateful_step_count=40),
    )
