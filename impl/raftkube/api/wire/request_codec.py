"""KV requests on the wire: each request type's body, its encoder and its strict decoder.

The bodies use etcd's ``etcdserverpb`` field names (``key``, ``range_end``, ``prev_kv``,
``request_put``, ``ID``, ``TTL`` ...); a Txn nests its compares and its operations as etcd's
``Compare`` and ``RequestOp`` do. :func:`request_op` names the protocol op that carries a
request, :func:`decode_request` decodes the body of one (a put, the common case, on a fast
path first).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from raftkube.api.wire.reader import FieldReader, WireError, decode_with
from raftkube.api.wire.records import Map
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
    Request,
    RequestOp,
    TxnRequest,
)

_COMPARE_FIELD: Final = {
    CompareTarget.VERSION: "version",
    CompareTarget.CREATE: "create_revision",
    CompareTarget.MOD: "mod_revision",
    CompareTarget.VALUE: "value",
    CompareTarget.LEASE: "lease",
}


def _encode_compare(c: Compare) -> Map:
    out: Map = {
        "key": c.key,
        "range_end": c.range_end,
        "target": c.target.name,
        "result": c.result.name,
    }
    field = _COMPARE_FIELD[c.target]
    if c.target is CompareTarget.VALUE:
        out[field] = c.value if isinstance(c.value, bytes) else b""
    else:
        out[field] = c.value if isinstance(c.value, int) else 0
    return out


def _decode_compare(r: FieldReader) -> Compare:
    target = r.choice("target", CompareTarget)
    value: int | bytes = (
        r.by("value") if target is CompareTarget.VALUE else r.i(_COMPARE_FIELD[target])
    )
    return Compare(
        key=r.by("key", None),
        target=target,
        result=r.choice("result", CompareResult),
        value=value,
        range_end=r.by("range_end"),
    )


_OP_FIELD: Final[dict[type, str]] = {
    RangeRequest: "request_range",
    PutRequest: "request_put",
    DeleteRangeRequest: "request_delete_range",
    TxnRequest: "request_txn",
}


def _encode_request_op(op: RequestOp) -> Map:
    return {_OP_FIELD[type(op)]: encode_request(op)}


def _decode_request_op(raw: object, where: str) -> RequestOp:
    r = FieldReader(raw, where)
    if len(r.raw) != 1:
        raise WireError(where, f"expected exactly one of {sorted(_OP_FIELD.values())}")
    (name,) = r.raw
    for kind, field in _OP_FIELD.items():
        if field == name:
            op: RequestOp = _REQUEST_DECODERS[kind](FieldReader(r.raw[name], r.path(name)))
            return op
    raise WireError(r.path(name), "unknown request op")


def _range_body(req: RangeRequest) -> Map:
    return {
        "key": req.key,
        "range_end": req.range_end,
        "limit": req.limit,
        "revision": req.revision,
        "keys_only": req.keys_only,
        "count_only": req.count_only,
    }


def encode_request(req: Request) -> Map:
    """The body of a KV request (``now_ms`` of lease requests is a server-internal field)."""
    match req:
        case RangeRequest():
            return _range_body(req)
        case PutRequest():
            return {
                "key": req.key,
                "value": req.value,
                "lease": req.lease,
                "prev_kv": req.prev_kv,
                "ignore_value": req.ignore_value,
                "ignore_lease": req.ignore_lease,
            }
        case DeleteRangeRequest():
            return {"key": req.key, "range_end": req.range_end, "prev_kv": req.prev_kv}
        case TxnRequest():
            return {
                "compare": [_encode_compare(c) for c in req.compare],
                "success": [_encode_request_op(o) for o in req.success],
                "failure": [_encode_request_op(o) for o in req.failure],
            }
        case CompactionRequest():
            return {"revision": req.revision}
        case LeaseGrantRequest():
            return {"ID": req.id, "TTL": req.ttl, "now_ms": req.now_ms}
        case LeaseRevokeRequest():
            return {"ID": req.id}
        case LeaseKeepAliveRequest():
            return {"ID": req.id, "now_ms": req.now_ms}
        case LeaseTimeToLiveRequest():
            return {"ID": req.id, "keys": req.keys, "now_ms": req.now_ms}
    raise TypeError(f"not a KV request: {req!r}")


def _d_range(r: FieldReader) -> RangeRequest:
    return RangeRequest(
        key=r.by("key", None),
        range_end=r.by("range_end"),
        limit=r.i("limit", minimum=0),
        revision=r.i("revision"),
        keys_only=r.b("keys_only"),
        count_only=r.b("count_only"),
    )


def _d_put(r: FieldReader) -> PutRequest:
    return PutRequest(
        key=r.by("key", None),
        value=r.by("value"),
        lease=r.i("lease"),
        prev_kv=r.b("prev_kv"),
        ignore_value=r.b("ignore_value"),
        ignore_lease=r.b("ignore_lease"),
    )


_PUT_FIELDS: Final = frozenset(("key", "value", "lease", "prev_kv", "ignore_value", "ignore_lease"))


def _fast_put(raw: Map) -> PutRequest | None:
    """A put body with every field present and of the right type (what :func:`encode_request`
    writes), decoded without the field-by-field reader; None for anything else, which the
    reader then decodes or refuses with the offending field named."""
    if raw.keys() != _PUT_FIELDS:
        return None
    key, value, lease = raw["key"], raw["value"], raw["lease"]
    prev_kv, ignore_value, ignore_lease = raw["prev_kv"], raw["ignore_value"], raw["ignore_lease"]
    if (
        type(key) is bytes
        and type(value) is bytes
        and type(lease) is int
        and type(prev_kv) is bool
        and type(ignore_value) is bool
        and type(ignore_lease) is bool
    ):
        return PutRequest(key, value, lease, prev_kv, ignore_value, ignore_lease)
    return None


def _d_delete(r: FieldReader) -> DeleteRangeRequest:
    return DeleteRangeRequest(
        key=r.by("key", None), range_end=r.by("range_end"), prev_kv=r.b("prev_kv")
    )


def _d_txn(r: FieldReader) -> TxnRequest:
    return TxnRequest(
        compare=tuple(decode_with(raw, w, _decode_compare) for w, raw in r.items("compare")),
        success=tuple(_decode_request_op(raw, w) for w, raw in r.items("success")),
        failure=tuple(_decode_request_op(raw, w) for w, raw in r.items("failure")),
    )


_REQUEST_DECODERS: Final[dict[type, Callable[[FieldReader], Any]]] = {
    RangeRequest: _d_range,
    PutRequest: _d_put,
    DeleteRangeRequest: _d_delete,
    TxnRequest: _d_txn,
    CompactionRequest: lambda r: CompactionRequest(r.i("revision", None)),
    LeaseGrantRequest: lambda r: LeaseGrantRequest(r.i("ID"), r.i("TTL", None), r.i("now_ms")),
    LeaseRevokeRequest: lambda r: LeaseRevokeRequest(r.i("ID", None)),
    LeaseKeepAliveRequest: lambda r: LeaseKeepAliveRequest(r.i("ID", None), r.i("now_ms")),
    LeaseTimeToLiveRequest: lambda r: LeaseTimeToLiveRequest(
        r.i("ID", None), r.i("now_ms"), r.b("keys")
    ),
}

_OP_REQUEST: Final[dict[str, type]] = {
    "range": RangeRequest,
    "put": PutRequest,
    "delete_range": DeleteRangeRequest,
    "txn": TxnRequest,
    "compaction": CompactionRequest,
    "lease_grant": LeaseGrantRequest,
    "lease_revoke": LeaseRevokeRequest,
    "lease_keepalive": LeaseKeepAliveRequest,
    "lease_ttl": LeaseTimeToLiveRequest,
}
_REQUEST_OP: Final = {kind: op for op, kind in _OP_REQUEST.items()}


def request_op(req: Request) -> str:
    """The protocol op that carries ``req``."""
    return _REQUEST_OP[type(req)]


def decode_request(op: str, raw: object, where: str = "body") -> Request:
    """Decode the body of KV op ``op``; raises :class:`WireError` on anything unexpected."""
    if op == "put" and type(raw) is dict:
        put = _fast_put(raw)
        if put is not None:
            return put
    kind = _OP_REQUEST.get(op)
    if kind is None:
        raise WireError("op", f"not a KV op: {op!r}")
    req: Request = decode_with(raw, where, _REQUEST_DECODERS[kind])
    return req
