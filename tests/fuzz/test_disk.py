"""SimDisk: the simulated disk must recover exactly what the file store would, and lose only
what was never synced."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from raftkube.storage.interface import Storage
from raftkube.storage.raft_log_store import RaftLogStore
from raftkube.storage.state import HardState, LogEntry, RecoveredState, Snapshot, SnapshotMeta
from raftkube_fuzz.world.disk import SimDisk


def _entries(first: int, *terms: int) -> list[LogEntry]:
    return [LogEntry(first + k, t, f"e{first + k}".encode()) for k, t in enumerate(terms)]


def _opened() -> SimDisk:
    disk = SimDisk(1)
    disk.recover()
    return disk


def _recording(seen: list[tuple[int, int, str]]) -> SimDisk:
    def hook(member_id: int, disk: SimDisk) -> None:
        seen.append((member_id, disk.synced_count, disk.last_durability_point))

    disk = SimDisk(7, hook)
    disk.recover()
    return disk


def test_is_a_storage() -> None:
    assert isinstance(SimDisk(1), Storage)


def test_round_trip_after_sync() -> None:
    disk = _opened()
    disk.append_entries(_entries(1, 1, 1, 2))
    disk.set_hard_state(HardState(2, 3, 2))
    disk.sync()
    disk.crash()
    state = disk.recover()
    assert state == RecoveredState(HardState(2, 3, 2), tuple(_entries(1, 1, 1, 2)), None)
    assert disk.durable_state() == state


def test_crash_drops_unsynced_writes() -> None:
    disk = _opened()
    disk.append_entries(_entries(1, 1))
    disk.sync()
    disk.append_entries(_entries(2, 1, 1))
    disk.set_hard_state(HardState(1, 1, 0))
    assert disk.current_state().last_index == 3
    assert disk.durable_state().last_index == 1
    disk.crash()
    state = disk.recover()
    assert state.entries == tuple(_entries(1, 1))
    assert state.hard_state == HardState()


def test_torn_crash_keeps_a_prefix_of_the_unsynced_records() -> None:
    disk = _opened()
    disk.append_entries(_entries(1, 1))
    disk.sync()
    disk.append_entries(_entries(2, 1, 1))  # two records
    disk.set_hard_state(HardState(2, None, 0))  # one record
    disk.crash(keep_unsynced=1)
    state = disk.recover()
    assert state.entries == tuple(_entries(1, 1, 1))
    assert state.hard_state == HardState()
    # What survived a crash is durable: a second crash keeps it.
    disk.crash()
    assert disk.recover() == state
    assert disk.durable_state() == state


def test_crash_keeping_more_than_exists_keeps_everything() -> None:
    disk = _opened()
    disk.append_entries(_entries(1, 1, 2))
    disk.crash(keep_unsynced=99)
    assert disk.recover().last_index == 2
    with pytest.raises(ValueError):
        disk.crash(keep_unsynced=-1)


def test_writes_need_an_open_disk() -> None:
    disk = SimDisk(1)
    with pytest.raises(ValueError):
        disk.append_entries(_entries(1, 1))
    disk.recover()
    with pytest.raises(ValueError):
        disk.recover()
    disk.crash()
    with pytest.raises(ValueError):
        disk.sync()
    disk.recover()
    disk.sync()


def test_on_sync_hook_runs_after_each_durability_point() -> None:
    seen: list[tuple[int, int, str]] = []
    disk = _recording(seen)
    disk.append_entries(_entries(1, 1, 1))
    disk.sync()
    disk.set_hard_state(HardState(1, None, 2))
    disk.save_snapshot(Snapshot(SnapshotMeta(1, 1), b"img"))
    assert seen == [(7, 2, "sync"), (7, 4, "snapshot")]
    assert disk.syncs == 2


def test_snapshot_keeps_the_suffix_that_agrees_with_it() -> None:
    disk = _opened()
    disk.append_entries(_entries(1, 1, 1, 2, 2))
    disk.set_hard_state(HardState(2, None, 3))
    disk.save_snapshot(Snapshot(SnapshotMeta(3, 2), b"img"))
    disk.crash()  # nothing unsynced: the snapshot was a durability point
    state = disk.recover()
    assert state.snapshot == Snapshot(SnapshotMeta(3, 2), b"img")
    assert state.entries == tuple(_entries(4, 2))
    assert state.hard_state == HardState(2, None, 3)


def test_snapshot_drops_a_log_that_contradicts_it() -> None:
    disk = _opened()
    disk.append_entries(_entries(1, 1, 1, 1))
    disk.save_snapshot(Snapshot(SnapshotMeta(2, 3), b"leader"))
    state = disk.durable_state()
    assert state.entries == ()
    assert state.last_index == 2
    disk.append_entries(_entries(3, 3))
    assert disk.current_state().entries == tuple(_entries(3, 3))


def test_snapshot_beyond_the_log_replaces_it() -> None:
    disk = _opened()
    disk.append_entries(_entries(1, 1))
    disk.save_snapshot(Snapshot(SnapshotMeta(5, 2), b"leader"))
    assert disk.durable_state().last_index == 5
    assert disk.durable_state().entries == ()


@pytest.mark.parametrize(
    ("setup", "misuse"),
    [
        (lambda d: None, lambda d: d.append_entries(_entries(2, 1))),  # gap
        (lambda d: d.append_entries(_entries(1, 2)), lambda d: d.append_entries(_entries(2, 1))),
        (
            lambda d: (
                d.append_entries(_entries(1, 1, 1)),
                d.set_hard_state(HardState(1, None, 2)),
            ),
            lambda d: d.truncate_suffix(2),
        ),
        (
            lambda d: d.set_hard_state(HardState(1, 1, 0)),
            lambda d: d.set_hard_state(HardState(1, 2, 0)),
        ),
        (lambda d: d.set_hard_state(HardState(2)), lambda d: d.set_hard_state(HardState(1))),
        (lambda d: None, lambda d: d.set_hard_state(HardState(1, None, 1))),  # commit > log
        (
            lambda d: (d.append_entries(_entries(1, 1)), d.set_hard_state(HardState(1, None, 1))),
            lambda d: d.set_hard_state(HardState(1, None, 0)),
        ),
        (
            lambda d: d.save_snapshot(Snapshot(SnapshotMeta(3, 1), b"")),
            lambda d: d.save_snapshot(Snapshot(SnapshotMeta(3, 1), b"")),
        ),
        (
            lambda d: d.save_snapshot(Snapshot(SnapshotMeta(3, 1), b"")),
            lambda d: d.truncate_suffix(2),
        ),
        (
            lambda d: (
                d.append_entries(_entries(1, 1, 1)),
                d.set_hard_state(HardState(1, None, 2)),
            ),
            lambda d: d.save_snapshot(Snapshot(SnapshotMeta(2, 5), b"")),
        ),
    ],
)
def test_misuse_is_refused_and_changes_nothing(setup, misuse) -> None:  # type: ignore[no-untyped-def]
    disk = _opened()
    setup(disk)
    before = disk.current_state()
    with pytest.raises(ValueError):
        misuse(disk)
    assert disk.current_state() == before


def test_truncate_beyond_the_end_and_unchanged_hard_state_write_nothing() -> None:
    disk = _opened()
    disk.append_entries(_entries(1, 1))
    disk.set_hard_state(HardState(1))
    count = disk.record_count
    disk.truncate_suffix(5)
    disk.set_hard_state(HardState(1))
    assert disk.record_count == count


# ---------------------------------------------------------------------- equivalence


@st.composite
def _operations(draw: st.DrawFn) -> list[tuple[str, int, int, int]]:
    """Raw operations; they are interpreted relative to the current state so most are legal,
    while the small offsets make some of them misuse on purpose."""
    kinds = st.sampled_from(["append", "hard", "truncate", "snapshot", "sync", "crash"])
    small = st.integers(-1, 2)
    return draw(st.lists(st.tuples(kinds, small, small, small), max_size=25))


def _apply(store: Storage, view: RecoveredState, op: tuple[str, int, int, int]) -> None:
    kind, a, b, c = op
    last = view.last_index
    last_term = view.entries[-1].term if view.entries else 0
    hs = view.hard_state
    if kind == "append":
        first = last + 1 + (a if a < 0 else 0)
        terms = [max(0, last_term + max(0, b) + (c if k == 0 else 0)) for k in range(abs(a) + 1)]
        store.append_entries(_entries(first, *terms))
    elif kind == "hard":
        vote = None if b < 0 else b
        store.set_hard_state(HardState(max(0, hs.term + a), vote, max(0, hs.commit + c)))
    elif kind == "truncate":
        store.truncate_suffix(max(0, last + a))
    elif kind == "snapshot":
        index = max(0, hs.commit + a)
        term = max(0, last_term + b)
        store.save_snapshot(Snapshot(SnapshotMeta(index, term), f"img{index}".encode()))
    elif kind == "sync":
        store.sync()


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_operations())
# An empty snapshot (index 0) that the log does not "agree" with, taken after entry 1 was
# committed: discarding the log would have lost the committed entry (both stores took it, and
# the file store then refused to start).
@example(ops=[("append", 0, 0, 0), ("hard", 0, 0, 1), ("snapshot", -1, 0, 0)])
def test_equivalent_to_the_file_store(ops: list[tuple[str, int, int, int]]) -> None:
    with tempfile.TemporaryDirectory() as root:
        directory = Path(root) / "store"
        store = RaftLogStore(directory)
        disk = SimDisk(1)
        assert store.recover() == disk.recover()
        view = disk.current_state()
        try:
            for op in ops:
                if op[0] == "crash":
                    store.close(discard_pending=True)
                    disk.crash()
                    store = RaftLogStore(directory)
                    recovered = store.recover()
                    assert recovered == disk.recover()
                    view = recovered
                    continue
                outcomes: list[str] = []
                for target in (store, disk):
                    try:
                        _apply(target, view, op)
                        outcomes.append("ok")
                    except ValueError as exc:
                        outcomes.append(f"refused {type(exc).__name__}")
                assert outcomes[0] == outcomes[1], (op, outcomes)
                view = disk.current_state()
            store.close()
            disk.close()
            store = RaftLogStore(directory)
            assert store.recover() == view
            assert disk.durable_state() == view
        finally:
            store.close()
