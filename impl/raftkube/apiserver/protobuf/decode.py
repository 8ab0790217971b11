"""Kubernetes protobuf request bodies as the JSON objects the handlers take.

A body is the 4-byte magic ``k8s\\x00`` and a ``runtime.Unknown``: ``typeMeta`` (1:
apiVersion=1, kind=2), ``raw`` (2: the object's own message), ``contentEncoding`` (3) and
``contentType`` (4). The object's kind picks its message in the table, and the result is the
dict Go's JSON encoding of the same object gives: ``kind`` and ``apiVersion`` first, the
fields in Go's order, ``omitempty`` zero values left out (kept where the Go field is a pointer
or has no ``omitempty``, see :mod:`raftkube.apiserver.protobuf.schema`), maps as objects,
``bytes`` as base64, ``Time`` as RFC 3339 seconds, ``MicroTime`` with microseconds,
``IntOrString`` as an int or a string, ``Quantity`` as its string and empty times dropped
(Go writes ``null``).

As upstream's decoder, an empty ``typeMeta`` falls back to the kind the endpoint expects.
A field number the table does not have is refused with 415, naming the message and the
number, so a gap in the table shows instead of silently losing data; a body that is not
well-formed protobuf is 400. Where a singular message field appears twice on the wire, the
last one is kept (protobuf would merge them; Go encoders never write a field twice).
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Callable, Mapping
from typing import Any

from raftkube.apiserver import errors
from raftkube.apiserver.objects import rfc3339
from raftkube.apiserver.protobuf import tables_core, tables_groups, tables_meta, tables_pod
from raftkube.apiserver.protobuf.schema import Field, Message, merge_tables
from raftkube.apiserver.protobuf.wire import (
    FIXED64,
    LENGTH_DELIMITED,
    VARINT,
    RawField,
    WireError,
    as_double,
    fields,
    packed_varints,
    signed,
)

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

MESSAGES: Mapping[str, Message] = merge_tables(
    (tables_meta.TABLE, tables_core.TABLE, tables_pod.TABLE, tables_groups.TABLE)
)

_GROUP_KINDS: dict[str, tuple[str, ...]] = {
    "v1": (
        "Namespace",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Pod",
        "Binding",
        "Service",
        "Endpoints",
        "Event",
        "Node",
        "ReplicationController",
    ),
    "apps/v1": ("Deployment", "ReplicaSet"),
    "rbac.authorization.k8s.io/v1": ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"),
    "authorization.k8s.io/v1": (
        "SelfSubjectAccessReview",
        "SubjectAccessReview",
        "LocalSubjectAccessReview",
        "SelfSubjectRulesReview",
    ),
    "authentication.k8s.io/v1": ("SelfSubjectReview", "TokenReview", "TokenRequest"),
    "coordination.k8s.io/v1": ("Lease",),
    "autoscaling/v1": ("Scale",),
    "policy/v1": ("Eviction",),
}

KINDS: Mapping[str, str] = {
    kind: api_version for api_version, kinds in _GROUP_KINDS.items() for kind in kinds
}
"""Each kind the decoder reads, with its apiVersion (every kind is its message's name)."""

OPTIONS_KINDS = frozenset({"DeleteOptions"})
"""Kinds every group version registers (client-go sends them under the client's version)."""


def _time(value: dict[str, Any]) -> str | None:
    # An unset Time is an empty message; Go reads only the seconds (nanos are dropped).
    if "seconds" not in value:
        return None
    return rfc3339(value["seconds"])


def _micro_time(value: dict[str, Any]) -> str | None:
    if "seconds" not in value:
        return None
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    micros = value.get("nanos", 0) // 1000
    when = epoch + datetime.timedelta(seconds=value["seconds"], microseconds=micros)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _int_or_string(value: dict[str, Any]) -> int | str:
    return str(value.get("strVal", "")) if value.get("type") == 1 else int(value.get("intVal", 0))


def _fields_v1(value: dict[str, Any]) -> Any:
    raw = base64.b64decode(value.get("Raw", ""))
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        raise errors.bad_request("the protobuf body is malformed: FieldsV1 is not JSON") from None


_CONVERTERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "Time": _time,
    "MicroTime": _micro_time,
    "IntOrString": _int_or_string,
    "Quantity": lambda value: value.get("string", "0"),
    "FieldsV1": _fields_v1,
    "ExtraValue": lambda value: value.get("items", []),
}
"""Messages whose JSON form is not an object of their fields."""


def decode_protobuf(body: bytes, kind_hint: str = "") -> dict[str, Any]:
    """The JSON object a Kubernetes protobuf body carries; ``kind_hint`` is the kind the
    endpoint expects, used when the body's ``typeMeta`` leaves it out."""
    if not body:
        raise errors.bad_request("empty data")
    if not body.startswith(MAGIC):
        raise errors.bad_request(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
        )
    if len(body) == len(MAGIC):
        raise errors.bad_request("empty body")
    try:
        api_version, kind, raw, encoding, content_type = _envelope(body[len(MAGIC) :])
    except WireError as exc:
        raise _malformed(str(exc)) from None
    if encoding or content_type not in ("", MEDIA_TYPE):
        raise errors.unsupported_media_type(f"{content_type or MEDIA_TYPE} {encoding}".strip())
    kind = kind or kind_hint
    if not kind:
        raise errors.bad_request("Object 'Kind' is missing in the protobuf body's typeMeta")
    if kind in OPTIONS_KINDS:
        api_version = api_version or "v1"
    else:
        expected = KINDS.get(kind)
        api_version = api_version or expected or ""
        if expected != api_version:
            raise errors.APIError(
                415,
                "UnsupportedMediaType",
                f"the server cannot read {kind} ({api_version or 'no apiVersion'}) "
                "from protobuf; send it as application/json",
            )
    try:
        obj = _message(MESSAGES[kind], raw)
    except WireError as exc:
        raise _malformed(f"{kind}: {exc}") from None
    return {"kind": kind, "apiVersion": api_version, **obj}


