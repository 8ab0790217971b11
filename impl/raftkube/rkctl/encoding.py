"""etcd's values as etcdctl prints them: bytes as text or ``--hex``, Go's ``%q`` quoting and
``time.Duration`` strings, and the JSON view of etcd's protobuf messages (base64 bytes, zero
fields omitted as Go's ``omitempty`` does, ``Response`` oneof wrappers). The printers in
:mod:`raftkube.rkctl.output` are built on these.
"""

from __future__ import annotations

import base64
from typing import Any

from raftkube.api.wire import WireHeader
from raftkube.rkctl.rows import HealthRow, MemberRow, StatusRow
from raftkube_spec.kv.responses import (
    DeleteRangeResponse,
    PutResponse,
    RangeResponse,
    ResponseOp,
    TxnResponse,
)
from raftkube_spec.kv.types import KeyValue


def text(data: bytes) -> str:
    """Bytes as a str that round-trips: invalid UTF-8 becomes surrogates, which ``main``
    writes back as the original bytes, so binary values survive ``rkctl get > file``."""
    return data.decode("utf-8", "surrogateescape")


def hex_text(data: bytes) -> str:
    """etcdctl's ``--hex`` rendering: every byte as ``\\xNN``."""
    return "".join(f"\\x{b:02x}" for b in data)


def go_quote(s: str) -> str:
    """Go's ``%q`` of ``s``: the quoting etcdctl's ``fields`` output uses for keys and values."""
    out = ['"']
    named = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    named |= {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\v": "\\v"}
    for ch in s:
        code = ord(ch)
        if ch in named:
            out.append(named[ch])
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable():
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_duration(seconds: float) -> str:
    """A Go ``time.Duration`` string (``2.538ms``), the form etcdctl prints ``took`` in."""
    ns = round(seconds * 1e9)
    if ns < 1000:
        return f"{ns}ns"
    for unit, scale in (("µs", 1e3), ("ms", 1e6)):
        if ns < scale * 1000:
            return f"{ns / scale:.6f}".rstrip("0").rstrip(".") + unit
    return f"{ns / 1e9:.9f}".rstrip("0").rstrip(".") + "s"


def cluster_id_value(cluster_id: str) -> int | str:
    """etcd's cluster id is a uint64; raftkube's is a name, shown as a number when it is one."""
    try:
        return int(cluster_id)
    except ValueError:
        return cluster_id


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def omit_zero(d: dict[str, Any]) -> dict[str, Any]:
    """Drop zero values, as Go's ``omitempty`` does on etcd's protobuf JSON tags."""
    return {k: v for k, v in d.items() if v not in (0, "", False, None, [], {})}


def json_header(h: WireHeader | None, revision: int) -> dict[str, Any]:
    if h is None:
        return omit_zero({"revision": revision})
    # Always all four: etcd's ids are never zero so Go never omits them, but raftkube's
    # member ids start at 0 and scripts index these fields.
    return {
        "cluster_id": cluster_id_value(h.cluster_id),
        "member_id": h.member_id,
        "revision": h.revision,
        "raft_term": h.raft_term,
    }


def json_member(m: MemberRow) -> dict[str, Any]:
    # The ID always: etcd's is never zero, but raftkube's member ids start at 0.
    rest = omit_zero(
        {
            "name": m.name,
            "peerURLs": list(m.peer_urls),
            "clientURLs": list(m.client_urls),
            "isLearner": m.is_learner,
        }
    )
    return {"ID": m.id, **rest}


def cluster_hex(h: WireHeader) -> str:
    """The cluster id as etcdctl's ``%16x`` shows it; raftkube's is a name unless it is a
    number, and a name is shown as it is, right-aligned the same way."""
    value = cluster_id_value(h.cluster_id)
    return f"{value:16x}" if isinstance(value, int) else f"{value:>16}"


def json_kv(kv: KeyValue) -> dict[str, Any]:
    return omit_zero(
        {
            "key": b64(kv.key),
            "create_revision": kv.create_revision,
            "mod_revision": kv.mod_revision,
            "version": kv.version,
            "value": b64(kv.value),
            "lease": kv.lease,
        }
    )


def json_response(resp: ResponseOp, h: WireHeader | None) -> dict[str, Any]:
    """etcd's JSON of a KV response; nested Txn responses carry only a revision header."""
    out: dict[str, Any] = {"header": json_header(h, resp.header.revision)}
    match resp:
        case RangeResponse():
            out["kvs"] = [json_kv(kv) for kv in resp.kvs]
            out["more"] = resp.more
            out["count"] = resp.count
        case PutResponse():
            out["prev_kv"] = None if resp.prev_kv is None else json_kv(resp.prev_kv)
        case DeleteRangeResponse():
            out["deleted"] = resp.deleted
            out["prev_kvs"] = [json_kv(kv) for kv in resp.prev_kvs]
        case TxnResponse():
            out["succeeded"] = resp.succeeded
            out["responses"] = [
                {"Response": {_ONEOF[type(r)]: json_response(r, None)}} for r in resp.responses
            ]
    return omit_zero(out)


_ONEOF: dict[type, str] = {
    RangeResponse: "response_range",
    PutResponse: "response_put",
    DeleteRangeResponse: "response_delete_range",
    TxnResponse: "response_txn",
}


def json_status(s: StatusRow) -> dict[str, Any]:
    """One endpoint of ``endpoint status -w json``."""
    status = {
        "header": json_header(s.header, s.header.revision),
        "version": s.version,
        "leader": s.leader,
        "raftIndex": s.raft_index,
        "raftTerm": s.header.raft_term,
        "raftAppliedIndex": s.raft_applied_index,
        "errors": list(s.errors),
    }
    return {"Endpoint": s.endpoint, "Status": omit_zero(status)}


def json_health(c: HealthRow) -> dict[str, Any]:
    """One endpoint of ``endpoint health -w json`` (``health`` shown even when false)."""
    fields = {
        "endpoint": c.endpoint,
        "health": c.health,
        "took": go_duration(c.took),
        "error": c.error,
    }
    return omit_zero(fields) | {"health": c.health}
