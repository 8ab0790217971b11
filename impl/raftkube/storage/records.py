"""On-disk record framing shared by the write-ahead log.

A record is a fixed 20-byte header followed by a msgpack payload. All integers are
little-endian; checksums are ``zlib.crc32`` (CRC-32/ISO-HDLC; the standard library has no
CRC32C and we add no dependency for it).

======  ====  ===============================================================================
Offset  Size  Field
======  ====  ===============================================================================
0       4     magic ``b"RKWL"``: lets recovery find candidate record starts with a fast
              ``bytes.find`` when it must decide whether valid data follows a damaged record
4       1     record type, u8 in 1..255; 0 is reserved so that zero-filled space (what a
              file system may expose after a crash) can never parse as a record
5       3     reserved, must be zero (room for flags without a format change)
8       4     payload length N, u32
12      4     payload checksum, crc32 of the N payload bytes, u32
16      4     header checksum, crc32 of header bytes 0..15, u32
20      N     payload: one msgpack object (``use_bin_type=True``; decoded with ``raw=False``)
======  ====  ===============================================================================

Why two checksums: the header checksum makes the *length* trustworthy before it is used. With
a single checksum over everything, a bit flip in the length field of a middle record would
make it look like a short (torn) final record, and recovery would truncate away every record
after it even though they were synced. With a verified header, recovery knows exactly where a
record ends and can tell "torn tail" from "damage followed by more data".

This module is pure (no file I/O); :mod:`raftkube.storage.wal` applies the recovery policy.
"""

from __future__ import annotations

import enum
import struct
import zlib
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]

MAGIC = b"RKWL"
_HEADER = struct.Struct("<4sB3xII")  # magic, type, reserved, length, payload crc
_HEADER_CRC = struct.Struct("<I")
HEADER_SIZE = _HEADER.size + _HEADER_CRC.size  # 20
MAX_PAYLOAD = 0xFFFF_FFFF
_RESERVED = slice(5, 8)


class PayloadError(ValueError):
    """A payload object msgpack cannot represent, or bytes that are not valid msgpack.

    On the read side this means a writer bug rather than a crash: the bytes passed their
    checksum, so they are exactly what was written.
    """


def pack_payload(obj: Any) -> bytes:
    """Serialise ``obj`` to msgpack; ``bytes`` stay binary and ``str`` stays text.

    Integers must fit in 64 bits (signed or unsigned); anything msgpack cannot represent
    raises :class:`PayloadError` before the log is touched.
    """
    try:
        packed: bytes = msgpack.packb(obj, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise PayloadError(f"cannot serialise payload: {exc}") from exc
    return packed


def unpack_payload(data: bytes | memoryview) -> Any:
    """Inverse of :func:`pack_payload`; sequences come back as lists."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated exception types
        raise PayloadError(f"payload is not valid msgpack: {exc}") from exc


def encode_record(record_type: int, payload: bytes) -> bytes:
    """Frame ``payload`` (already serialised) as one record, header included."""
    if not 1 <= record_type <= 255:
        raise ValueError(f"record type must be in 1..255, got {record_type}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the u32 length field")
    head = _HEADER.pack(MAGIC, record_type, len(payload), zlib.crc32(payload))
    return head + _HEADER_CRC.pack(zlib.crc32(head)) + payload


class Verdict(enum.Enum):
    """What :func:`read_frame` found at an offset."""

    OK = "ok"
    SHORT_HEADER = "fewer bytes left than a record header"
    BAD_HEADER = "record header fails its magic, reserved-bytes or checksum test"
    SHORT_PAYLOAD = "payload extends past the end of the file"
    BAD_PAYLOAD = "payload checksum mismatch"


@attrs.frozen
class Frame:
    """The result of decoding one record position.

    ``end`` is only meaningful when the header was verified (``OK``, ``SHORT_PAYLOAD`` and
    ``BAD_PAYLOAD``); for an unverified header the claimed length cannot be trusted.
    """

    verdict: Verdict
    offset: int
    end: int = 0
    record_type: int = 0
    payload: bytes = b""


def _header_ok(data: bytes, offset: int) -> bool:
    header = data[offset : offset + HEADER_SIZE]
    if len(header) < HEADER_SIZE or header[:4] != MAGIC:
        return False
    if header[_RESERVED] != b"\x00\x00\x00" or header[4] == 0:
        return False
    stored: int = _HEADER_CRC.unpack_from(header, _HEADER.size)[0]
    return zlib.crc32(header[: _HEADER.size]) == stored


def read_frame(data: bytes, offset: int) -> Frame:
    """Decode the record that starts at ``offset`` in ``data`` (which must be < len(data))."""
    if len(data) - offset < HEADER_SIZE:
        return Frame(Verdict.SHORT_HEADER, offset)
    if not _header_ok(data, offset):
        return Frame(Verdict.BAD_HEADER, offset)
    _magic, record_type, length, payload_crc = _HEADER.unpack_from(data, offset)
    start = offset + HEADER_SIZE
    end = start + length
    if end > len(data):
        return Frame(Verdict.SHORT_PAYLOAD, offset, end, record_type)
    payload = data[start:end]
    if zlib.crc32(payload) != payload_crc:
        return Frame(Verdict.BAD_PAYLOAD, offset, end, record_type)
    return Frame(Verdict.OK, offset, end, record_type, payload)


def find_valid_record(data: bytes, start: int) -> int | None:
    """Return the offset of the first fully valid record at or after ``start``, if any.

    Used only on the error path, to decide whether a damaged record is the torn end of the
    log (nothing valid after it) or damage in the middle (valid data after it). Candidates
    are located by the magic, so the scan runs at ``bytes.find`` speed.
    """
    position = data.find(MAGIC, start)
    while position != -1:
        if read_frame(data, position).verdict is Verdict.OK:
            return position
        position = data.find(MAGIC, position + 1)
    return None
