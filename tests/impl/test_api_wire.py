"""The client wire codec: Hypothesis round trips and strict rejection of malformed maps."""

from __future__ import annotations

from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftkube.api import wire
from raftkube.api.wire import WireError
from raftkube_spec.kv.errors import ErrorCode, KVError
from raftkube_spec.kv.requests import (
    CompactionRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
    PutRequest,
    RangeRequest,
    TxnRequest,
)
from raftkube_spec.kv.responses import (
    CompactionResponse,
    DeleteRangeResponse,
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseRevokeResponse,
    LeaseTimeToLiveResponse,
    PutResponse,
    RangeResponse,
    TxnResponse,
)
from raftkube_spec.kv.types import Event, EventType, KeyValue, ResponseHeader

keys = st.binary(max_size=8)
nat = st.integers(min_value=0, max_value=2**40)
ints = st.integers(min_value=-(2**40), max_value=2**40)

ranges = st.builds(RangeRequest, keys, keys, nat, ints, st.booleans(), st.booleans())
puts = st.builds(PutRequest, keys, keys, ints, st.booleans(), st.booleans(), st.booleans())
deletes = st.builds(DeleteRangeRequest, keys, keys, st.booleans())


@st.composite
def compares(draw: st.DrawFn) -> Compare:
    target = draw(st.sampled_from(CompareTarget))
    value: int | bytes = draw(keys if target is CompareTarget.VALUE else ints)
    return Compare(draw(keys), target, draw(st.sampled_from(CompareResult)), value, draw(keys))


txns = st.recursive(
    st.builds(TxnRequest),
    lambda inner: st.builds(
        TxnRequest,
        st.lists(compares(), max_size=3).map(tuple),
        st.lists(st.one_of(ranges, puts, deletes, inner), max_size=3).map(tuple),
        st.lists(st.one_of(ranges, puts, deletes, inner), max_size=3).map(tuple),
    ),
    max_leaves=6,
)
requests = st.one_of(
    ranges,
    puts,
    deletes,
    txns,
    st.builds(CompactionRequest, ints),
    st.builds(LeaseGrantRequest, ints, ints, ints),
    st.builds(LeaseRevokeRequest, ints),
    st.builds(LeaseKeepAliveRequest, ints, ints),
    st.builds(LeaseTimeToLiveRequest, ints, ints, st.booleans()),
)

kvs = st.builds(KeyValue, keys, nat, nat, nat, keys, ints)
headers = st.builds(ResponseHeader, ints)
range_resps = st.builds(
    RangeResponse, headers, st.lists(kvs, max_size=3).map(tuple), st.booleans(), nat
)
put_resps = st.builds(PutResponse, headers, st.none() | kvs)
delete_resps = st.builds(DeleteRangeResponse, headers, nat, st.lists(kvs, max_size=3).map(tuple))
txn_resps = st.recursive(
    st.builds(TxnResponse, headers, st.booleans()),
    lambda inner: st.builds(
        TxnResponse,
        headers,
        st.booleans(),
        st.lists(st.one_of(range_resps, put_resps, delete_resps, inner), max_size=3).map(tuple),
    ),
    max_leaves=5,
)
responses = st.one_of(
    range_resps,
    put_resps,
    delete_resps,
    txn_resps,
    st.builds(CompactionResponse, headers),
    st.builds(LeaseGrantResponse, headers, ints, ints),
    st.builds(LeaseRevokeResponse, headers),
    st.builds(LeaseKeepAliveResponse, headers, ints, ints),
    st.builds(
        LeaseTimeToLiveResponse, headers, ints, ints, ints, st.lists(keys, max_size=3).map(tuple)
    ),
)


def through_msgpack(obj: Any) -> Any:
    return msgpack.unpackb(msgpack.packb(obj, use_bin_type=True), raw=False)


@settings(max_examples=200)
@given(requests)
def test_requests_round_trip(req: Any) -> None:
    op = wire.request_op(req)
    assert wire.decode_request(op, through_msgpack(wire.encode_request(req))) == req


@settings(max_examples=200)
@given(responses)
def test_responses_round_trip(resp: Any) -> None:
    op = {v: k for k, v in wire.response_codec._OP_RESPONSE.items()}[type(resp)]
    body = through_msgpack(wire.encode_response(resp))
    assert wire.decode_response(op, body, resp.header.revision) == resp


@given(st.builds(Event, st.sampled_from(EventType), kvs, st.none() | kvs))
def test_events_round_trip(event: Event) -> None:
    assert wire.decode_event(through_msgpack(wire.encode_event(event))) == event


@given(st.builds(wire.WireHeader, st.text(max_size=5), ints, ints, nat))
def test_headers_round_trip(header: wire.WireHeader) -> None:
    assert wire.decode_header(through_msgpack(wire.encode_header(header))) == header


