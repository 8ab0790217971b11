"""The vocabulary of server-side printing: columns, ages, label and selector strings.

Each function reproduces the upstream helper named in its docstring character for character,
because kubectl prints the cells the server computes verbatim: an age must read ``3m2s`` where
upstream's would, a selector ``app=web,tier in (a,b)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated."
)
AGE_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was created."
)

Object = Mapping[str, Any]


@attrs.frozen
class Column:
    """A ``TableColumnDefinition``. ``priority`` above 0 marks a column kubectl shows only with
    ``-o wide``; ``format: name`` marks the column holding the object's name."""

    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


NAME = Column("Name", format="name", description=NAME_DESCRIPTION)
AGE = Column("Age", description=AGE_DESCRIPTION)

Cells = list[Any]


@attrs.frozen
class Printer:
    """How one kind is printed: its columns and, for one object at time ``now``, the cells
    (one per column, in order) and the row conditions."""

    columns: tuple[Column, ...]
    cells: Callable[[Object, datetime], Cells]
    conditions: Callable[[Object], list[dict[str, str]]] = lambda _obj: []


_NS_PER_SECOND = 1_000_000_000
_NS_PER_MINUTE = 60 * _NS_PER_SECOND
_NS_PER_HOUR = 60 * _NS_PER_MINUTE


def _trunc_div(a: int, b: int) -> int:
    """Go's integer division (toward zero)."""
    q = abs(a) // b
    return q if a >= 0 else -q


def human_duration_ns(d: int) -> str:
    """``k8s.io/apimachinery/pkg/util/duration.HumanDuration`` of ``d`` nanoseconds: about
    two significant figures (``45s``, ``3m2s``, ``17m``, ``5h10m``, ``2d3h``, ``3y45d``)."""
    seconds = _trunc_div(d, _NS_PER_SECOND)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = d // _NS_PER_MINUTE
    if minutes < 10:
        s = (d // _NS_PER_SECOND) % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = d // _NS_PER_HOUR
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"


def human_duration(seconds: float) -> str:
    """:func:`human_duration_ns` of a duration in seconds."""
    return human_duration_ns(round(seconds * _NS_PER_SECOND))


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 ``Time`` or ``MicroTime`` (``2024-05-01T10:00:00Z``,
    ``2024-05-01T10:00:00.123456Z``), or None for a missing or unreadable one (which upstream
    would have refused to decode; printing treats it as the zero time)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def age(ts: datetime, now: datetime) -> str:
    """The human duration from ``ts`` to ``now`` (Go's ``time.Since``)."""
    delta = now - ts
    ns = (delta.days * 86_400 + delta.seconds) * _NS_PER_SECOND + delta.microseconds * 1000
    return human_duration_ns(ns)


def since(value: Any, now: datetime) -> str:
    """Upstream's ``translateTimestampSince``: the age of a timestamp, ``<unknown>`` for the
    zero (absent) time."""
    ts = parse_time(value)
    return "<unknown>" if ts is None else age(ts, now)


def creation_age(obj: Object, now: datetime) -> str:
    return since(meta(obj).get("creationTimestamp"), now)


def meta(obj: Object) -> Mapping[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, Mapping) else {}


def name_of(obj: Object) -> str:
    return as_str(meta(obj).get("name"))


def field(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, or None where any step is missing or not an object."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_int(value: Any) -> int:
    """An integer field, 0 when absent (Go's zero value)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def format_labels(labels: Any) -> str:
    """``labels.FormatLabels``: ``k=v`` pairs sorted by key, comma-joined; ``<none>`` if
    empty."""
    if not isinstance(labels, Mapping) or not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def _requirement(key: str, operator: str, values: Sequence[str]) -> str:
    if operator in ("In", "NotIn"):
        word = "in" if operator == "In" else "notin"
        return f"{key} {word} ({','.join(sorted(values))})"
    if operator == "Exists":
        return key
    if operator == "DoesNotExist":
        return f"!{key}"
    return f"{key}={values[0]}"


def selector_string(selector: Any) -> str | None:
    """``metav1.LabelSelectorAsSelector(s).String()``: requirements sorted by key
    (``app=web,env in (a,b),!legacy``); ``""`` for an absent or empty selector; None for one
    that does not convert (an unknown operator or a malformed expression)."""
    if not isinstance(selector, Mapping):
        return ""
    reqs: list[tuple[str, str]] = []
    labels = selector.get("matchLabels")
    if isinstance(labels, Mapping):
        reqs.extend((k, _requirement(k, "Equals", [str(v)])) for k, v in labels.items())
    for expr in as_list(selector.get("matchExpressions")):
        if not isinstance(expr, Mapping):
            return None
        key, op = as_str(expr.get("key")), as_str(expr.get("operator"))
        values = [str(v) for v in as_list(expr.get("values"))]
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return None
        if op in ("In", "NotIn") and not values:
            return None
        reqs.append((key, _requirement(key, op, values)))
    reqs.sort(key=lambda r: r[0])
    return ",".join(text for _, text in reqs)


def format_label_selector(selector: Any) -> str:
    """``metav1.FormatLabelSelector``: the selector string, ``<none>`` when empty,
    ``<error>`` when it does not convert."""
    text = selector_string(selector)
    if text is None:
        return "<error>"
    return text or "<none>"


def join_names(items: Iterable[Any], key: str) -> str:
    return ",".join(as_str(field(item, key)) for item in items)
