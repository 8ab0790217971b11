"""What clients asked and were told: the record every client-history checker reads.

A simulated client calls :meth:`History.invoke` when it sends a request and
:meth:`History.complete` when it learns how it ended. The three outcomes are the three things a
client can honestly know: the server answered (:class:`Ok`, whose result may be a
:class:`~raftkube_spec.kv.KVError` judged against the replicated state), the request was
definitely not applied (:class:`Failed`: refused before it was proposed), or nobody can tell
(:class:`Unknown`: timeout, leader change, crash mid-request). Getting that distinction right is
what keeps the linearizability check both sound and strict, so callers must never report a
maybe-applied request as Failed.

Histories go into trace files, so they round-trip through JSON exactly: a small generic codec
turns the spec's frozen attrs values (requests, responses, key-values, errors, enums, bytes)
into tagged JSON objects and back. It is generic on purpose, so that a new request or response
type in the spec needs no change here beyond being exported from ``raftkube_spec.kv``.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

import raftkube_spec.kv as kv
from raftkube_spec.kv import Request, Result

# -- outcomes and operations ---------------------------------------------------------------


@attrs.frozen
class Ok:
    """The server answered; ``result`` is what it answered (a response or a KVError)."""

    result: Result


@attrs.frozen
class Failed:
    """Definitely not applied (refused before it was proposed); ``code`` says why."""

    code: str


@attrs.frozen
class Unknown:
    """May or may not have been applied; ``reason`` says why the client cannot tell."""

    reason: str


Outcome = Ok | Failed | Unknown


@attrs.frozen
class Operation:
    """One request of one client.

    ``ret`` is None while the request is pending and for an Unknown outcome (the effect, if
    any, may land at any later time, so the client's give-up time bounds nothing).
    ``serializable`` marks reads served from a member's local state without a linearizable
    barrier: they are allowed to be stale, so the linearizability check leaves them out.

    ``invoked_before_ret`` is how many operations had been invoked when this one's outcome was
    recorded. Virtual time often stands still, so a return and another client's call can carry
    the same timestamp; the recording order then still says which came first (the client
    records a call before sending and a return after receiving), and only that order lets the
    checker treat "returned, then called at the same instant" as real-time precedence.
    """

    client_id: int
    op_id: int
    request: Request
    call: float
    ret: float | None = None
    outcome: Outcome | None = None
    serializable: bool = False
    invoked_before_ret: int | None = None


class History:
    """Append-only record of operations, in the order they were invoked (op ids 0, 1, ...)."""

    def __init__(self) -> None:
        self._ops: list[Operation] = []

    def invoke(
        self, client_id: int, request: Request, now: float, *, serializable: bool = False
    ) -> int:
        """Record that ``client_id`` sent ``request`` at ``now``; returns the new op id."""
        op_id = len(self._ops)
        self._ops.append(Operation(client_id, op_id, request, now, serializable=serializable))
        return op_id

    def complete(self, op_id: int, outcome: Outcome, now: float) -> None:
        """Record how ``op_id`` ended; an operation ends exactly once."""
        op = self._ops[op_id]
        if op.outcome is not None:
            raise ValueError(f"operation {op_id} already completed with {op.outcome!r}")
        if now < op.call:
            raise ValueError(f"operation {op_id} returns at {now} before its call at {op.call}")
        ret = None if isinstance(outcome, Unknown) else now
        self._ops[op_id] = attrs.evolve(
            op, ret=ret, outcome=outcome, invoked_before_ret=len(self._ops)
        )

    def operations(self) -> tuple[Operation, ...]:
        """Every operation so far, in op-id order."""
        return tuple(self._ops)

    def __len__(self) -> int:
        return len(self._ops)

    def to_json(self) -> dict[str, Any]:
        return {"operations": [to_json(op) for op in self._ops]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> History:
        history = cls()
        for i, raw in enumerate(data["operations"]):
            op = from_json(raw)
            if not isinstance(op, Operation) or op.op_id != i:
                raise ValueError(f"entry {i} of the history is not operation {i}: {raw!r}")
            history._ops.append(op)
        return history


# -- a generic codec for frozen attrs values -----------------------------------------------

_TYPE = "$t"
_BYTES = "$b"
_ENUM = "$e"


def _registry() -> dict[str, type]:
    """Every attrs class and enum a history can hold, by class name (names are unique)."""
    found: dict[str, type] = {}
    for name in kv.__all__:
        value = getattr(kv, name)
        if isinstance(value, type) and (attrs.has(value) or issubclass(value, enum.Enum)):
            found[value.__name__] = value
    for local in (Ok, Failed, Unknown, Operation):
        found[local.__name__] = local
    return found


_CLASSES = _registry()


def to_json(value: Any) -> Any:
    """A JSON-compatible rendering of ``value`` that :func:`from_json` turns back into it.

    bytes become ``{"$b": latin-1 text}`` (every byte maps to one code point, so this is exact
    and keeps ASCII keys readable), enums ``{"$e": "Class.MEMBER"}``, attrs values
    ``{"$t": "Class", field: ...}`` and tuples lists.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return {_BYTES: value.decode("latin-1")}
    if isinstance(value, enum.Enum):
        return {_ENUM: f"{type(value).__name__}.{value.name}"}
    if isinstance(value, tuple | list):
        return [to_json(item) for item in value]
    cls = type(value)
    if attrs.has(cls) and _CLASSES.get(cls.__name__) is cls:
        encoded: dict[str, Any] = {_TYPE: cls.__name__}
        for field in attrs.fields(cls):
            encoded[field.name] = to_json(getattr(value, field.name))
        return encoded
    raise TypeError(f"cannot encode {value!r} for a trace file")


def from_json(data: Any) -> Any:
    """Invert :func:`to_json` (JSON lists come back as tuples, as the spec's fields hold)."""
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return tuple(from_json(item) for item in data)
    if isinstance(data, dict):
        if _BYTES in data:
            return str(data[_BYTES]).encode("latin-1")
        if _ENUM in data:
            class_name, member = str(data[_ENUM]).split(".", 1)
            return _CLASSES[class_name][member]  # type: ignore[index]
        if _TYPE in data:
            cls = _CLASSES[data[_TYPE]]
            fields = {k: from_json(v) for k, v in data.items() if k != _TYPE}
            return cls(**fields)
    raise ValueError(f"not an encoded history value: {data!r}")


def describe(value: Any) -> str:
    """A short human-readable rendering for violation evidence.

    Like ``repr`` but attrs values show only the fields that differ from their defaults, so a
    PutRequest reads ``PutRequest(key=b'a', value=b'1')`` rather than six fields of noise.
    """
    if isinstance(value, tuple | list):
        return "(" + ", ".join(describe(item) for item in value) + ")"
    if isinstance(value, enum.Enum):
        return value.name
    cls = type(value)
    if not attrs.has(cls):
        return repr(value)
    shown = []
    for field in attrs.fields(cls):
        item = getattr(value, field.name)
        if field.default is not attrs.NOTHING and item == field.default:
            continue
        shown.append(f"{field.name}={describe(item)}")
    return f"{cls.__name__}({', '.join(shown)})"
