"""Compact, importable schemas of the served kinds, and the unknown-field check built on them.

A schema is JSON-schema-like data, the shape OpenAPI v3 uses: ``type``, ``properties``,
``items``, ``additionalProperties``, ``format``, ``x-kubernetes-int-or-string``,
``x-kubernetes-preserve-unknown-fields``, and on the lists strategic merge patch merges by
key, upstream's ``x-kubernetes-patch-merge-key`` and ``x-kubernetes-patch-strategy``. The
OpenAPI documents are written from these, and :func:`unknown_fields` walks an object against
one to implement ``fieldValidation=Strict|Warn``: every key an object schema does not list is
reported with the path upstream's strict decoder prints (``spec.containers[0].foo``).

An object schema without ``properties`` (a free-form map or ``x-kubernetes-preserve-unknown-
fields``) is not looked into. :func:`type_problems` finds values of the wrong JSON type, which
upstream's decoder refuses (``json: cannot unmarshal string into Go struct field ... of type
int32``) before anything else looks at the object.
"""

from __future__ import annotations

from typing import Any

import attrs

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INT32: Schema = {"type": "integer", "format": "int32"}
INT64: Schema = {"type": "integer", "format": "int64"}
NUMBER: Schema = {"type": "number", "format": "double"}
BOOLEAN: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time"}
MICRO_TIME: Schema = {"type": "string", "format": "date-time"}
BYTES: Schema = {"type": "string", "format": "byte"}
INT_OR_STRING: Schema = {"x-kubernetes-int-or-string": True}
QUANTITY: Schema = {"x-kubernetes-int-or-string": True, "format": "quantity"}
FREE_FORM: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
STRING_MAP: Schema = {"type": "object", "additionalProperties": STRING}
QUANTITY_MAP: Schema = {"type": "object", "additionalProperties": QUANTITY}


def obj(required: tuple[str, ...] = (), /, **properties: Schema) -> Schema:
    """An object with exactly these fields (trailing underscores are dropped from names so
    Python keywords can be field names)."""
    schema: Schema = {
        "type": "object",
        "properties": {name.rstrip("_"): value for name, value in properties.items()},
    }
    if required:
        schema["required"] = list(required)
    return schema


def map_of(values: Schema) -> Schema:
    return {"type": "object", "additionalProperties": values}


def arr(items: Schema, merge_key: str = "", strategy: str = "merge") -> Schema:
    """A list; with ``merge_key``, strategic merge patch merges its items by that key."""
    schema: Schema = {"type": "array", "items": items}
    if merge_key:
        schema["x-kubernetes-patch-merge-key"] = merge_key
        schema["x-kubernetes-patch-strategy"] = strategy
    elif strategy != "merge":
        schema["x-kubernetes-patch-strategy"] = strategy
    return schema


STRINGS: Schema = arr(STRING)

OWNER_REFERENCE = obj(
    ("apiVersion", "kind", "name", "uid"),
    apiVersion=STRING,
    kind=STRING,
    name=STRING,
    uid=STRING,
    controller=BOOLEAN,
    blockOwnerDeletion=BOOLEAN,
)

OBJECT_REFERENCE = obj(
    kind=STRING,
    namespace=STRING,
    name=STRING,
    uid=STRING,
    apiVersion=STRING,
    resourceVersion=STRING,
    fieldPath=STRING,
)
"""core/v1 ObjectReference: what an Event, an endpoint, a Binding or a ServiceAccount points at."""

MANAGED_FIELDS_ENTRY = obj(
    manager=STRING,
    operation=STRING,
    apiVersion=STRING,
    time=TIME,
    fieldsType=STRING,
    fieldsV1=FREE_FORM,
    subresource=STRING,
)

OBJECT_META = obj(
    name=STRING,
    generateName=STRING,
    namespace=STRING,
    selfLink=STRING,
    uid=STRING,
    resourceVersion=STRING,
    generation=INT64,
    creationTimestamp=TIME,
    deletionTimestamp=TIME,
    deletionGracePeriodSeconds=INT64,
    labels=STRING_MAP,
    annotations=STRING_MAP,
    ownerReferences=arr(OWNER_REFERENCE, "uid"),
    finalizers=arr(STRING, strategy="merge"),
    managedFields=arr(MANAGED_FIELDS_ENTRY),
)

