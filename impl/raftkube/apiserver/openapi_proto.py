"""The Swagger 2.0 document as protobuf: gnostic's ``openapi.v2.Document``, which is the only
form in which client-go reads ``/openapi/v2``.

kubectl fetches ``/openapi/v2`` with ``Accept: application/com.github.proto-openapi.spec.v2@
v1.0+protobuf`` and decodes the body as that message with no JSON fallback. It needs it for
client-side validation wherever the server's cannot be used (``--validate=strict`` on a
``kind: List`` file, the shape ``kubectl get -o yaml`` writes, and on kinds without a PATCH),
and for its older patch path. The encoder below writes exactly the fields the JSON document
holds, with the field numbers of gnostic-models' ``openapiv2/OpenAPIv2.proto``:
``Document``, ``Info``, ``Paths``/``PathItem``/``Operation``, body, query and path
``Parameter``\\ s, ``Responses``, ``Schema`` and the security sections. Vendor extensions
(``x-kubernetes-...``) and ``default``/``enum`` values travel as gnostic's ``Any`` with their
value in its ``yaml`` field (JSON text, which YAML reads), the form kube-openapi's proto
reader unmarshals. Keys without a field in gnostic's messages are dropped, as gnostic's own
compiler drops them.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from typing import Any

Encoder = Callable[[Mapping[str, Any]], bytes]


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1  # negative int64 as two's complement, as protobuf does
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _varint(len(payload)) + payload


def _string(number: int, value: Any) -> bytes:
    text = value if isinstance(value, str) else str(value)
    return _bytes_field(number, text.encode()) if text else b""


def _strings(number: int, values: Any) -> bytes:
    return b"".join(_bytes_field(number, str(v).encode()) for v in values or ())


def _bool(number: int, value: Any) -> bytes:
    return _key(number, 0) + b"\x01" if value is True else b""


def _int(number: int, value: Any) -> bytes:
    return _key(number, 0) + _varint(int(value)) if value else b""


def _double(number: int, value: Any) -> bytes:
    return _key(number, 1) + struct.pack("<d", float(value))


def _message(number: int, payload: bytes) -> bytes:
    """A sub-message field (present even when empty, as a set message field is)."""
    return _bytes_field(number, payload)


def _any(value: Any) -> bytes:
    """gnostic's ``Any`` carrying ``value`` as YAML text (field 2)."""
    return _string(2, json.dumps(value, separators=(",", ":")))


def _named_any(number: int, name: str, value: Any) -> bytes:
    return _message(number, _string(1, name) + _message(2, _any(value)))


def _extensions(number: int, node: Mapping[str, Any]) -> bytes:
    return b"".join(_named_any(number, k, v) for k, v in node.items() if k.startswith("x-"))


# Schema: field numbers of each scalar keyword.
_SCHEMA_STRINGS = {
    "$ref": 1,
    "format": 2,
    "title": 3,
    "description": 4,
    "pattern": 13,
    "discriminator": 26,
}
_SCHEMA_DOUBLES = {"multipleOf": 6, "maximum": 7, "minimum": 9}
_SCHEMA_BOOLS = {"exclusiveMaximum": 8, "exclusiveMinimum": 10, "uniqueItems": 16, "readOnly": 27}
_SCHEMA_INTS = {
    "maxLength": 11,
    "minLength": 12,
    "maxItems": 14,
    "minItems": 15,
    "maxProperties": 17,
    "minProperties": 18,
}


def schema(node: Mapping[str, Any]) -> bytes:
    """``openapi.v2.Schema``."""
    out = bytearray()
    for key, number in _SCHEMA_STRINGS.items():
        if key in node:
            out += _string(number, node[key])
    if "default" in node:
        out += _message(5, _any(node["default"]))
    for key, number in _SCHEMA_DOUBLES.items():
        if key in node:
            out += _double(number, node[key])
    for key, number in _SCHEMA_BOOLS.items():
        out += _bool(number, node.get(key))
    for key, number in _SCHEMA_INTS.items():
        out += _int(number, node.get(key))
    out += _strings(19, node.get("required"))
    for value in node.get("enum", ()):
        out += _message(20, _any(value))
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        out += _message(21, _message(1, schema(extra)))
    elif isinstance(extra, bool):
        out += _message(21, _key(2, 0) + (b"\x01" if extra else b"\x00"))
    kind = node.get("type")
    if kind is not None:
        out += _message(22, _strings(1, [kind] if isinstance(kind, str) else kind))
    items = node.get("items")
    if items is not None:
        listed = items if isinstance(items, list) else [items]
        out += _message(23, b"".join(_message(1, schema(i)) for i in listed))
    for part in node.get("allOf", ()):
        out += _message(24, schema(part))
    props = node.get("properties")
    if isinstance(props, Mapping):
        named = b"".join(
            _message(1, _string(1, k) + _message(2, schema(v))) for k, v in props.items()
        )
        out += _message(25, named)
    if "example" in node:
        out += _message(30, _any(node["example"]))
    out += _extensions(31, node)
    return bytes(out)


