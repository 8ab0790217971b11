"""The Raft message codec: exact round trips, and precise rejection of anything malformed."""

from __future__ import annotations

import contextlib
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftkube.net.codec import MAX_UINT64, MEMBERSHIP_EXT, SCHEMAS, CodecError, decode, encode
from raftkube_spec.raft.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    InstallSnapshotRequest,
    Message,
    RequestVoteRequest,
    RequestVoteResponse,
    TimeoutNowRequest,
)
from raftkube_spec.raft.types import Entry, Membership

uints = st.one_of(st.integers(0, 10), st.integers(0, MAX_UINT64))
memberships = st.lists(st.tuples(uints, st.booleans()), max_size=6, unique_by=lambda p: p[0]).map(
    lambda pairs: Membership(
        voters=tuple(sorted(j for j, learner in pairs if not learner)),
        learners=tuple(sorted(j for j, learner in pairs if learner)),
    )
)
values = st.one_of(st.binary(max_size=40), memberships)
entries = st.lists(st.builds(Entry, uints, values), max_size=20).map(tuple)
# Entries in few terms, as real append batches are, to exercise the run-length encoding.
runny_entries = st.lists(st.tuples(st.integers(0, 3), st.binary(max_size=8)), max_size=30).map(
    lambda pairs: tuple(Entry(t, v) for t, v in sorted(pairs, key=lambda p: p[0]))
)

messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(RequestVoteRequest, uints, uints, uints, uints, uints, st.booleans()),
    st.builds(RequestVoteResponse, uints, uints, uints, st.booleans(), st.booleans()),
    st.builds(
        AppendEntriesRequest,
        uints,
        uints,
        uints,
        uints,
        uints,
        st.one_of(entries, runny_entries),
        uints,
        uints,
    ),
    st.builds(AppendEntriesResponse, uints, uints, uints, st.booleans(), uints, uints),
    st.builds(InstallSnapshotRequest, uints, uints, uints, uints, uints, entries),
    st.builds(TimeoutNowRequest, uints, uints, uints),
)


def pack(obj: Any) -> bytes:
    return bytes(msgpack.packb(obj, use_bin_type=True))


def heartbeat() -> AppendEntriesRequest:
    return AppendEntriesRequest(2, 1, 3, 4, 2, (Entry(2, b"a"), Entry(3, b"b")), 4, 9)


@given(messages)
def test_every_message_type_round_trips(message: Message) -> None:
    decoded = decode(encode(message))
    assert decoded == message
    assert type(decoded) is type(message)
    for entry in getattr(decoded, "entries", ()):
        assert type(entry.value) in (bytes, Membership)


def test_schemas_cover_every_field_of_every_message_type() -> None:
    # If the spec grows a field, the codec must be taught it rather than silently drop it.
    assert {s.cls for s in SCHEMAS} == set(Message.__args__)
    for schema in SCHEMAS:
        assert [name for name, _ in schema.fields] == [f.name for f in attrs.fields(schema.cls)]
    assert len({s.tag for s in SCHEMAS}) == len(SCHEMAS)


