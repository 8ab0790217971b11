"""The client wire codec: KV requests and responses as plain msgpack-able maps.

Every map uses etcd's ``etcdserverpb`` field names (``key``, ``range_end``, ``prev_kv``,
``request_put``, ``ID``, ``TTL``, ``grantedTTL`` ...). Encoding always writes every field, so
the maps are canonical; decoding is strict: an unknown field, a missing required field or a
value of the wrong type raises :class:`WireError` naming the field's path (``body.compare[0].
target``), so a bad client is told exactly what is wrong and nothing half-decoded reaches the
state machine.

See ``docs/client-protocol.md`` for the frames that carry these maps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import attrs

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
    Request,
    RequestOp,
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
    Response,
    ResponseOp,
    TxnResponse,
)
from raftkube_spec.kv.types import Event, EventType, KeyValue, ResponseHeader

Map = dict[str, Any]
T = TypeVar("T")

MAX_REQUEST_BYTES: Final = 1536 * 1024
"""Requests larger than this (1.5 MiB, etcd's default) are refused."""
REQUEST_TOO_LARGE: Final = "etcdserver: request is too large"

OPS: Final = (
    "range",
    "put",
    "delete_range",
    "txn",
    "compaction",
    "lease_grant",
    "lease_revoke",
    "lease_keepalive",
    "lease_ttl",
    "watch",
    "watch_cancel",
    "status",
    "member_list",
    "session_register",
    "member_add",
    "member_promote",
    "member_remove",
)
"""Every op a request frame may name."""

_OP_SET: Final = frozenset(OPS)

KV_OPS: Final = OPS[:9]
"""The ops whose bodies are KV requests (see :func:`encode_request`)."""


class WireError(ValueError):
    """A map that is not a valid encoding; ``field`` is the path of the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@attrs.frozen
class WireHeader:
    """etcd's full response header; the KV types carry only ``revision``."""

    cluster_id: str = ""
    member_id: int = 0
    revision: int = 0
    raft_term: int = 0


# --- strict field readers --------------------------------------------------------------------


def _type_name(value: object) -> str:
    return type(value).__name__


class _Reader:
    """Reads the fields of one map, remembering which were consumed so leftovers are refused.

    Every request and answer passes through here, so the common case is kept cheap: a plain
    ``dict`` skips the abstract ``Mapping`` check, and :meth:`done` only computes the leftover
    field names when the count of fields read says there are some."""

    __slots__ = ("raw", "seen", "where")

    def __init__(self, raw: object, where: str) -> None:
        if type(raw) is not dict and not isinstance(raw, Mapping):
            raise WireError(where, f"expected a map, got {_type_name(raw)}")
        for k in raw:
            if type(k) is not str and not isinstance(k, str):
                raise WireError(where, f"map key {k!r} is not a string")
        self.raw: Mapping[str, Any] = raw
        self.where = where
        self.seen: set[str] = set()
        """The fields of ``raw`` that were read (absent ones are not recorded)."""

    def path(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def _get(self, name: str, required: bool) -> tuple[bool, Any]:
        if name in self.raw:
            self.seen.add(name)
            return True, self.raw[name]
        if required:
            raise WireError(self.path(name), "required field is missing")
        return False, None

    def i(self, name: str, default: int | None = 0, *, minimum: int | None = None) -> int:
        present, v = self._get(name, default is None)
        if not present:
            assert default is not None
            return default
        if type(v) is not int:
            raise WireError(self.path(name), f"expected an integer, got {_type_name(v)}")
        if minimum is not None and v < minimum:
            raise WireError(self.path(name), f"must be >= {minimum}, got {v}")
        return v

    def b(self, name: str, default: bool = False) -> bool:
        present, v = self._get(name, False)
        if not present:
            return default
        if type(v) is not bool:
            raise WireError(self.path(name), f"expected a boolean, got {_type_name(v)}")
        return v

    def by(self, name: str, default: bytes | None = b"") -> bytes:
        present, v = self._get(name, default is None)
        if not present:
            assert default is not None
            return default
        if type(v) is not bytes:
            raise WireError(self.path(name), f"expected bytes, got {_type_name(v)}")
        return v

    def s(self, name: str, default: str | None = "") -> str:
        present, v = self._get(name, default is None)
        if not present:
            assert default is not None
            return default
        if type(v) is not str:
            raise WireError(self.path(name), f"expected a string, got {_type_name(v)}")
        return v

    def items(self, name: str) -> list[tuple[str, Any]]:
        """The items of an optional list field, each with its path."""
        present, v = self._get(name, False)
        if not present:
            return []
        if not isinstance(v, list | tuple):
            raise WireError(self.path(name), f"expected a list, got {_type_name(v)}")
        return [(f"{self.path(name)}[{i}]", item) for i, item in enumerate(v)]

    def sub(self, name: str, *, required: bool = True) -> _Reader | None:
        present, v = self._get(name, required)
        if not present or (v is None and not required):
            return None
        return _Reader(v, self.path(name))

    def choice(self, name: str, kind: type[T], default: T | None = None) -> T:
        text = self.s(name, None if default is None else "")
        if not text and default is not None:
            return default
        try:
            return kind[text]  # type: ignore[index, no-any-return]
        except KeyError:
            raise WireError(self.path(name), f"unknown value {text!r}") from None

    def done(self) -> None:
        if len(self.seen) == len(self.raw):
            return
        extra = sorted(set(self.raw) - self.seen)
        if extra:
            raise WireError(self.path(extra[0]), "unknown field")


def _decode(raw: object, where: str, build: Callable[[_Reader], T]) -> T:
    r = _Reader(raw, where)
    value = build(r)
    r.done()
    return value


# --- shared records --------------------------------------------------------------------------


def encode_kv(kv: KeyValue) -> Map:
    return {
        "key": kv.key,
        "create_revision": kv.create_revision,
        "mod_revision": kv.mod_revision,
        "version": kv.version,
        "value": kv.value,
        "lease": kv.lease,
    }


_KV_FIELDS: Final = frozenset(
    ("key", "create_revision", "mod_revision", "version", "value", "lease")
)


def _fast_kv(raw: object) -> KeyValue | None:
    """A well-formed encoded KeyValue decoded without the field-by-field reader, or None.

    A range answer carries one per key (a million, for a large prefix), so the reader, which
    is there to name what is wrong, runs only when this says something is."""
    if type(raw) is KeyValue:
        # Decoded already: the client decodes a split range answer's parts as they arrive.
        return raw
    if type(raw) is dict and raw.keys() == _KV_FIELDS:
        key, value = raw["key"], raw["value"]
        create, mod, version, lease = (
            raw["create_revision"],
            raw["mod_revision"],
            raw["version"],
            raw["lease"],
        )
        if (
            type(key) is bytes
            and type(value) is bytes
            and type(create) is int
            and type(mod) is int
            and type(version) is int
            and type(lease) is int
            and create >= 0
            and mod >= 0
            and version >= 0
        ):
            return KeyValue(key, create, mod, version, value, lease)
    return None


def decode_kv(raw: object, where: str = "kv") -> KeyValue:
    kv = _fast_kv(raw)
    if kv is not None:
        return kv
    return _decode(
        raw,
        where,
        lambda r: KeyValue(
            key=r.by("key", None),
            create_revision=r.i("create_revision", minimum=0),
            mod_revision=r.i("mod_revision", minimum=0),
            version=r.i("version", minimum=0),
            value=r.by("value"),
            lease=r.i("lease"),
        ),
    )


def _opt_kv(r: _Reader, name: str) -> KeyValue | None:
    present, v = r._get(name, False)
    if not present or v is None:
        return None
    return decode_kv(v, r.path(name))


def encode_event(event: Event) -> Map:
    return {
        "type": event.type.name,
        "kv": encode_kv(event.kv),
        "prev_kv": None if event.prev_kv is None else encode_kv(event.prev_kv),
    }


def decode_event(raw: object, where: str = "event") -> Event:
    def build(r: _Reader) -> Event:
        kind = r.choice("type", EventType)
        kv = r.sub("kv")
        assert kv is not None
        return Event(kind, decode_kv(kv.raw, kv.where), _opt_kv(r, "prev_kv"))

    return _decode(raw, where, build)


def encode_header(header: WireHeader) -> Map:
    return {
        "cluster_id": header.cluster_id,
        "member_id": header.member_id,
        "revision": header.revision,
        "raft_term": header.raft_term,
    }


_HEADER_FIELDS: Final = frozenset(("cluster_id", "member_id", "revision", "raft_term"))


def decode_header(raw: object, where: str = "header") -> WireHeader:
    if type(raw) is dict and raw.keys() == _HEADER_FIELDS:
        # Every answer carries one: the well-formed case skips the field-by-field reader,
        # which runs only to name what is wrong.
        cluster_id, member_id = raw["cluster_id"], raw["member_id"]
        revision, term = raw["revision"], raw["raft_term"]
        if (
            type(cluster_id) is str
            and type(member_id) is int
            and type(revision) is int
            and type(term) is int
            and term >= 0
        ):
            return WireHeader(cluster_id, member_id, revision, term)
    return _decode(
        raw,
        where,
        lambda r: WireHeader(
            cluster_id=r.s("cluster_id"),
            member_id=r.i("member_id"),
            revision=r.i("revision"),
            raft_term=r.i("raft_term", minimum=0),
        ),
    )


def encode_kv_error(err: KVError) -> Map:
    """``code`` is the :class:`ErrorCode` name, ``message`` etcd's text."""
    return {"code": err.code.name, "message": err.message, "revision": err.header.revision}


def decode_kv_error(raw: object, where: str = "error") -> KVError:
    def build(r: _Reader) -> KVError:
        code = r.choice("code", ErrorCode)
        message = r.s("message")
        if message and message != code.value:
            raise WireError(r.path("message"), f"does not match code {code.name}")
        return KVError(code, ResponseHeader(r.i("revision")))

    return _decode(raw, where, build)


def is_kv_error_code(code: str) -> bool:
    return code in ErrorCode.__members__


# --- requests --------------------------------------------------------------------------------

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


def _decode_compare(r: _Reader) -> Compare:
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
    r = _Reader(raw, where)
    if len(r.raw) != 1:
        raise WireError(where, f"expected exactly one of {sorted(_OP_FIELD.values())}")
    (name,) = r.raw
    for kind, field in _OP_FIELD.items():
        if field == name:
            op: RequestOp = _REQUEST_DECODERS[kind](_Reader(r.raw[name], r.path(name)))
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


def _d_range(r: _Reader) -> RangeRequest:
    return RangeRequest(
        key=r.by("key", None),
        range_end=r.by("range_end"),
        limit=r.i("limit", minimum=0),
        revision=r.i("revision"),
        keys_only=r.b("keys_only"),
        count_only=r.b("count_only"),
    )


def _d_put(r: _Reader) -> PutRequest:
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


def _d_delete(r: _Reader) -> DeleteRangeRequest:
    return DeleteRangeRequest(
        key=r.by("key", None), range_end=r.by("range_end"), prev_kv=r.b("prev_kv")
    )


def _d_txn(r: _Reader) -> TxnRequest:
    return TxnRequest(
        compare=tuple(_decode(raw, w, _decode_compare) for w, raw in r.items("compare")),
        success=tuple(_decode_request_op(raw, w) for w, raw in r.items("success")),
        failure=tuple(_decode_request_op(raw, w) for w, raw in r.items("failure")),
    )


_REQUEST_DECODERS: Final[dict[type, Callable[[_Reader], Any]]] = {
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
    req: Request = _decode(raw, where, _REQUEST_DECODERS[kind])
    return req


# --- responses -------------------------------------------------------------------------------

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
    r = _Reader(raw, where)
    if len(r.raw) != 1:
        raise WireError(where, f"expected exactly one of {sorted(_RESP_FIELD.values())}")
    (name,) = r.raw
    for kind, field in _RESP_FIELD.items():
        if field == name:
            inner = _Reader(r.raw[name], r.path(name))
            hdr = inner.sub("header")
            assert hdr is not None
            revision = _decode(hdr.raw, hdr.where, lambda h: h.i("revision"))
            op: ResponseOp = _RESPONSE_DECODERS[kind](inner, ResponseHeader(revision))
            inner.done()
            return op
    raise WireError(r.path(name), "unknown response op")


def decode_kvs(raw: object, where: str) -> list[KeyValue]:
    """A list of encoded KeyValues; the path of an item (``where[i]``) is only spelt out
    for one that is malformed, since a large answer has a million of them."""
    if not isinstance(raw, list | tuple):
        raise WireError(where, f"expected a list, got {_type_name(raw)}")
    out = []
    for i, item in enumerate(raw):
        kv = _fast_kv(item)
        out.append(kv if kv is not None else decode_kv(item, f"{where}[{i}]"))
    return out


def _d_range_resp(r: _Reader, h: ResponseHeader) -> RangeResponse:
    present, kvs = r._get("kvs", False)
    return RangeResponse(
        h,
        tuple(decode_kvs(kvs, r.path("kvs"))) if present else (),
        r.b("more"),
        r.i("count", minimum=0),
    )


def _d_txn_resp(r: _Reader, h: ResponseHeader) -> TxnResponse:
    return TxnResponse(
        h,
        r.b("succeeded"),
        tuple(_decode_response_op(raw, w) for w, raw in r.items("responses")),
    )


def _d_ttl_resp(r: _Reader, h: ResponseHeader) -> LeaseTimeToLiveResponse:
    keys = []
    for w, raw in r.items("keys"):
        if type(raw) is not bytes:
            raise WireError(w, f"expected bytes, got {_type_name(raw)}")
        keys.append(raw)
    return LeaseTimeToLiveResponse(
        h, r.i("ID", None), r.i("TTL", None), r.i("grantedTTL"), tuple(keys)
    )


_RESPONSE_DECODERS: Final[dict[type, Callable[[_Reader, ResponseHeader], Any]]] = {
    RangeResponse: _d_range_resp,
    PutResponse: lambda r, h: PutResponse(h, _opt_kv(r, "prev_kv")),
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
    resp: Response = _decode(
        raw, where, lambda r: _RESPONSE_DECODERS[kind](r, ResponseHeader(revision))
    )
    return resp


# --- frames ----------------------------------------------------------------------------------


@attrs.frozen
class RequestFrame:
    id: int
    op: str
    body: Map


def decode_request_frame(raw: object) -> RequestFrame:
    """Check the envelope ``{"id", "op", "body"}`` (not the body)."""
    if type(raw) is dict and len(raw) == 3:
        rid, op, body = raw.get("id"), raw.get("op"), raw.get("body")
        if (
            type(rid) is int
            and rid >= 0
            and type(op) is str
            and op in _OP_SET
            and type(body) is dict
            and all(type(k) is str for k in body)
        ):
            return RequestFrame(rid, op, body)  # A well-formed envelope, checked at once.

    def build(r: _Reader) -> RequestFrame:
        rid = r.i("id", None, minimum=0)
        op = r.s("op", None)
        if op not in OPS:
            raise WireError("op", f"unknown op {op!r}")
        body = r.sub("body")
        assert body is not None
        return RequestFrame(rid, op, dict(body.raw))

    return _decode(raw, "", build)


def ok_frame(rid: int, header: WireHeader, body: Map) -> Map:
    return {"id": rid, "ok": True, "header": encode_header(header), "body": body}


def error_frame(
    rid: int, code: str, message: str, *, leader: str | None = None, revision: int | None = None
) -> Map:
    err: Map = {"code": code, "message": message}
    if leader is not None:
        err["leader"] = leader
    if revision is not None:
        err["revision"] = revision
    return {"id": rid, "ok": False, "error": err}