def _parameter(node: Mapping[str, Any]) -> bytes:
    """``ParametersItem`` holding a body, query or path ``Parameter``."""
    where = node.get("in")
    if where == "body":
        body = (
            _string(1, node.get("description", ""))
            + _string(2, node["name"])
            + _string(3, where)
            + _bool(4, node.get("required"))
            + _message(5, schema(node.get("schema", {})))
        )
        return _message(1, _message(1, body))
    common = (
        _bool(1, node.get("required")) + _string(2, where) + _string(3, node.get("description", ""))
    )
    common += _string(4, node["name"])
    if where == "query":
        sub = common + _string(6, node.get("type", "")) + _string(7, node.get("format", ""))
        sub += _bool(20, node.get("uniqueItems")) + _extensions(23, node)
        choice = 3
    elif where == "path":
        sub = common + _string(5, node.get("type", "")) + _string(6, node.get("format", ""))
        sub += _bool(19, node.get("uniqueItems")) + _extensions(22, node)
        choice = 4
    else:
        raise ValueError(f"parameter in {where!r} has no encoding here")
    return _message(1, _message(2, _message(choice, sub)))


def _responses(node: Mapping[str, Any]) -> bytes:
    out = bytearray()
    for code, response in node.items():
        body = _string(1, response.get("description", ""))
        if "schema" in response:
            body += _message(2, _message(1, schema(response["schema"])))
        out += _message(1, _string(1, code) + _message(2, _message(1, body)))
    return bytes(out)


def operation(node: Mapping[str, Any]) -> bytes:
    """``openapi.v2.Operation``."""
    out = _strings(1, node.get("tags")) + _string(2, node.get("summary", ""))
    out += _string(3, node.get("description", "")) + _string(5, node.get("operationId", ""))
    out += _strings(6, node.get("produces")) + _strings(7, node.get("consumes"))
    out += b"".join(_message(8, _parameter(p)) for p in node.get("parameters", ()))
    out += _message(9, _responses(node.get("responses", {})))
    out += _strings(10, node.get("schemes")) + _bool(11, node.get("deprecated"))
    return out + _extensions(13, node)


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def path_item(node: Mapping[str, Any]) -> bytes:
    out = bytearray()
    for method, number in _METHODS.items():
        if method in node:
            out += _message(number, operation(node[method]))
    out += b"".join(_message(9, _parameter(p)) for p in node.get("parameters", ()))
    return bytes(out) + _extensions(10, node)


def _security(requirements: Any) -> bytes:
    out = bytearray()
    for requirement in requirements or ():
        named = b"".join(
            _message(1, _string(1, name) + _message(2, _strings(1, scopes)))
            for name, scopes in requirement.items()
        )
        out += _message(12, named)
    return bytes(out)


def _security_definitions(node: Mapping[str, Any]) -> bytes:
    out = bytearray()
    for name, item in node.items():
        if item.get("type") != "apiKey":
            raise ValueError(f"security definition {name!r}: only apiKey has an encoding here")
        api_key = (
            _string(1, "apiKey")
            + _string(2, item.get("name", ""))
            + _string(3, item.get("in", ""))
            + _string(4, item.get("description", ""))
            + _extensions(5, item)
        )
        out += _message(1, _string(1, name) + _message(2, _message(2, api_key)))
    return bytes(out)


def document(doc: Mapping[str, Any]) -> bytes:
    """``openapi.v2.Document`` of a Swagger 2.0 JSON document."""
    info = doc.get("info", {})
    out = _string(1, doc.get("swagger", "2.0"))
    out += _message(2, _string(1, info.get("title", "")) + _string(2, info.get("version", "")))
    out += _strings(5, doc.get("schemes")) + _strings(6, doc.get("consumes"))
    out += _strings(7, doc.get("produces"))
    paths = b"".join(
        _message(2, _string(1, p) + _message(2, path_item(item)))
        for p, item in doc.get("paths", {}).items()
    )
    out += _message(8, paths)
    definitions = b"".join(
        _message(1, _string(1, name) + _message(2, schema(s)))
        for name, s in doc.get("definitions", {}).items()
    )
    out += _message(9, definitions)
    out += _security(doc.get("security"))
    if "securityDefinitions" in doc:
        out += _message(13, _security_definitions(doc["securityDefinitions"]))
    return out + _extensions(16, doc)
