"""The event timeline of one run, and its digest.

Everything observable that happens in a simulated run lands here in order: each step as it
starts, each event a member's Raft core reports, each network fault, each client call and
answer. Entries are stored raw and rendered to text only when someone looks (a trace file, a
replay, the digest), because a run produces tens of thousands of them and most runs pass.

The digest (SHA-256 over the rendered lines) is the determinism check: the same seed and steps
must give the same digest in any process, and a replay compares it with the one recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from raftkube.server.entries import EntryError, decode_entry
from raftkube_spec.raft import events as ev
from raftkube_spec.raft import render
from raftkube_spec.raft.messages import Message

STEP = "step"
EVENT = "event"
FAULT = "fault"
CLIENT = "client"
CHECK = "check"


def describe_value(value: object) -> str:
    """An entry's value as a reader wants it: the request it carries, not msgpack bytes."""
    if not isinstance(value, bytes):
        return repr(value)
    if not value:
        return "noop"
    try:
        decoded = decode_entry(value)
    except EntryError:
        return f"<{len(value)} bytes>"
    request = decoded.request
    if request is None:
        return "session"
    name = type(request).__name__.removesuffix("Request")
    key = getattr(request, "key", None)
    if isinstance(key, bytes):
        return f"{name}({key.decode('latin-1')})"
    lease = getattr(request, "id", None)
    return f"{name}({lease})" if lease is not None else name


def describe_message(m: Message) -> str:
    return render.message(m, describe_value)


@attrs.frozen
class Lazy:
    """A line whose text is ``prefix`` followed by ``render(value)``, rendered only when the
    timeline is read: clients call and return on the hot path, and most runs pass."""

    prefix: str
    render: Callable[[Any], str]
    value: object

    def __str__(self) -> str:
        return self.prefix + self.render(self.value)


def describe(payload: object) -> str:
    if isinstance(payload, str):
        return payload
    if isinstance(payload, Lazy):
        return str(payload)
    if isinstance(payload, Message):
        return describe_message(payload)
    if attrs.has(type(payload)) and type(payload).__module__ == ev.__name__:
        return render.event(payload, describe_value)  # type: ignore[arg-type]
    return repr(payload)


@attrs.frozen
class Line:
    """One rendered timeline entry: virtual time, member (None: the world), kind, text."""

    time: float
    member: int | None
    kind: str
    text: str

    def to_json(self) -> list[Any]:
        return [self.time, self.member, self.kind, self.text]

    @classmethod
    def from_json(cls, data: list[Any]) -> Line:
        time, member, kind, text = data
        return cls(float(time), None if member is None else int(member), str(kind), str(text))

    def render(self) -> str:
        who = "world" if self.member is None else f"m{self.member}"
        return f"{self.time:12.6f}  {who:>5}  {self.kind:<6} {self.text}"


class Timeline:
    """Append-only; ``add`` is on the simulation's hot path, so it only stores a tuple."""

    def __init__(self) -> None:
        self._raw: list[tuple[float, int | None, str, object]] = []
        self.step_starts: list[int] = []
        """Index into the timeline at which each step began."""

    def add(self, time: float, member: int | None, kind: str, payload: object) -> None:
        self._raw.append((time, member, kind, payload))

    def begin_step(self, time: float, text: str) -> None:
        self.step_starts.append(len(self._raw))
        self._raw.append((time, None, STEP, text))

    def __len__(self) -> int:
        return len(self._raw)

    def lines(self, end: int | None = None) -> Iterator[Line]:
        for time, member, kind, payload in self._raw[:end]:
            yield Line(time, member, kind, describe(payload))

    def digest(self) -> str:
        return digest_lines(self.lines())


def digest_lines(lines: Iterator[Line] | list[Line]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(f"{line.time!r}\x1f{line.member}\x1f{line.kind}\x1f{line.text}\n".encode())
    return h.hexdigest()