@given(st.sampled_from(ErrorCode), ints)
def test_kv_errors_round_trip(code: ErrorCode, revision: int) -> None:
    err = KVError(code, ResponseHeader(revision))
    assert wire.decode_kv_error(through_msgpack(wire.encode_kv_error(err))) == err


@pytest.mark.parametrize(
    ("op", "body", "field"),
    [
        ("put", {"value": b"v"}, "body.key"),
        ("put", {"key": "text"}, "body.key"),
        ("put", {"key": b"k", "lease": True}, "body.lease"),
        ("put", {"key": b"k", "bogus": 1}, "body.bogus"),
        ("range", {"key": b"k", "limit": -1}, "body.limit"),
        ("range", [b"k"], "body"),
        (
            "txn",
            {"compare": [{"key": b"k", "target": "SIZE", "result": "EQUAL"}]},
            "body.compare[0].target",
        ),
        (
            "txn",
            {"success": [{"request_put": {"key": b"k"}, "request_range": {"key": b"k"}}]},
            "body.success[0]",
        ),
        ("txn", {"failure": [{"request_nope": {}}]}, "body.failure[0].request_nope"),
        ("txn", {"success": [{"request_put": {"key": 3}}]}, "body.success[0].request_put.key"),
        ("compaction", {}, "body.revision"),
        ("lease_revoke", {"ID": "1"}, "body.ID"),
        ("watch", {}, "op"),
    ],
)
def test_malformed_requests_name_the_field(op: str, body: Any, field: str) -> None:
    with pytest.raises(WireError) as info:
        wire.decode_request(op, body)
    assert info.value.field == field
    assert field in str(info.value)


def test_malformed_responses_and_envelopes() -> None:
    with pytest.raises(WireError, match=r"body\.kvs\[0\]\.key"):
        wire.decode_response("range", {"kvs": [{"value": b""}]}, 1)
    with pytest.raises(WireError, match=r"error\.code"):
        wire.decode_kv_error({"code": "NOPE", "message": "x"})
    with pytest.raises(WireError, match=r"^id"):
        wire.decode_request_frame({"op": "put", "body": {}})
    with pytest.raises(WireError, match=r"^op"):
        wire.decode_request_frame({"id": 1, "op": "frobnicate", "body": {}})
    with pytest.raises(WireError, match=r"^extra"):
        wire.decode_request_frame({"id": 1, "op": "put", "body": {}, "extra": 1})
    frame = wire.decode_request_frame({"id": 7, "op": "status", "body": {}})
    assert (frame.id, frame.op, frame.body) == (7, "status", {})


FULL_PUT = {
    "key": b"k",
    "value": b"v",
    "lease": 0,
    "prev_kv": False,
    "ignore_value": False,
    "ignore_lease": False,
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"key": "k"}, "body.key"),
        ({"value": None}, "body.value"),
        ({"lease": True}, "body.lease"),
        ({"prev_kv": 1}, "body.prev_kv"),
        ({"ignore_lease": None}, "body.ignore_lease"),
        ({"extra": 1}, "body.extra"),
    ],
)
def test_a_full_put_body_that_is_off_in_one_field_is_refused(
    change: dict[str, Any], field: str
) -> None:
    """A complete, well-typed put body takes a shortcut past the field reader; one wrong
    type or one unknown field must still be refused with that field named."""
    assert wire.decode_request("put", dict(FULL_PUT)) == PutRequest(b"k", b"v")
    with pytest.raises(WireError) as info:
        wire.decode_request("put", {**FULL_PUT, **change})
    assert info.value.field == field


def test_the_shortcuts_for_headers_envelopes_and_put_answers_check_what_the_reader_checks() -> None:
    header = {"cluster_id": "c", "member_id": 1, "revision": 5, "raft_term": 2}
    assert wire.decode_header(header) == wire.WireHeader("c", 1, 5, 2)
    with pytest.raises(WireError, match=r"header\.raft_term"):
        wire.decode_header({**header, "raft_term": -1})
    with pytest.raises(WireError, match=r"header\.member_id"):
        wire.decode_header({**header, "member_id": "1"})
    with pytest.raises(WireError, match=r"body"):
        wire.decode_request_frame({"id": 1, "op": "status", "body": {1: 2}})
    with pytest.raises(WireError, match=r"^op"):
        wire.decode_request_frame({"id": 1, "op": ["put"], "body": {}})
    with pytest.raises(WireError, match=r"^id"):
        wire.decode_request_frame({"id": -1, "op": "put", "body": {}})
    assert wire.decode_response("put", {"prev_kv": None}, 9) == PutResponse(ResponseHeader(9))
    with pytest.raises(WireError, match=r"body\.prev_kv"):
        wire.decode_response("put", {"prev_kv": 3}, 9)
