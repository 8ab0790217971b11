"""Raft messages to and from msgpack.

Wire form: one msgpack array ``[tag, term, source, dest, *fields]``, fields positional in the
order of :data:`SCHEMAS`. Positional arrays rather than maps keep field names off the wire and
make a field-count mismatch (a peer running a different schema) an immediate, precise error.

Log entries, the bulk of the traffic, are not one array per entry. ``entries`` becomes
``[term_runs, values]``: ``term_runs`` is a flat run-length encoding ``[term, count, term,
count, ...]`` (an append batch nearly always spans one or two terms, so this is a handful of
integers) and ``values`` is the flat array of the entries' ``bytes``. Decoding checks that the
counts add up to the number of values. A configuration entry's value (a ``Membership``, see
:mod:`raftkube.raft.membership`) travels as msgpack extension type 1 holding
``[voters, learners]``, so it can never be confused with an ordinary entry's bytes.

Everything received comes from another process that may be buggy, stale or malicious, so
:func:`decode` validates every field — types exactly (a msgpack ``true`` is not the integer 1),
integers in the unsigned 64-bit range — and reports problems only as :class:`CodecError`,
naming the message type and field. Encoding applies the same checks, so anything this side
sends, the other side accepts.
"""

from __future__ import annotations

import enum
from typing import Any, Final

import attrs
import msgpack  # type: ignore[import-untyped]

from raftkube_spec.raft.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    InstallSnapshotRequest,
    Message,
    RequestVoteRequest,
    RequestVoteResponse,
    TimeoutNowRequest,
)
from raftkube_spec.raft.types import Entry, Membership, Value

MAX_UINT64: Final = 0xFFFF_FFFF_FFFF_FFFF
MEMBERSHIP_EXT: Final = 1
"""The msgpack extension type code of a configuration entry's value."""


class CodecError(ValueError):
    """Bytes that are not a valid encoded Raft message, or a message that cannot be encoded."""


class FieldKind(enum.Enum):
    """How one message field is represented on the wire."""

    UINT = "unsigned 64-bit integer"
    BOOL = "boolean"
    ENTRIES = "entry list"


@attrs.frozen
class Schema:
    """The wire layout of one message type: its tag and its fields in wire order."""

    tag: int
    cls: type[Any]
    fields: tuple[tuple[str, FieldKind], ...]


_HEAD = (("term", FieldKind.UINT), ("source", FieldKind.UINT), ("dest", FieldKind.UINT))
_U, _B, _E = FieldKind.UINT, FieldKind.BOOL, FieldKind.ENTRIES

SCHEMAS: Final[tuple[Schema, ...]] = (
    Schema(
        1,
        RequestVoteRequest,
        (*_HEAD, ("last_log_term", _U), ("last_log_index", _U), ("pre_vote", _B)),
    ),
    Schema(2, RequestVoteResponse, (*_HEAD, ("granted", _B), ("pre_vote", _B))),
    Schema(
        3,
        AppendEntriesRequest,
        (
            *_HEAD,
            ("prev_log_index", _U),
            ("prev_log_term", _U),
            ("entries", _E),
            ("commit_index", _U),
            ("read_ctx", _U),
        ),
    ),
    Schema(
        4,
        AppendEntriesResponse,
        (*_HEAD, ("success", _B), ("match_index", _U), ("read_ctx", _U)),
    ),
    Schema(
        5,
        InstallSnapshotRequest,
        (*_HEAD, ("last_index", _U), ("last_term", _U), ("entries", _E)),
    ),
    Schema(6, TimeoutNowRequest, _HEAD),
)
"""Tags are part of the wire protocol: never renumber, only add."""

_BY_TAG: Final = {s.tag: s for s in SCHEMAS}
_BY_CLASS: Final = {s.cls: s for s in SCHEMAS}


def _describe(value: object) -> str:
    if isinstance(value, list | dict | bytes | str):
        return f"{type(value).__name__} of length {len(value)}"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def _check_uint(value: object, where: str) -> int:
    # ``type(...) is int`` on purpose: bool is a subclass of int, and a peer sending ``true``
    # for an index has a schema bug we want to hear about.
    if type(value) is not int:
        raise CodecError(f"{where}: expected an unsigned integer, got {_describe(value)}")
    if not 0 <= value <= MAX_UINT64:
        raise CodecError(f"{where}: integer {value} is outside 0..2**64-1")
    return value


def _check_bool(value: object, where: str) -> bool:
    if type(value) is not bool:
        raise CodecError(f"{where}: expected a boolean, got {_describe(value)}")
    return value


def _encode_entries(entries: object, where: str) -> list[list[Any]]:
    if not isinstance(entries, tuple):
        raise CodecError(f"{where}: expected a tuple of entries, got {_describe(entries)}")
    runs: list[int] = []
    values: list[bytes | msgpack.ExtType] = []
    last_term = -1
    for i, entry in enumerate(entries):
        if not isinstance(entry, Entry):
            raise CodecError(f"{where}[{i}]: expected an Entry, got {_describe(entry)}")
        term = _check_uint(entry.term, f"{where}[{i}].term")
        value = entry.value
        if type(value) is Membership:
            values.append(_encode_membership(value, f"{where}[{i}].value"))
        elif type(value) is bytes:
            values.append(value)
        else:
            raise CodecError(
                f"{where}[{i}].value: expected bytes or a Membership, got {_describe(value)}"
            )
        if term == last_term:
            runs[-1] += 1
        else:
            runs += (term, 1)
            last_term = term
    return [runs, values]


