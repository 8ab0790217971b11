"""The envelopes of the client protocol: which ops exist, a request frame, the two answers.

A request frame is ``{"id", "op", "body"}``; an answer is ``{"id", "ok": true, "header",
"body"}`` or ``{"id", "ok": false, "error": {"code", "message", ...}}``
(docs/client-protocol.md). Only the envelope is checked here; the body is the business of
the op's decoder (:mod:`.requests`, or the service's own for the ops that are not KV).
"""

from __future__ import annotations

from typing import Final

import attrs

from raftkube.api.wire.reader import FieldReader, WireError, decode_with
from raftkube.api.wire.records import Map, WireHeader, encode_header

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

    def build(r: FieldReader) -> RequestFrame:
        rid = r.i("id", None, minimum=0)
        op = r.s("op", None)
        if op not in OPS:
            raise WireError("op", f"unknown op {op!r}")
        body = r.sub("body")
        assert body is not None
        return RequestFrame(rid, op, dict(body.raw))

    return decode_with(raw, "", build)


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