def _envelope(data: bytes) -> tuple[str, str, bytes, str, str]:
    """``runtime.Unknown``'s apiVersion, kind, raw, contentEncoding and contentType."""
    api_version = kind = encoding = content_type = ""
    raw = b""
    for field in fields(data):
        value = _bytes_of(field)
        if field.number == 1:
            for meta in fields(value):
                if meta.number == 1:
                    api_version = _bytes_of(meta).decode("utf-8", "replace")
                elif meta.number == 2:
                    kind = _bytes_of(meta).decode("utf-8", "replace")
        elif field.number == 2:
            raw = value
        elif field.number == 3:
            encoding = value.decode("utf-8", "replace")
        elif field.number == 4:
            content_type = value.decode("utf-8", "replace")
    return api_version, kind, raw, encoding, content_type


def _bytes_of(field: RawField) -> bytes:
    if field.wire_type != LENGTH_DELIMITED or not isinstance(field.value, bytes):
        raise WireError(f"field {field.number}: wire type {field.wire_type}, expected 2")
    return field.value


def _malformed(detail: str) -> errors.APIError:
    return errors.bad_request(f"the protobuf body is malformed: {detail}")


def _message(message: Message, data: bytes) -> dict[str, Any]:
    """The fields of one message as a JSON object, in Go's field order."""
    found: dict[int, Any] = {}
    for raw in fields(data):
        field = message.by_number.get(raw.number)
        if field is None:
            raise errors.APIError(
                415,
                "UnsupportedMediaType",
                f"the server cannot read field {raw.number} of the protobuf message "
                f"{message.name}; send the object as application/json",
            )
        if field.is_map:
            entries = found.setdefault(raw.number, {})
            key, value = _map_entry(field, _bytes_of(raw))
            entries[key] = value
        elif field.repeated:
            found.setdefault(raw.number, []).extend(_values(field, raw))
        else:
            found[raw.number] = _values(field, raw)[-1]
    out: dict[str, Any] = {}
    for field in message.fields:
        if field.number not in found:
            continue
        value = found[field.number]
        if not field.json_name:
            out.update(value)
        elif value is None or (_is_zero(value) and not field.keep_zero and not field.is_message):
            continue
        else:
            out[field.json_name] = value
    return out


def _is_zero(value: Any) -> bool:
    return value == "" or value is False or (value == 0 and not isinstance(value, bool))


def _values(field: Field, raw: RawField) -> list[Any]:
    """The value(s) one wire field carries: one, or several for a packed repeated scalar."""
    if field.is_message:
        return [_converted(field.type, _message(MESSAGES[field.type], _bytes_of(raw)))]
    if field.type in ("string", "bytes"):
        data = _bytes_of(raw)
        return [_scalar_bytes(field.type, data)]
    if raw.wire_type == LENGTH_DELIMITED and field.repeated and field.type != "double":
        return [_varint_value(field.type, v) for v in packed_varints(_bytes_of(raw))]
    if field.type == "double":
        if raw.wire_type != FIXED64 or not isinstance(raw.value, int):
            raise WireError(f"field {raw.number}: wire type {raw.wire_type}, expected 1")
        return [as_double(raw.value)]
    if raw.wire_type != VARINT or not isinstance(raw.value, int):
        raise WireError(f"field {raw.number}: wire type {raw.wire_type}, expected 0")
    return [_varint_value(field.type, raw.value)]


def _scalar_bytes(typ: str, data: bytes) -> str:
    if typ == "bytes":
        return base64.b64encode(data).decode("ascii")
    return data.decode("utf-8", "replace")


def _varint_value(typ: str, value: int) -> int | bool:
    if typ == "bool":
        return value != 0
    return signed(value, 32 if typ == "int32" else 64)


def _converted(type_name: str, value: dict[str, Any]) -> Any:
    convert = _CONVERTERS.get(type_name)
    return convert(value) if convert else value


def _map_entry(field: Field, data: bytes) -> tuple[str, Any]:
    """One ``map<string, T>`` entry: key 1, value 2 (an absent value is the zero value)."""
    key = ""
    value: Any = None
    for raw in fields(data):
        if raw.number == 1:
            key = _bytes_of(raw).decode("utf-8", "replace")
        elif raw.number == 2:
            value = _values(field, raw)[-1]
    if value is None:
        if field.is_message:
            value = _converted(field.type, {})
        elif field.type in ("string", "bytes"):
            value = ""
        else:
            value = False if field.type == "bool" else 0
    return key, value
