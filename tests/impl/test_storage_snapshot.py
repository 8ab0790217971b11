"""Atomic snapshot files: layout, leftovers, corruption, retention."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest

from raftkube.storage import fsutil
from raftkube.storage.errors import SnapshotCorruptError
from raftkube.storage.records import unpack_payload
from raftkube.storage.snapshot import MAGIC, SnapshotStore, snapshot_name
from raftkube.storage.state import Snapshot, SnapshotMeta


def snap(index: int, term: int = 1, data: bytes | None = None) -> Snapshot:
    return Snapshot(SnapshotMeta(index, term), data if data is not None else b"state-%d" % index)


def test_round_trip_and_layout(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    assert store.load_latest() is None
    path = store.save(snap(42, 7, b"\x00image"))
    assert path.name == snapshot_name(SnapshotMeta(42, 7)) == f"{42:016x}-{7:016x}.snap"
    blob = path.read_bytes()
    magic, crc, meta_len, data_len = struct.unpack_from("<8sIIQ", blob)
    assert magic == MAGIC
    assert crc == zlib.crc32(blob[12:])
    assert unpack_payload(blob[24 : 24 + meta_len]) == [42, 7]
    assert blob[24 + meta_len :] == b"\x00image"
    assert len(blob) == 24 + meta_len + data_len
    assert SnapshotStore(tmp_path).load_latest() == snap(42, 7, b"\x00image")


def test_newest_is_chosen_by_index(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, retain=5)
    for index in (5, 100, 20):
        store.save(snap(index))
    latest = store.load_latest()
    assert latest is not None and latest.meta.index == 100


def test_leftover_temp_file_is_ignored_and_removed(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.save(snap(10))
    # A crash mid-save of snapshot 20: the temp file exists, the final name does not.
    leftover = tmp_path / (snapshot_name(SnapshotMeta(20, 1)) + ".tmp")
    leftover.write_bytes(MAGIC + b"\x00" * 7)
    reopened = SnapshotStore(tmp_path)
    assert not leftover.exists()
    assert reopened.load_latest() == snap(10)


def test_a_staged_snapshot_is_only_renamed_by_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SnapshotStore(tmp_path)
    staged = snap(20)
    store.stage(staged)
    temp = tmp_path / (snapshot_name(staged.meta) + ".tmp")
    assert temp.exists()
    assert store.load_latest() is None  # staged is not saved: nothing to recover yet
    writes: list[int] = []
    monkeypatch.setattr(fsutil, "write_all", lambda fd, data: writes.append(len(data)))
    store.save(staged)
    monkeypatch.undo()
    assert writes == []
    assert not temp.exists()
    assert SnapshotStore(tmp_path).load_latest() == staged


def test_save_writes_again_what_was_staged_with_other_data(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.stage(snap(20, data=b"staged"))
    store.save(snap(20, data=b"saved"))
    assert SnapshotStore(tmp_path).load_latest() == snap(20, data=b"saved")


def test_a_staged_snapshot_never_saved_is_removed(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.stage(snap(20))
    store.save(snap(30))  # a newer one saved first: 20's staged file is dropped
    assert sorted(p.name for p in tmp_path.iterdir()) == [snapshot_name(SnapshotMeta(30, 1))]
    store.stage(snap(40))  # a crash before its save: removed at the next open
    assert SnapshotStore(tmp_path).load_latest() == snap(30)
    assert sorted(p.name for p in tmp_path.iterdir()) == [snapshot_name(SnapshotMeta(30, 1))]


def test_failed_rename_keeps_the_previous_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SnapshotStore(tmp_path)
    store.save(snap(10))

    def failing_replace(src: object, dst: object) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        store.save(snap(20))
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [snapshot_name(SnapshotMeta(10, 1))]
    assert store.load_latest() == snap(10)


@pytest.mark.parametrize("damage", ["flip", "truncate", "extend"])
def test_corrupt_newest_snapshot_raises_and_keeps_the_previous(tmp_path: Path, damage: str) -> None:
    store = SnapshotStore(tmp_path)
    store.save(snap(10))
    newest = store.save(snap(20, data=b"x" * 100))
    blob = bytearray(newest.read_bytes())
    if damage == "flip":
        blob[60] ^= 0x10
    elif damage == "truncate":
        del blob[-1]
    else:
        blob += b"\x00"
    newest.write_bytes(bytes(blob))
    with pytest.raises(SnapshotCorruptError) as caught:
        store.load_latest()
    assert caught.value.path == newest
    assert str(newest) in str(caught.value)
    # Not silently skipped, but the previous one is still there for an operator.
    assert store.load(tmp_path / snapshot_name(SnapshotMeta(10, 1))) == snap(10)


@pytest.mark.parametrize("cut", [0, 10, 23, 26])
def test_a_file_cut_inside_its_header_or_metadata_is_corrupt(tmp_path: Path, cut: int) -> None:
    """The header and metadata are read before the data, which is read into its own buffer:
    a file ending before the data starts is refused as well as one cut inside the data."""
    store = SnapshotStore(tmp_path)
    newest = store.save(snap(20, data=b"x" * 100))
    newest.write_bytes(newest.read_bytes()[:cut])
    with pytest.raises(SnapshotCorruptError) as caught:
        store.load_latest()
    assert caught.value.path == newest


def test_contents_must_match_the_file_name(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    path = store.save(snap(10))
    path.rename(tmp_path / snapshot_name(SnapshotMeta(11, 1)))
    with pytest.raises(SnapshotCorruptError, match="does not match"):
        store.load_latest()


def test_unrecognised_snapshot_name_raises(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    (tmp_path / "latest.snap").write_bytes(b"")
    with pytest.raises(SnapshotCorruptError, match="unrecognised"):
        store.load_latest()


def test_prune_keeps_the_newest_and_the_previous(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, retain=2)
    for index in (1, 2, 3):
        store.save(snap(index))
    # save() never deletes: until prune, every earlier snapshot is still there.
    assert [m.index for m, _ in store.list_snapshots()] == [3, 2, 1]
    removed = store.prune()
    assert [p.name for p in removed] == [snapshot_name(SnapshotMeta(1, 1))]
    assert [m.index for m, _ in store.list_snapshots()] == [3, 2]
