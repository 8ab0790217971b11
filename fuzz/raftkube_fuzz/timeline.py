"""The event timeline of one run, and its digest.

Everything observable that happens in a simulated run lands here in order: each step as it
starts, each event a member's Raft core reports, each network fault, each client call and
answer. Entries are stored raw and rendered to text only when someone looks (a trace file, a
replay, the digest), because a run produces tens of thousands of them and most runs pass.

The digest (SHA-256 over the rendered lines) is the determinism check: the same seed and steps
must give the same digest in any process, and a replay compares it with the one recorded.

Lines may carry a small ``info`` object that ties them to hosts and to each other (the host a
line happened on, the host a message or request went to, a flow id shared by a message's send,
deliveries and drop, the kind of fault and the hosts it touched): what a drawing needs and text
cannot say reliably. Message flows are paired here, when the timeline is read, by the identity
of the message object the network carried, so recording a send costs the hot path one append.
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
from array import array
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
SEND = "send"
"""A message handed to the network; its payload is the message, its ``member`` the sender."""

WORLD = "world"
"""The host of lines that belong to no one host (steps, network-wide faults)."""


def member_host(member: int | None) -> str:
    """The host name of a store member's lines, as the simulated world names its hosts."""
    return WORLD if member is None else f"m{member}"


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
    """One rendered timeline entry: virtual time, member (None: the world), kind, text, and
    the optional ``info`` object described in the module docstring (docs/trace-format.md)."""

    time: float
    member: int | None
    kind: str
    text: str
    info: dict[str, Any] | None = attrs.field(default=None, hash=False)

    @property
    def host(self) -> str:
        """The lane this line belongs on: ``info["host"]`` when set (a client, and any host
        kind a suite adds), else the member's host name."""
        if self.info is not None and "host" in self.info:
            return str(self.info["host"])
        return member_host(self.member)

    def to_json(self) -> list[Any]:
        if self.info is None:
            return [self.time, self.member, self.kind, self.text]
        return [self.time, self.member, self.kind, self.text, self.info]

    @classmethod
    def from_json(cls, data: list[Any]) -> Line:
        if len(data) == 4:
            time, member, kind, text = data
            info = None
        else:
            time, member, kind, text, info = data
            if not isinstance(info, dict):
                raise ValueError(f"a timeline entry's info must be an object, not {info!r}")
        return cls(float(time), None if member is None else int(member), str(kind), str(text), info)


def carried_message(payload: object) -> Message | None:
    """The message a line is about: a sent message itself, the message a Raft event handles,
    or the message a drop or duplicate line names."""
    if isinstance(payload, Message):
        return payload
    if isinstance(payload, Lazy):
        value = payload.value
        return value if isinstance(value, Message) else None
    message = getattr(payload, "message", None)
    return message if isinstance(message, Message) else None


def _message_only_events() -> tuple[type, ...]:
    """The spec's events whose one field is the message they are about (a member handling
    a message, or dropping a stale one): recorded as the message alone (:class:`Timeline`)."""
    found = [
        value
        for value in vars(ev).values()
        if isinstance(value, type)
        and attrs.has(value)
        and value.__module__ == ev.__name__
        and [f.name for f in attrs.fields(value)] == ["message"]
    ]
    return tuple(sorted(found, key=lambda cls: cls.__name__))


_FOLDED = frozenset(_message_only_events())
_FOLDED_LAZY = frozenset({("drop ", describe_message), ("duplicate ", describe_message)})
"""The (prefix, render) of the lines the network's drops and copies record
(:mod:`raftkube_fuzz.run_listener`): stored as the message they name."""
_SHARED: dict[type, Callable[[Any], object]] = {
    cls: operator.attrgetter(*[f.name for f in attrs.fields(cls)])
    for cls in (ev.AppendEntries, ev.CheckQuorum)
}
"""Events that hold no message and repeat by the thousand with the same fields (a leader's
append to a peer, its quorum check): one recorded object stands for every equal one. Each is
looked up by its class and fields, read in C: the events' own ``__hash__`` is Python code and
tripled the cost of recording them."""
_SHARED_INFO_KEYS = frozenset({"fault", "host"})
"""An info of one of these keys alone (``{"fault": "dropped"}``, ``{"host": "user"}``) is
stored once per value: nothing changes an info once recorded (:meth:`Timeline.lines` copies
the ones it adds a flow to)."""
_NO_MEMBER = -1
_MAX_MEMBER = 2**15 - 1
_MAX_CODES = 256

Rebuild = Callable[[Any], object]