LABEL_SELECTOR_REQUIREMENT = obj(("key", "operator"), key=STRING, operator=STRING, values=STRINGS)
LABEL_SELECTOR = obj(matchLabels=STRING_MAP, matchExpressions=arr(LABEL_SELECTOR_REQUIREMENT))


def conditions(*extra: str) -> Schema:
    """A kind's ``status.conditions``, merged by ``type``: every condition type has ``type``,
    ``status``, ``lastTransitionTime``, ``reason`` and ``message``; ``extra`` names the
    kind's other fields (``lastHeartbeatTime``, ``observedGeneration``, ...)."""
    kinds = {"observedGeneration": INT64}
    fields = {name: kinds.get(name, TIME) for name in extra}
    condition = obj(
        ("type", "status"),
        type=STRING,
        status=STRING,
        lastTransitionTime=TIME,
        reason=STRING,
        message=STRING,
        **fields,
    )
    return arr(condition, "type")


def kind_schema(**top: Schema) -> Schema:
    """A top-level kind: ``apiVersion``, ``kind``, ``metadata`` and the given fields."""
    return obj(apiVersion=STRING, kind=STRING, metadata=OBJECT_META, **top)


@attrs.frozen
class TypeProblem:
    """A value of the wrong JSON type: what upstream's decoder refuses before validation."""

    path: str
    got: str  # the JSON type found: string, number, bool, array, object
    expected: str  # the Go type the field has: string, int32, bool, map[string]string, ...

    def message(self) -> str:
        """Worded as Go's ``encoding/json`` (the struct name is left out)."""
        return (
            f"json: cannot unmarshal {self.got} into Go struct field {self.path} of type "
            f"{self.expected}"
        )


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _go_type(schema: Schema) -> str:
    if schema.get("x-kubernetes-int-or-string"):
        return "Quantity" if schema.get("format") == "quantity" else "IntOrString"
    kind = schema.get("type")
    if kind == "integer":
        return str(schema.get("format", "int64"))
    if kind == "number":
        return "float64"
    if kind == "boolean":
        return "bool"
    if kind == "array":
        return "[]" + _go_type(schema.get("items") or {})
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and "properties" not in schema:
            return "map[string]" + _go_type(extra)
        return "struct"
    return "string"


def _type_fits(schema: Schema, value: Any) -> bool:
    if value is None:  # null decodes to the zero value, as in Go
        return True
    if schema.get("x-kubernetes-int-or-string"):
        numbers_too = schema.get("format") == "quantity"
        if isinstance(value, bool):
            return False
        return isinstance(value, str | int) or (numbers_too and isinstance(value, float))
    kind = schema.get("type")
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return True


def type_problems(schema: Schema, value: Any, path: str = "") -> list[TypeProblem]:
    """Values whose JSON type the schema's field cannot hold (``"replicas": "3"``), outermost
    first; a wrong container is reported once, not each of its items."""
    found: list[TypeProblem] = []
    _check_types(schema, value, path, found)
    return found


def _check_types(schema: Schema, value: Any, path: str, found: list[TypeProblem]) -> None:
    if not _type_fits(schema, value):
        found.append(TypeProblem(path, _json_type(value), _go_type(schema)))
        return
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            sub = properties.get(name) if properties is not None else extra
            if isinstance(sub, dict):
                _check_item(sub, item, path, name, found)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _check_item(items, item, path, i, found)


def _check_item(
    schema: Schema, item: Any, path: str, key: str | int, found: list[TypeProblem]
) -> None:
    """One field or element: a scalar (most of an object) is checked here, and its path is
    only spelled out if it is reported; a container is walked."""
    if isinstance(item, dict | list):
        _check_types(schema, item, _item_path(path, key), found)
    elif not _type_fits(schema, item):
        found.append(TypeProblem(_item_path(path, key), _json_type(item), _go_type(schema)))


def _item_path(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else _join(path, key)


def unknown_fields(schema: Schema, value: Any, path: str = "") -> list[str]:
    """Paths in ``value`` that ``schema`` does not define, in document order."""
    found: list[str] = []
    _walk(schema, value, path, found)
    return found


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _walk(schema: Schema, value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, dict):
        properties = schema.get("properties")
        if properties is not None:
            for name, item in value.items():
                sub = properties.get(name)
                if sub is None:
                    found.append(_join(path, name))
                else:
                    _walk(sub, item, _join(path, name), found)
            return
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                _walk(extra, item, _join(path, name), found)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _walk(items, item, f"{path}[{i}]", found)
