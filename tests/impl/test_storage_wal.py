"""Segmented write-ahead log: round trips, group commit, torn tails and corruption."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from raftkube.storage import fsutil
from raftkube.storage.errors import WalCorruptError, WalFailedError, WalLockedError
from raftkube.storage.records import HEADER_SIZE, encode_record
from raftkube.storage.wal import WalPosition, WriteAheadLog, segment_name

SMALL = 256  # segment bound used to force many segments


def payload(i: int) -> dict[str, Any]:
    return {"n": i, "blob": bytes([i % 256]) * (i % 23)}


def write_records(
    directory: Path, count: int, *, batch: int = 7, segment_bytes: int = SMALL
) -> list[tuple[int, Any, WalPosition]]:
    """Append ``count`` records synced in batches; return (type, payload, position) each."""
    written = []
    wal, _ = WriteAheadLog.open(directory, segment_bytes=segment_bytes)
    with wal:
        for i in range(count):
            record_type = 1 + i % 3
            written.append((record_type, payload(i), wal.append(record_type, payload(i))))
            if i % batch == batch - 1:
                wal.sync()
        wal.sync()
    return written


def recovered(directory: Path, segment_bytes: int = SMALL) -> list[tuple[int, Any]]:
    wal, recovery = WriteAheadLog.open(directory, segment_bytes=segment_bytes)
    wal.close()
    return [(r.record_type, r.payload) for r in recovery.records]


def test_round_trip_across_many_segments(tmp_path: Path) -> None:
    written = write_records(tmp_path, 300)
    wal, recovery = WriteAheadLog.open(tmp_path, segment_bytes=SMALL)
    wal.close()
    assert [(r.record_type, r.payload, r.position) for r in recovery.records] == written
    assert recovery.torn_tail is None
    assert len(recovery.segments) > 10
    assert recovery.segments == tuple(range(1, len(recovery.segments) + 1))
    for seq in recovery.segments:
        size = (tmp_path / segment_name(seq)).stat().st_size
        in_segment = [p for _, _, p in written if p.segment == seq]
        assert size <= SMALL or len(in_segment) == 1


def test_oversized_record_gets_a_segment_of_its_own(tmp_path: Path) -> None:
    wal, _ = WriteAheadLog.open(tmp_path, segment_bytes=64)
    with wal:
        small = wal.append(1, "a")
        big = wal.append(1, "b" * 500)
        after = wal.append(1, "c")
        wal.sync()
    assert (small.segment, big.segment, after.segment) == (1, 2, 3)
    assert recovered(tmp_path, 64) == [(1, "a"), (1, "b" * 500), (1, "c")]


def test_group_commit_writes_nothing_until_one_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal, _ = WriteAheadLog.open(tmp_path)
    calls: list[int] = []
    real_sync = fsutil.sync_file

    def counting_sync(fd: int) -> None:
        calls.append(fd)
        real_sync(fd)

    monkeypatch.setattr(fsutil, "sync_file", counting_sync)
    segment = tmp_path / segment_name(1)
    for i in range(2000):
        wal.append(2, payload(i))
    assert wal.pending_records == 2000
    assert segment.stat().st_size == 0
    assert calls == []
    wal.sync()
    assert len(calls) == 1
    assert wal.pending_records == 0
    assert segment.stat().st_size > 0
    wal.sync()  # nothing buffered: no extra flush
    assert len(calls) == 1
    wal.close()
    assert recovered(tmp_path) == [(2, payload(i)) for i in range(2000)]


def test_unsynced_records_are_lost_and_synced_ones_kept(tmp_path: Path) -> None:
    wal, _ = WriteAheadLog.open(tmp_path, segment_bytes=SMALL)
    for i in range(20):
        wal.append(1, i)
    wal.sync()
    for i in range(20, 40):
        wal.append(1, i)
    wal.close(discard_pending=True)  # a crash before the second sync
    assert recovered(tmp_path) == [(1, i) for i in range(20)]


def test_reopened_log_appends_after_recovered_records(tmp_path: Path) -> None:
    written = write_records(tmp_path, 40)
    wal, recovery = WriteAheadLog.open(tmp_path, segment_bytes=SMALL)
    with wal:
        position = wal.append(3, "next")
        wal.sync()
    last = recovery.records[-1].position
    assert position > last
    assert recovered(tmp_path) == [(t, p) for t, p, _ in written] + [(3, "next")]


def _last_segment(directory: Path) -> Path:
    return sorted(directory.glob("*.wal"))[-1]


def test_torn_tail_at_every_byte_offset_of_the_last_record(tmp_path: Path) -> None:
    written = write_records(tmp_path, 30)
    expected = [(t, p) for t, p, _ in written]
    last_offset = written[-1][2].offset
    segment = _last_segment(tmp_path)
    assert written[-1][2].segment == int(segment.stem, 16)
    pristine = segment.read_bytes()
    assert last_offset > 0, "the last segment should hold more than the torn record"
    for cut in range(last_offset, len(pristine)):
        segment.write_bytes(pristine[:cut])
        wal, recovery = WriteAheadLog.open(tmp_path, segment_bytes=SMALL)
        assert [(r.record_type, r.payload) for r in recovery.records] == expected[:-1], cut
        if cut == last_offset:
            assert recovery.torn_tail is None
        else:
            assert recovery.torn_tail is not None
            assert recovery.torn_tail.offset == last_offset
            assert recovery.torn_tail.dropped_bytes == cut - last_offset
        assert segment.stat().st_size == last_offset  # truncated on disk, not just skipped
        wal.append(1, "after")
        wal.close()
        assert recovered(tmp_path) == [*expected[:-1], (1, "after")], cut
    segment.write_bytes(pristine)
    assert recovered(tmp_path) == expected


def test_damage_anywhere_in_the_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    written = write_records(tmp_path, 30)
    expected = [(t, p) for t, p, _ in written]
    last_offset = written[-1][2].offset
    segment = _last_segment(tmp_path)
    pristine = segment.read_bytes()
    for position in range(last_offset, len(pristine)):
        damaged = bytearray(pristine)
        damaged[position] ^= 0x5A
        segment.write_bytes(bytes(damaged))
        wal, recovery = WriteAheadLog.open(tmp_path, segment_bytes=SMALL)
        wal.close()
        assert [(r.record_type, r.payload) for r in recovery.records] == expected[:-1]
        assert recovery.torn_tail is not None
        assert recovery.torn_tail.offset == last_offset


def test_zero_filled_tail_is_truncated(tmp_path: Path) -> None:
    written = write_records(tmp_path, 12)
    segment = _last_segment(tmp_path)
    size = segment.stat().st_size
    with segment.open("ab") as handle:
        handle.write(bytes(4096))
    wal, recovery = WriteAheadLog.open(tmp_path, segment_bytes=SMALL)
    wal.close()
    assert [(r.record_type, r.payload) for r in recovery.records] == [(t, p) for t, p, _ in written]
    assert recovery.torn_tail is not None
    assert (recovery.torn_tail.offset, recovery.torn_tail.dropped_bytes) == (size, 4096)


def test_every_flipped_byte_in_a_middle_record_raises_naming_file_and_offset(
    tmp_path: Path,
) -> None:
    wal, _ = WriteAheadLog.open(tmp_path)
    with wal:
        positions = [wal.append(1, payload(i)) for i in range(10)]
        wal.sync()
    segment = tmp_path / segment_name(1)
    pristine = segment.read_bytes()
    middle = positions[4]
    for position in range(middle.offset, positions[5].offset):
        damaged = bytearray(pristine)
        damaged[position] ^= 0x01
        segment.write_bytes(bytes(damaged))
        with pytest.raises(WalCorruptError) as caught:
            WriteAheadLog.open(tmp_path)
        assert caught.value.path == segment
        assert caught.value.offset == middle.offset
        assert str(segment) in str(caught.value)
        assert f"offset {middle.offset}" in str(caught.value)
        assert segment.stat().st_size == len(pristine), "a corrupt log must not be truncated"
    segment.write_bytes(pristine)
    assert len(recovered(tmp_path)) == 10  # the failed opens released the lock


@pytest.mark.parametrize("damage", ["flip-last-byte", "truncate", "flip-first-byte"])
def test_damage_in_a_non_final_segment_raises(tmp_path: Path, damage: str) -> None:
    write_records(tmp_path, 60)
    first = tmp_path / segment_name(1)
    data = bytearray(first.read_bytes())
    if damage == "flip-last-byte":
        data[-1] ^= 0xFF
    elif damage == "flip-first-byte":
        data[0] ^= 0xFF
    else:
        del data[-3:]
    first.write_bytes(bytes(data))
    with pytest.raises(WalCorruptError) as caught:
        WriteAheadLog.open(tmp_path, segment_bytes=SMALL)
    assert caught.value.path == first
    assert "not the last" in str(caught.value)


def test_missing_middle_segment_raises(tmp_path: Path) -> None:
    write_records(tmp_path, 60)
    (tmp_path / segment_name(3)).unlink()
    with pytest.raises(WalCorruptError, match="missing"):
        WriteAheadLog.open(tmp_path, segment_bytes=SMALL)


def test_checksummed_garbage_payload_raises(tmp_path: Path) -> None:
    good = encode_record(1, b"\x01")
    (tmp_path / segment_name(1)).write_bytes(good + encode_record(1, b"\xc1"))
    with pytest.raises(WalCorruptError) as caught:
        WriteAheadLog.open(tmp_path)
    assert caught.value.offset == len(good)


def test_release_before_drops_only_older_segments(tmp_path: Path) -> None:
    written = write_records(tmp_path, 120)
    wal, recovery = WriteAheadLog.open(tmp_path, segment_bytes=SMALL)
    keep_from = recovery.segments[-3]
    with pytest.raises(ValueError, match="active"):
        wal.release_before(wal.active_segment + 1)
    wal.append(1, "pending")
    with pytest.raises(ValueError, match="sync"):
        wal.release_before(keep_from)
    wal.sync()
    removed = wal.release_before(keep_from)
    assert [p.name for p in removed] == [segment_name(s) for s in range(1, keep_from)]
    assert wal.segments == tuple(range(keep_from, recovery.segments[-1] + 1))
    assert wal.release_before(keep_from) == []
    wal.close()
    survivors = [(t, p) for t, p, pos in written if pos.segment >= keep_from]
    assert recovered(tmp_path) == [*survivors, (1, "pending")]
    write_more, recovery = WriteAheadLog.open(tmp_path, segment_bytes=SMALL)
    with write_more:
        for i in range(50):
            write_more.append(1, payload(i))
        write_more.sync()
        assert write_more.active_segment > recovery.segments[-1]


def test_second_handle_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    wal, _ = WriteAheadLog.open(tmp_path)
    with pytest.raises(WalLockedError):
        WriteAheadLog.open(tmp_path)
    wal.close()
    again, _ = WriteAheadLog.open(tmp_path)
    again.close()


def test_failed_fsync_poisons_the_handle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wal, _ = WriteAheadLog.open(tmp_path)
    wal.append(1, "a")
    wal.sync()

    def failing_sync(fd: int) -> None:
        raise OSError(errno.EIO, "simulated I/O error")

    monkeypatch.setattr(fsutil, "sync_file", failing_sync)
    wal.append(1, "b")
    with pytest.raises(OSError):
        wal.sync()
    assert wal.failed
    with pytest.raises(WalFailedError):
        wal.append(1, "c")
    with pytest.raises(WalFailedError):
        wal.sync()
    wal.close()
    monkeypatch.undo()
    # Whatever reached the disk is re-read; "a" was synced and must be there.
    assert recovered(tmp_path)[0] == (1, "a")


def test_closed_log_rejects_use(tmp_path: Path) -> None:
    wal, _ = WriteAheadLog.open(tmp_path)
    wal.close()
    wal.close()
    with pytest.raises(ValueError, match="closed"):
        wal.append(1, "x")


def test_header_sized_leftover_in_new_directory_is_handled(tmp_path: Path) -> None:
    # A crash right after a roll can leave a last segment holding only part of a header.
    write_records(tmp_path, 40)
    last = int(_last_segment(tmp_path).stem, 16)
    (tmp_path / segment_name(last + 1)).write_bytes(encode_record(1, b"\x00")[: HEADER_SIZE - 3])
    wal, recovery = WriteAheadLog.open(tmp_path, segment_bytes=SMALL)
    wal.close()
    assert recovery.torn_tail is not None
    assert recovery.torn_tail.offset == 0
    assert os.path.getsize(tmp_path / segment_name(last + 1)) == 0
