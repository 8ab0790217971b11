"""The records answers and events share: key-values, events, the response header, KV errors.

Each has an encoder writing every field (so the maps are canonical) and a strict decoder. A
key-value and a header are decoded on a fast path first, without the field reader, when the
map is exactly what the encoder writes: a range answer carries one key-value per key (a
million, for a large prefix) and every answer a header, so the reader runs only to name
what is wrong.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from raftkube.api.wire.reader import FieldReader, WireError, decode_with, type_name
from raftkube_spec.kv.errors import ErrorCode, KVError
from raftkube_spec.kv.types import Event, EventType, KeyValue, ResponseHeader

Map = dict[str, Any]


@attrs.frozen
class WireHeader:
    """etcd's full response header; the KV types carry only ``revision``."""

    cluster_id: str = ""
    member_id: int = 0
    revision: int = 0
    raft_term: int = 0


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
    return decode_with(
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


def optional_kv(r: FieldReader, name: str) -> KeyValue | None:
    present, v = r.lookup(name, False)
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
    def build(r: FieldReader) -> Event:
        kind = r.choice("type", EventType)
        kv = r.sub("kv")
        assert kv is not None
        return Event(kind, decode_kv(kv.raw, kv.where), optional_kv(r, "prev_kv"))

    return decode_with(raw, where, build)


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
    return decode_with(
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
    def build(r: FieldReader) -> KVError:
        code = r.choice("code", ErrorCode)
        message = r.s("message")
        if message and message != code.value:
            raise WireError(r.path("message"), f"does not match code {code.name}")
        return KVError(code, ResponseHeader(r.i("revision")))

    return decode_with(raw, where, build)


def is_kv_error_code(code: str) -> bool:
    return code in ErrorCode.__members__


def decode_kvs(raw: object, where: str) -> list[KeyValue]:
    """A list of encoded KeyValues; the path of an item (``where[i]``) is only spelt out
    for one that is malformed, since a large answer has a million of them."""
    if not isinstance(raw, list | tuple):
        raise WireError(where, f"expected a list, got {type_name(raw)}")
    out = []
    for i, item in enumerate(raw):
        kv = _fast_kv(item)
        out.append(kv if kv is not None else decode_kv(item, f"{where}[{i}]"))
    return out
