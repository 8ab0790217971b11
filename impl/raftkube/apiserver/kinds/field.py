"""Field errors worded exactly as ``k8s.io/apimachinery/pkg/util/validation/field``.

Each helper returns an :class:`~raftkube.apiserver.errors.Cause` whose ``message`` is
upstream's ``ErrorBody()``: the error type's text (``Required value``, ``Invalid value``,
``Unsupported value``, ...), the bad value printed as Go prints it (strings quoted, numbers
and booleans bare, ``null`` for nothing), then ``: detail``. ``errors.invalid`` prefixes
each with its field, so kubectl shows ``spec.containers[0].image: Required value`` as it
would against a real API server.

Paths are built with :func:`child`, :func:`index` and :func:`key`, which print as upstream's
``field.Path`` does: ``spec.containers[0].resources.limits[cpu]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..errors import Cause

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
FORBIDDEN = "FieldValueForbidden"
DUPLICATE = "FieldValueDuplicate"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
NOT_FOUND = "FieldValueNotFound"

IMMUTABLE = "field is immutable"
NEGATIVE = "must be greater than or equal to 0"


def child(path: str, *names: str) -> str:
    for name in names:
        path = f"{path}.{name}" if path else name
    return path


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


class Raw(str):
    """A bad value upstream prints through a ``String()`` method, hence unquoted (an
    ``IntOrString`` such as ``110%``, a label selector)."""


def show(value: Any) -> str:
    """A bad value as upstream's ``ErrorBody`` prints it (``%q`` for strings)."""
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(json.dumps(v, ensure_ascii=False) for v in value) + "}"
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return go_string_map(value)
    # Go prints structs with %#v; a compact JSON rendering carries the same information.
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def go_string_map(value: dict[str, str]) -> str:
    """``map[string]string{"app":"web"}``: Go's ``%#v`` of a label map (keys sorted)."""
    items = ", ".join(f"{json.dumps(k)}:{json.dumps(value[k])}" for k in sorted(value))
    return "map[string]string{" + items + "}"


def _body(kind: str, detail: str) -> str:
    return f"{kind}: {detail}" if detail else kind


def required(path: str, detail: str = "") -> Cause:
    return Cause(path, REQUIRED, _body("Required value", detail))


def invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(path, INVALID, _body(f"Invalid value: {show(value)}", detail))


def not_supported(path: str, value: Any, supported: Iterable[str]) -> Cause:
    quoted = ", ".join(json.dumps(v) for v in supported)
    detail = f"supported values: {quoted}" if quoted else ""
    return Cause(path, NOT_SUPPORTED, _body(f"Unsupported value: {show(value)}", detail))


def forbidden(path: str, detail: str) -> Cause:
    return Cause(path, FORBIDDEN, _body("Forbidden", detail))


def duplicate(path: str, value: Any, detail: str = "") -> Cause:
    return Cause(path, DUPLICATE, _body(f"Duplicate value: {show(value)}", detail))


def not_found(path: str, value: Any) -> Cause:
    return Cause(path, NOT_FOUND, f"Not found: {show(value)}")


def too_long(path: str, max_bytes: int) -> Cause:
    return Cause(path, TOO_LONG, f"Too long: must have at most {max_bytes} bytes")


def too_many(path: str, actual: int, maximum: int) -> Cause:
    return Cause(path, TOO_MANY, f"Too many: {actual}: must have at most {maximum} items")


def immutable(path: str, value: Any) -> Cause:
    return invalid(path, value, IMMUTABLE)


def each(path: str, value: Any, messages: Iterable[str]) -> list[Cause]:
    """One ``Invalid value`` per message of a name check, as upstream's loops report them."""
    return [invalid(path, value, m) for m in messages]


def nonnegative(path: str, value: Any) -> list[Cause]:
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [invalid(path, value, NEGATIVE)]
    return []