def test_entries_of_one_term_encode_as_flat_arrays() -> None:
    many = tuple(Entry(7, b"x" * 10) for _ in range(1000))
    raw = msgpack.unpackb(encode(AppendEntriesRequest(7, 1, 2, 0, 0, many, 0)), raw=False)
    assert raw[6] == [[7, 1000], [b"x" * 10] * 1000]
    # 12 bytes per entry: the value and its 2-byte bin header, nothing else per entry.
    assert len(encode(AppendEntriesRequest(7, 1, 2, 0, 0, many, 0))) < 12 * 1000 + 50


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (b"", "not valid msgpack"),
        (b"\xc1", "not valid msgpack"),  # a reserved msgpack byte
        (pack([6, 1, 2, 3])[:-1], "not valid msgpack"),  # truncated
        (pack([6, 1, 2, 3]) + b"\x00", "not valid msgpack"),  # trailing data
        (pack({"tag": 6}), "expected a non-empty array"),
        (pack([]), "expected a non-empty array"),
        (pack([99, 1, 2, 3]), "unknown message tag 99"),
        (pack(["6", 1, 2, 3]), "unknown message tag '6'"),
        (pack([True, 1, 2, 3]), "unknown message tag True"),
        (pack([6, 1, 2]), "TimeoutNowRequest (tag 6): expected 3 fields, got 2"),
        (pack([6, 1, 2, 3, 4]), "TimeoutNowRequest (tag 6): expected 3 fields, got 4"),
        (pack([6, -1, 2, 3]), "TimeoutNowRequest.term: integer -1 is outside"),
        (pack([6, 1.0, 2, 3]), "TimeoutNowRequest.term: expected an unsigned integer, got float"),
        (pack([6, 1, True, 3]), "TimeoutNowRequest.source: expected an unsigned integer, got bool"),
        (pack([6, 1, 2, None]), "TimeoutNowRequest.dest: expected an unsigned integer"),
        (pack([2, 1, 2, 3, 1, False]), "RequestVoteResponse.granted: expected a boolean, got int"),
        (pack([2, 1, 2, 3, True, "no"]), "RequestVoteResponse.pre_vote: expected a boolean"),
        (pack([3, 1, 2, 3, 0, 0, [], 0, 0]), "AppendEntriesRequest.entries: expected [term_runs"),
        (pack([3, 1, 2, 3, 0, 0, [[1], [b"a"]], 0, 0]), "even-length"),
        (pack([3, 1, 2, 3, 0, 0, [[1, 1], b"a"], 0, 0]), "values must be an array"),
        (pack([3, 1, 2, 3, 0, 0, [[1, 1], ["a"]], 0, 0]), "entries[0].value: expected bytes"),
        (pack([3, 1, 2, 3, 0, 0, [[1, 2], [b"a"]], 0, 0]), "does not fit"),
        (pack([3, 1, 2, 3, 0, 0, [[1, 0], []], 0, 0]), "does not fit"),
        (pack([3, 1, 2, 3, 0, 0, [[1, 1], [b"a", b"b"]], 0, 0]), "cover 1 entries but 2 values"),
        (pack([3, 1, 2, 3, 0, 0, [[-1, 1], [b"a"]], 0, 0]), "term of run 0"),
        (pack([5, 1, 2, 3, 0, 0, [[], []], 1]), "InstallSnapshotRequest (tag 5): expected 6"),
    ],
)
def test_malformed_input_is_rejected_with_a_precise_reason(data: bytes, complaint: str) -> None:
    with pytest.raises(CodecError) as info:
        decode(data)
    assert complaint in str(info.value)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_codec_error(data: bytes) -> None:
    with contextlib.suppress(CodecError):
        decode(data)


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 2**64 - 1)
    | st.binary(max_size=4)
    | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=20,
)


@given(st.integers(0, 8), st.lists(msgpack_values, max_size=9))
def test_arbitrary_tagged_arrays_raise_only_codec_error(tag: int, fields: list[Any]) -> None:
    try:
        message = decode(pack([tag, *fields]))
    except CodecError:
        return
    assert decode(encode(message)) == message


@pytest.mark.parametrize(
    ("message", "complaint"),
    [
        (TimeoutNowRequest(-1, 1, 2), "TimeoutNowRequest.term: integer -1"),
        (TimeoutNowRequest(2**64, 1, 2), "outside 0..2**64-1"),
        (RequestVoteResponse(1, 1, 2, 1, False), "RequestVoteResponse.granted: expected a boolean"),  # type: ignore[arg-type]
        (
            AppendEntriesRequest(1, 1, 2, 0, 0, (Entry(1, "text"),), 0),
            "entries[0].value: expected bytes",
        ),
        (AppendEntriesRequest(1, 1, 2, 0, 0, [Entry(1, b"")], 0), "expected a tuple of entries"),  # type: ignore[arg-type]
        (
            AppendEntriesRequest(1, 1, 2, 0, 0, (Entry(1, Membership((0, -1))),), 0),
            "entries[0].value: member id: integer -1",
        ),
        (InstallSnapshotRequest(1, 1, 2, 0, 0, ((1, b""),)), "entries[0]: expected an Entry"),  # type: ignore[arg-type]
    ],
)
def test_unencodable_messages_are_refused_before_sending(message: Message, complaint: str) -> None:
    with pytest.raises(CodecError) as info:
        encode(message)
    assert complaint in str(info.value)


def test_non_messages_are_refused() -> None:
    with pytest.raises(CodecError, match="not a Raft message type"):
        encode(Entry(1, b""))  # type: ignore[arg-type]


def test_decoded_messages_are_the_spec_classes() -> None:
    assert decode(encode(heartbeat())) == heartbeat()


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        (msgpack.ExtType(MEMBERSHIP_EXT, pack([[0, 1], [1]])), "servers {1} both vote and learn"),
        (msgpack.ExtType(MEMBERSHIP_EXT, pack([[0, "1"], []])), "member id: expected an unsigned"),
        (msgpack.ExtType(MEMBERSHIP_EXT, pack([[0, 1]])), "expected a configuration [voters"),
        (msgpack.ExtType(MEMBERSHIP_EXT, b"\xc1"), "configuration is not valid msgpack"),
        (msgpack.ExtType(2, b""), "expected bytes or a configuration, got ExtType"),
    ],
)
def test_a_malformed_configuration_entry_is_rejected(value: object, complaint: str) -> None:
    """A configuration travels as an extension value; a bad one names the entry and why."""
    raw = msgpack.unpackb(encode(heartbeat()), raw=False)
    raw[6][1][1] = value
    with pytest.raises(CodecError) as info:
        decode(pack(raw))
    assert "AppendEntriesRequest.entries[1].value" in str(info.value)
    assert complaint in str(info.value)
