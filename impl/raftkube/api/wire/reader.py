"""The strict field reader every decoder of the client protocol goes through.

A :class:`FieldReader` reads the fields of one map and remembers which it consumed, so a
decoder that has read what it knows can refuse whatever is left (:meth:`FieldReader.done`);
every refusal is a :class:`WireError` naming the offending field's path (``body.compare[0].
target``), so a bad client is told exactly what is wrong and nothing half-decoded reaches the
state machine. Kept apart from the codecs because it knows no message: the request, response
and frame decoders, and the client service's own small bodies (a watch's arguments), share it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class WireError(ValueError):
    """A map that is not a valid encoding; ``field`` is the path of the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def type_name(value: object) -> str:
    return type(value).__name__


class FieldReader:
    """Reads the fields of one map, remembering which were consumed so leftovers are refused.

    Every request and answer passes through here, so the common case is kept cheap: a plain
    ``dict`` skips the abstract ``Mapping`` check, and :meth:`done` only computes the leftover
    field names when the count of fields read says there are some."""

    __slots__ = ("raw", "seen", "where")

    def __init__(self, raw: object, where: str) -> None:
        if type(raw) is not dict and not isinstance(raw, Mapping):
            raise WireError(where, f"expected a map, got {type_name(raw)}")
        for k in raw:
            if type(k) is not str and not isinstance(k, str):
                raise WireError(where, f"map key {k!r} is not a string")
        self.raw: Mapping[str, Any] = raw
        self.where = where
        self.seen: set[str] = set()
        """The fields of ``raw`` that were read (absent ones are not recorded)."""

    def path(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def lookup(self, name: str, required: bool) -> tuple[bool, Any]:
        """Whether field ``name`` is present, and its raw value (refused if ``required`` and
        absent); the typed readers below build on it."""
        if name in self.raw:
            self.seen.add(name)
            return True, self.raw[name]
        if required:
            raise WireError(self.path(name), "required field is missing")
        return False, None

    def i(self, name: str, default: int | None = 0, *, minimum: int | None = None) -> int:
        present, v = self.lookup(name, default is None)
        if not present:
            assert default is not None
            return default
        if type(v) is not int:
            raise WireError(self.path(name), f"expected an integer, got {type_name(v)}")
        if minimum is not None and v < minimum:
            raise WireError(self.path(name), f"must be >= {minimum}, got {v}")
        return v

    def b(self, name: str, default: bool = False) -> bool:
        present, v = self.lookup(name, False)
        if not present:
            return default
        if type(v) is not bool:
            raise WireError(self.path(name), f"expected a boolean, got {type_name(v)}")
        return v

    def by(self, name: str, default: bytes | None = b"") -> bytes:
        present, v = self.lookup(name, default is None)
        if not present:
            assert default is not None
            return default
        if type(v) is not bytes:
            raise WireError(self.path(name), f"expected bytes, got {type_name(v)}")
        return v

    def s(self, name: str, default: str | None = "") -> str:
        present, v = self.lookup(name, default is None)
        if not present:
            assert default is not None
            return default
        if type(v) is not str:
            raise WireError(self.path(name), f"expected a string, got {type_name(v)}")
        return v

    def items(self, name: str) -> list[tuple[str, Any]]:
        """The items of an optional list field, each with its path."""
        present, v = self.lookup(name, False)
        if not present:
            return []
        if not isinstance(v, list | tuple):
            raise WireError(self.path(name), f"expected a list, got {type_name(v)}")
        return [(f"{self.path(name)}[{i}]", item) for i, item in enumerate(v)]

    def sub(self, name: str, *, required: bool = True) -> FieldReader | None:
        present, v = self.lookup(name, required)
        if not present or (v is None and not required):
            return None
        return FieldReader(v, self.path(name))

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


def decode_with(raw: object, where: str, build: Callable[[FieldReader], T]) -> T:
    r = FieldReader(raw, where)
    value = build(r)
    r.done()
    return value
