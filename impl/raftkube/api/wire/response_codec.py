"""KV responses on the wire: each response type's body, its encoder and its strict decoder.

A response's body carries no header of its own: the frame's :class:`~raftkube.api.wire.
records.WireHeader` holds the revision, which :func:`decode_response` is given. Responses
nested in a Txn carry ``{"header": {"revision": r}}`` as etcd's do. The usual answer to a put
(no previous key-value) is decoded on a fast path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from raftkube.api.wire.reader import FieldReader, WireError, decode_with, type_name
from raftkube.api.wire.records import Map, decode_kv, decode_kvs, encode_kv, optional_kv
from raftkube_spec.kv.responses import (
    CompactionResponse,
    DeleteRangeResponse,
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseRevokeResponse,
    LeaseTimeToLiveResponse,
    PutResponse,
    RangeResponse,
    Response,
    ResponseOp,
    TxnResponse,
)
from raftkube_spec.kv.types import ResponseHeader

_RESP_FIELD: Final[dict[type, str]] = {
    RangeResponse: "response_range",
    PutResponse: "response_put",
    DeleteRangeResponse: "response_delete_range",
    TxnResponse: "response_txn",
}


def encode_response(resp: Response) -> Map:
    """The body of a response, without its header (the frame carries a :class:`WireHeader`).
    Responses nested in a Txn carry ``{"header": {"revision": r}}`` as etcd's do."""
    match resp:
        case RangeResponse():
            return {
                "kvs": [encode_kv(kv) for kv in resp.kvs],
                "more": resp.more,
                "count": resp.count,
            }
        case PutResponse():
            return {"prev_kv": None if resp.prev_kv is None else encode_kv(resp.prev_kv)}
        case DeleteRangeResponse():
            return {"deleted": resp.deleted, "prev_kvs": [encode_kv(kv) for kv in resp.prev_kvs]}
        case TxnResponse():
            return {
                "succeeded": resp.succeeded,
                "responses": [_encode_response_op(o) for o in resp.responses],
            }
        case CompactionResponse() | LeaseRevokeResponse():
            return {}
        case LeaseGrantResponse() | LeaseKeepAliveResponse():
            return {"ID": resp.id, "TTL": resp.ttl}
        case LeaseTimeToLiveResponse():
            return {
                "ID": resp.id,
                "TTL": resp.ttl,
                "grantedTTL": resp.granted_ttl,
                "keys": list(resp.keys),
            }
    raise TypeError(f"not a KV response: {resp!r}")


def _encode_response_op(op: ResponseOp) -> Map:
    body = encode_response(op)
    body["header"] = {"revision": op.header.revision}
    return {_RESP_FIELD[type(op)]: body}


def _decode_response_op(raw: object, where: str) -> ResponseOp:
    r = FieldReader(raw, where)
    if len(r.raw) != 1:
        raise WireError(where, f"expected exactly one of {sorted(_RESP_FIELD.values())}")
    (name,) = r.raw
    for kind, field in _RESP_FIELD.items():
        if field == name:
            inner = FieldReader(r.raw[name], r.path(name))
            hdr = inner.sub("header")
            assert hdr is not None
            revision = decode_with(hdr.raw, hdr.where, lambda h: h.i("revision"))
            op: ResponseOp = _RESPONSE_DECODERS[kind](inner, ResponseHeader(revision))
            inner.done()
            return op
    raise WireError(r.path(name), "unknown response op")


def _d_range_resp(r: FieldReader, h: ResponseHeader) -> RangeResponse:
    present, kvs = r.lookup("kvs", False)
    return RangeResponse(
        h,
        tuple(decode_kvs(kvs, r.path("kvs"))) if present else (),
        r.b("more"),
        r.i("count", minimum=0),
    )


def _d_txn_resp(r: FieldReader, h: ResponseHeader) -> TxnResponse:
    return TxnResponse(
        h,
        r.b("succeeded"),
        tuple(_decode_response_op(raw, w) for w, raw in r.items("responses")),
    )


def _d_ttl_resp(r: FieldReader, h: ResponseHeader) -> LeaseTimeToLiveResponse:
    keys = []
    for w, raw in r.items("keys"):
        if type(raw) is not bytes:
            raise WireError(w, f"expected bytes, got {type_name(raw)}")
        keys.append(raw)
    return LeaseTimeToLiveResponse(
        h, r.i("ID", None), r.i("TTL", None), r.i("grantedTTL"), tuple(keys)
    )


_RESPONSE_DECODERS: Final[dict[type, Callable[[FieldReader, ResponseHeader], Any]]] = {
    RangeResponse: _d_range_resp,
    PutResponse: lambda r, h: PutResponse(h, optional_kv(r, "prev_kv")),
    DeleteRangeResponse: lambda r, h: DeleteRangeResponse(
        h,
        r.i("deleted", minimum=0),
        tuple(decode_kv(raw, w) for w, raw in r.items("prev_kvs")),
    ),
    TxnResponse: _d_txn_resp,
    CompactionResponse: lambda r, h: CompactionResponse(h),
    LeaseGrantResponse: lambda r, h: LeaseGrantResponse(h, r.i("ID", None), r.i("TTL", None)),
    LeaseRevokeResponse: lambda r, h: LeaseRevokeResponse(h),
    LeaseKeepAliveResponse: lambda r, h: LeaseKeepAliveResponse(
        h, r.i("ID", None), r.i("TTL", None)
    ),
    LeaseTimeToLiveResponse: _d_ttl_resp,
}

_OP_RESPONSE: Final[dict[str, type]] = {
    "range": RangeResponse,
    "put": PutResponse,
    "delete_range": DeleteRangeResponse,
    "txn": TxnResponse,
    "compaction": CompactionResponse,
    "lease_grant": LeaseGrantResponse,
    "lease_revoke": LeaseRevokeResponse,
    "lease_keepalive": LeaseKeepAliveResponse,
    "lease_ttl": LeaseTimeToLiveResponse,
}


def decode_response(op: str, raw: object, revision: int, where: str = "body") -> Response:
    """Decode the body of a response to KV op ``op``; ``revision`` comes from the header."""
    if op == "put" and type(raw) is dict and len(raw) == 1 and raw.get("prev_kv", 0) is None:
        return PutResponse(ResponseHeader(revision))  # The usual answer to a put.
    kind = _OP_RESPONSE.get(op)
    if kind is None:
        raise WireError("op", f"not a KV op: {op!r}")
    resp: Response = decode_with(
        raw, where, lambda r: _RESPONSE_DECODERS[kind](r, ResponseHeader(revision))
    )
    return resp
