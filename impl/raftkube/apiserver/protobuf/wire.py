"""The protobuf wire format, read only: what the schema-driven decoder walks.

A message is a sequence of fields, each a key (``field_number << 3 | wire_type``, a varint)
followed by its value: a varint (wire type 0), eight bytes (1), a length-prefixed run of bytes
(2: strings, bytes, embedded messages, packed repeated scalars) or four bytes (5). Groups (3, 4)
are long deprecated and no Kubernetes type uses them, so they are malformed here.

Nothing here knows a schema: :func:`fields` yields the raw values and the decoder gives them
meaning. Every read is bounds-checked; a truncated or otherwise broken buffer raises
:class:`WireError`, which the API server answers with 400.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import attrs

VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
FIXED32 = 5

_MAX_VARINT_BYTES = 10


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


@attrs.frozen
class RawField:
    """One field as found on the wire: ``value`` is an int for varints and fixed-width values
    (unsigned, as read), bytes for length-delimited ones."""

    number: int
    wire_type: int
    value: int | bytes


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The unsigned varint at ``pos`` and the position after it."""
    result = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= len(buf):
            raise WireError("truncated varint")
        byte = buf[pos + i]
        result |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return result & 0xFFFF_FFFF_FFFF_FFFF, pos + i + 1
    raise WireError("varint longer than 10 bytes")


def fields(buf: bytes) -> Iterator[RawField]:
    """Every field of the message in ``buf``, in wire order."""
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = read_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        value: int | bytes
        if wire_type == VARINT:
            value, pos = read_varint(buf, pos)
        elif wire_type == LENGTH_DELIMITED:
            length, pos = read_varint(buf, pos)
            if length > end - pos:
                raise WireError(f"field {number}: length {length} runs past the end")
            value = buf[pos : pos + length]
            pos += length
        elif wire_type == FIXED64:
            if pos + 8 > end:
                raise WireError(f"field {number}: truncated fixed64")
            (value,) = struct.unpack_from("<Q", buf, pos)
            pos += 8
        elif wire_type == FIXED32:
            if pos + 4 > end:
                raise WireError(f"field {number}: truncated fixed32")
            (value,) = struct.unpack_from("<I", buf, pos)
            pos += 4
        else:
            raise WireError(f"field {number}: unsupported wire type {wire_type}")
        yield RawField(number, wire_type, value)


def packed_varints(buf: bytes) -> list[int]:
    """The unsigned varints of a packed repeated field."""
    out: list[int] = []
    pos = 0
    while pos < len(buf):
        value, pos = read_varint(buf, pos)
        out.append(value)
    return out


def signed(value: int, bits: int) -> int:
    """A two's-complement reading of ``value`` (how int32/int64 carry negative numbers: as
    ten-byte varints, sign-extended to 64 bits)."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def as_double(value: int) -> float:
    """The IEEE 754 double carried in a fixed64 field."""
    result: float = struct.unpack("<d", struct.pack("<Q", value))[0]
    return result