def _encode_membership(value: Membership, where: str) -> msgpack.ExtType:
    for j in (*value.voters, *value.learners):
        _check_uint(j, f"{where}: member id")
    packed = msgpack.packb([list(value.voters), list(value.learners)], use_bin_type=True)
    return msgpack.ExtType(MEMBERSHIP_EXT, packed)


def _decode_value(value: object, where: str) -> Value:
    if type(value) is bytes:
        return value
    if not isinstance(value, msgpack.ExtType) or value.code != MEMBERSHIP_EXT:
        raise CodecError(f"{where}: expected bytes or a configuration, got {_describe(value)}")
    try:
        raw = msgpack.unpackb(value.data, raw=False, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise CodecError(f"{where}: configuration is not valid msgpack: {exc}") from None
    if type(raw) is not list or len(raw) != 2 or any(type(ids) is not list for ids in raw):
        raise CodecError(f"{where}: expected a configuration [voters, learners], got {raw!r:.80}")
    voters, learners = (tuple(_check_uint(j, f"{where}: member id") for j in ids) for ids in raw)
    try:
        return Membership(voters=voters, learners=learners)
    except ValueError as exc:
        raise CodecError(f"{where}: {exc}") from None


def _decode_entries(raw: object, where: str) -> tuple[Entry, ...]:
    if type(raw) is not list or len(raw) != 2:
        raise CodecError(f"{where}: expected [term_runs, values], got {_describe(raw)}")
    runs, values = raw
    if type(runs) is not list or len(runs) % 2:
        raise CodecError(f"{where}: term runs must be an even-length array, got {_describe(runs)}")
    if type(values) is not list:
        raise CodecError(f"{where}: values must be an array, got {_describe(values)}")
    for i, value in enumerate(values):
        if type(value) is not bytes:
            values[i] = _decode_value(value, f"{where}[{i}].value")
    entries: list[Entry] = []
    for r in range(0, len(runs), 2):
        term = _check_uint(runs[r], f"{where}: term of run {r // 2}")
        count = _check_uint(runs[r + 1], f"{where}: length of run {r // 2}")
        if count == 0 or len(entries) + count > len(values):
            raise CodecError(
                f"{where}: run {r // 2} of {count} entries does not fit the {len(values)} values"
            )
        start = len(entries)
        entries.extend(Entry(term, v) for v in values[start : start + count])
    if len(entries) != len(values):
        raise CodecError(
            f"{where}: term runs cover {len(entries)} entries but {len(values)} values were sent"
        )
    return tuple(entries)


def encode(message: Message) -> bytes:
    """The wire bytes of ``message``; :class:`CodecError` if it cannot be represented
    (not a Raft message, a negative or over-64-bit integer, an entry value that is neither bytes
    nor a configuration)."""
    schema = _BY_CLASS.get(type(message))
    if schema is None:
        raise CodecError(f"cannot encode {_describe(message)}: not a Raft message type")
    name = schema.cls.__name__
    out: list[Any] = [schema.tag]
    for field, kind in schema.fields:
        value = getattr(message, field)
        where = f"{name}.{field}"
        if kind is FieldKind.UINT:
            out.append(_check_uint(value, where))
        elif kind is FieldKind.BOOL:
            out.append(_check_bool(value, where))
        else:
            out.append(_encode_entries(value, where))
    return bytes(msgpack.packb(out, use_bin_type=True))


def decode(data: bytes) -> Message:
    """The message encoded in ``data``; :class:`CodecError` naming the problem otherwise.

    Never raises anything else for any input, so a receive loop needs to handle only this.
    """
    try:
        raw = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise CodecError(f"not valid msgpack: {type(exc).__name__}: {exc}") from None
    if type(raw) is not list or not raw:
        raise CodecError(f"expected a non-empty array [tag, ...], got {_describe(raw)}")
    tag = raw[0]
    schema = _BY_TAG.get(tag) if type(tag) is int else None
    if schema is None:
        raise CodecError(f"unknown message tag {tag!r}")
    name = schema.cls.__name__
    if len(raw) - 1 != len(schema.fields):
        raise CodecError(
            f"{name} (tag {tag}): expected {len(schema.fields)} fields, got {len(raw) - 1}"
        )
    kwargs: dict[str, Any] = {}
    for (field, kind), value in zip(schema.fields, raw[1:], strict=True):
        where = f"{name}.{field}"
        if kind is FieldKind.UINT:
            kwargs[field] = _check_uint(value, where)
        elif kind is FieldKind.BOOL:
            kwargs[field] = _check_bool(value, where)
        else:
            kwargs[field] = _decode_entries(value, where)
    message: Message = schema.cls(**kwargs)
    return message