class Timeline:
    """Append-only; ``add`` is on the simulation's hot path, so it stores a few numbers and a
    reference, never renders.

    A long cluster example records some 360,000 entries, and the memory they take is the fuzz
    process's high-water mark (docs/performance.md, "Memory"), so they are stored by column
    instead of as a tuple each: the times in an ``array('d')``, the members in an
    ``array('h')`` (a member is a store member's number), one byte per entry for its kind and
    how its payload was folded, the infos (most entries have none) by index, and the payloads
    in a list. Folding changes nothing that is read back: an event whose one field is its
    message (``HandleAppendEntriesRequest`` and the like, a third of a cluster example's
    entries) and a drop or copy line are stored as the message and rebuilt, equal, when read;
    an event of :data:`_SHARED`, and an info of :data:`_SHARED_INFO_KEYS`, as the first equal
    one. A (5-tuple, float, event) of 170-230 bytes becomes 11 bytes and a pointer beside the
    message it names, and the columns are a few large buffers that go back to the C heap
    whole when the run is freed instead of pinning Python's small-object arenas.
    """

    def __init__(self) -> None:
        self._times = array("d")
        self._members = array("h")
        self._codes = bytearray()
        """Per entry, an index into :attr:`_decode`."""
        self._decode: list[tuple[str, Rebuild | None]] = []
        """Per code: the entries' kind, and how to rebuild their payload from what is stored
        (None: stored as it was added)."""
        self._code_of: dict[object, int] = {}
        """What a code stands for (a kind, a folded event class, a (kind, prefix) of a folded
        line) -> the code."""
        self._payloads: list[object] = []
        self._infos: dict[int, dict[str, Any]] = {}
        self._shared: dict[object, Any] = {}
        self.step_starts: list[int] = []
        """Index into the timeline at which each step began."""

    def _new_code(self, key: object, kind: str, rebuild: Rebuild | None) -> int:
        code = len(self._decode)
        if code >= _MAX_CODES:
            raise ValueError(f"more than {_MAX_CODES} kinds of timeline entry")
        self._decode.append((kind, rebuild))
        self._code_of[key] = code
        return code

    def add(
        self,
        time: float,
        member: int | None,
        kind: str,
        payload: object,
        info: dict[str, Any] | None = None,
    ) -> None:
        if member is None:
            member = _NO_MEMBER
        elif not 0 <= member <= _MAX_MEMBER:
            raise ValueError(f"a timeline entry's member must be 0 to {_MAX_MEMBER}, not {member}")
        cls = type(payload)
        key: object
        rebuild: Rebuild | None = None
        if cls in _FOLDED and kind == EVENT:
            key = rebuild = cls
            payload = payload.message  # type: ignore[attr-defined]
        elif cls is Lazy and (payload.prefix, payload.render) in _FOLDED_LAZY:  # type: ignore[attr-defined]
            lazy: Lazy = payload  # type: ignore[assignment]
            key = (kind, lazy.prefix)
            rebuild = functools.partial(Lazy, lazy.prefix, lazy.render)
            payload = lazy.value
        else:
            key = kind
            fields = _SHARED.get(cls)
            if fields is not None:
                payload = self._shared.setdefault((cls, fields(payload)), payload)
        code = self._code_of.get(key)
        if code is None:
            code = self._new_code(key, kind, rebuild)
        if info is not None:
            if len(info) == 1 and not info.keys().isdisjoint(_SHARED_INFO_KEYS):
                ((name, value),) = info.items()
                if isinstance(value, str):
                    info = self._shared.setdefault((name, value), info)
            self._infos[len(self._payloads)] = info
        self._times.append(time)
        self._members.append(member)
        self._codes.append(code)
        self._payloads.append(payload)

    def begin_step(self, time: float, text: str) -> None:
        self.step_starts.append(len(self._payloads))
        self.add(time, None, STEP, text)

    def __len__(self) -> int:
        return len(self._payloads)

    def _raw(
        self, end: int | None = None
    ) -> Iterator[tuple[float, int | None, str, object, dict[str, Any] | None]]:
        """The entries as they were added: (time, member, kind, payload, info)."""
        decode = self._decode
        infos = self._infos
        count = len(self._payloads) if end is None else min(end, len(self._payloads))
        for index in range(count):
            member: int | None = self._members[index]
            kind, rebuild = decode[self._codes[index]]
            payload = self._payloads[index]
            if rebuild is not None:
                payload = rebuild(payload)
            yield (
                self._times[index],
                None if member == _NO_MEMBER else member,
                kind,
                payload,
                infos.get(index),
            )

    def lines(self, end: int | None = None) -> Iterator[Line]:
        """The rendered lines, message flows paired: a send line opens flow ``msg-<its
        index>``; a later line about the very same message object (a member handling it, the
        network dropping or copying it) joins that flow. A member reporting several events
        about one delivery at one instant (UpdateTerm, then the Handle event) joins it once.
        The recorded entries keep every message alive, so identities are not reused
        meanwhile."""
        flows: dict[int, str] = {}
        last_joined: dict[int, tuple[float, int | None]] = {}
        for index, (time, member, kind, payload, info) in enumerate(self._raw(end)):
            message = carried_message(payload) if kind != STEP else None
            if message is not None:
                key = id(message)
                if kind == SEND:
                    flows[key] = f"msg-{index}"
                    info = {**(info or {}), "to": member_host(message.dest), "flow": flows[key]}
                elif key in flows and (kind != EVENT or last_joined.get(key) != (time, member)):
                    if kind == EVENT:
                        last_joined[key] = (time, member)
                    info = {**(info or {}), "flow": flows[key]}
            yield Line(time, member, kind, describe(payload), info)

    def digest(self) -> str:
        return digest_lines(self.lines())


def digest_lines(lines: Iterator[Line] | list[Line]) -> str:
    h = hashlib.sha256()
    for line in lines:
        # Lines without info hash as they always did, so older traces keep their digests.
        extra = "" if line.info is None else "\x1f" + json.dumps(line.info, sort_keys=True)
        h.update(f"{line.time!r}\x1f{line.member}\x1f{line.kind}\x1f{line.text}{extra}\n".encode())
    return h.hexdigest()
