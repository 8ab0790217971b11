"""Byte layout and decoding verdicts of a single WAL record."""

from __future__ import annotations

import struct
import zlib

import pytest

from raftkube.storage.records import (
    HEADER_SIZE,
    MAGIC,
    PayloadError,
    Verdict,
    encode_record,
    find_valid_record,
    pack_payload,
    read_frame,
    unpack_payload,
)


def test_header_layout_matches_the_documentation() -> None:
    payload = pack_payload({"k": b"v"})
    record = encode_record(7, payload)
    assert HEADER_SIZE == 20
    assert len(record) == HEADER_SIZE + len(payload)
    assert record[0:4] == MAGIC
    assert record[4] == 7
    assert record[5:8] == b"\x00\x00\x00"
    assert struct.unpack_from("<I", record, 8)[0] == len(payload)
    assert struct.unpack_from("<I", record, 12)[0] == zlib.crc32(payload)
    assert struct.unpack_from("<I", record, 16)[0] == zlib.crc32(record[:16])
    assert record[20:] == payload


def test_round_trip_and_frame_end() -> None:
    obj = [1, None, "text", b"\x00\xff", {"nested": [True, 2.5]}]
    data = b"junk" + encode_record(3, pack_payload(obj))
    frame = read_frame(data, 4)
    assert frame.verdict is Verdict.OK
    assert frame.record_type == 3
    assert frame.end == len(data)
    assert unpack_payload(frame.payload) == obj


@pytest.mark.parametrize("record_type", [0, 256, -1])
def test_record_type_range_is_enforced(record_type: int) -> None:
    with pytest.raises(ValueError):
        encode_record(record_type, b"")


def test_verdicts_for_each_kind_of_damage() -> None:
    record = encode_record(1, pack_payload("hello world"))
    assert read_frame(record[: HEADER_SIZE - 1], 0).verdict is Verdict.SHORT_HEADER
    assert read_frame(record[:-1], 0).verdict is Verdict.SHORT_PAYLOAD
    bad_length = bytearray(record)
    bad_length[8] ^= 0x01
    assert read_frame(bytes(bad_length), 0).verdict is Verdict.BAD_HEADER
    bad_payload = bytearray(record)
    bad_payload[-1] ^= 0x40
    frame = read_frame(bytes(bad_payload), 0)
    assert frame.verdict is Verdict.BAD_PAYLOAD
    assert frame.end == len(record)  # the verified header still says where the record ends
    assert read_frame(bytes(HEADER_SIZE + 8), 0).verdict is Verdict.BAD_HEADER


def test_find_valid_record_ignores_magic_inside_payloads() -> None:
    decoy = encode_record(1, pack_payload(MAGIC * 3))
    real = encode_record(2, pack_payload("x"))
    data = b"\x00" * 5 + decoy + real
    assert find_valid_record(data, 0) == 5
    assert find_valid_record(data, 6) == 5 + len(decoy)
    assert find_valid_record(data, 6 + len(decoy)) is None


def test_invalid_msgpack_is_reported() -> None:
    with pytest.raises(PayloadError):
        unpack_payload(b"\xc1")
    with pytest.raises(PayloadError):
        pack_payload(2**64)
    with pytest.raises(PayloadError):
        pack_payload(object())
