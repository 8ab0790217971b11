"""What a member puts in the Raft log, and how a committed entry changes the state machine.

Kept apart from :mod:`raftkube.server.member` because two callers apply entries: the member's
ready loop (live, with proposal waiters) and snapshot installation (a leader may ship committed
entries after the state-machine image, see :mod:`raftkube.server.snapshots`). Both must apply
an entry identically, so the rule lives in one pure function, :func:`apply_entry`.

Entry values are msgpack arrays::

    [incarnation, proposal_id, op, body]                      # an untagged request
    [incarnation, proposal_id, op, body, [client_id, seq, lowest_unacked]]  # a session write
    [incarnation, proposal_id, "session_register", {}]        # opens a client session

    [incarnation, proposal_id, "member_attrs", {id, name, peer_urls, client_urls}]
    [0, 0, "conf_change", {"voters": [...], "learners": [...]}]  # a configuration entry

``body`` is the wire encoding of the KV request. The proposer keeps a waiter per
``(incarnation, proposal_id)``; the empty value is a leader's no-op. A session's id is the log
index of its register entry (the convention of :mod:`raftkube.mvcc.sessions`), so every replica
derives the same id without coordination. A ``member_attrs`` entry records a member's name
and URLs in the :class:`~raftkube.server.cluster_members.MemberTable` (``member add`` commits
one before the configuration change that adds the member).

**Configuration entries.** The Raft core keeps a membership change in its log as a spec
``Membership`` value (the whole new configuration, :mod:`raftkube.raft.membership`), not as
bytes; the WAL stores bytes. :func:`stored_value` and :func:`core_value` convert between the two
at the storage boundary, so a configuration entry survives a restart as a ``Membership`` and
takes effect again when the recovered log is loaded. It is a four-element array like a request
(the same first byte), so a snapshot's image prefix can never be mistaken for one, and its op
``conf_change`` is not a KV op, so :func:`decode_entry` refuses it rather than applying it.
"""

from __future__ import annotations

from typing import Any, Final

import attrs
import msgpack  # type: ignore[import-untyped]

from raftkube.api import wire
from raftkube.mvcc import MvccStore, SessionError
from raftkube.server.cluster_members import MemberAttributes, MemberTable
from raftkube_spec.kv.requests import Request
from raftkube_spec.kv.responses import Result
from raftkube_spec.raft.types import Membership, Value

REGISTER_OP: Final = "session_register"
"""The op of an entry that opens a client session."""

ATTRS_OP: Final = "member_attrs"
"""The op of an entry that records a member's name and URLs."""

CONF_OP: Final = "conf_change"
"""The op of a stored configuration entry (never applied to the KV store)."""


@attrs.frozen
class SessionTag:
    """Which client write this is: retries carry the same tag, so they apply once."""

    client_id: int
    sequence: int
    lowest_unacked: int


@attrs.frozen
class Registered:
    """The outcome of a register entry: the new session's id."""

    client_id: int


@attrs.frozen
class DecodedEntry:
    """A non-empty entry, decoded. ``request`` is None for a register entry and for a
    member-attributes entry (which has ``attributes``)."""

    incarnation: int
    proposal_id: int
    request: Request | None
    session: SessionTag | None
    attributes: MemberAttributes | None = None


Outcome = Result | SessionError | Registered | MemberAttributes
"""What applying one entry produced, for the proposer's waiter."""


class EntryError(ValueError):
    """An entry this member cannot decode (a bug or a newer peer); it is skipped."""


def encode_entry(
    incarnation: int,
    proposal_id: int,
    request: Request | MemberAttributes | None,
    session: SessionTag | None = None,
) -> bytes:
    """The log value of a request (``None``: a session registration; attributes: a
    ``member_attrs`` entry)."""
    doc: list[Any]
    if isinstance(request, MemberAttributes):
        doc = [incarnation, proposal_id, ATTRS_OP, request.encode()]
    elif request is None:
        doc = [incarnation, proposal_id, REGISTER_OP, {}]
    else:
        doc = [incarnation, proposal_id, wire.request_op(request), wire.encode_request(request)]
        if session is not None:
            doc.append([session.client_id, session.sequence, session.lowest_unacked])
    packed: bytes = msgpack.packb(doc, use_bin_type=True)
    return packed


def decode_entry(data: bytes) -> DecodedEntry:
    """Decode a non-empty entry value; raises :class:`EntryError` if it is not one of ours."""
    try:
        doc = msgpack.unpackb(data, raw=False)
        if not isinstance(doc, list) or len(doc) not in (4, 5):
            raise EntryError(f"entry is not a 4- or 5-element array: {doc!r:.80}")
        incarnation, pid, op, body = doc[:4]
        if op == REGISTER_OP:
            return DecodedEntry(int(incarnation), int(pid), None, None)
        if op == ATTRS_OP:
            attributes = MemberAttributes.decode(body)
            return DecodedEntry(int(incarnation), int(pid), None, None, attributes)
        request = wire.decode_request(op, body)
        session = None
        if len(doc) == 5:
            client_id, sequence, lowest = doc[4]
            session = SessionTag(int(client_id), int(sequence), int(lowest))
        return DecodedEntry(int(incarnation), int(pid), request, session)
    except EntryError:
        raise
    except (ValueError, TypeError, wire.WireError, msgpack.ExtraData) as exc:
        raise EntryError(str(exc)) from exc


def apply_entry(
    store: MvccStore, index: int, entry: DecodedEntry, members: MemberTable | None = None
) -> Outcome:
    """Apply one committed entry at ``index`` to ``store`` (and a member-attributes entry to
    ``members``, when given); a function of the log alone."""
    if entry.attributes is not None:
        if members is not None:
            members.set(entry.attributes)
        return entry.attributes
    if entry.request is None:
        store.register_client(index)
        return Registered(index)
    if entry.session is None:
        return store.apply(entry.request)
    tag = entry.session
    return store.apply_for_client(
        entry.request,
        client_id=tag.client_id,
        sequence=tag.sequence,
        lowest_unacked=tag.lowest_unacked,
    )


def stored_value(value: Value) -> bytes:
    """The WAL bytes of a core entry value: a request's bytes as they are, a ``Membership``
    as a ``conf_change`` array."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, Membership):
        doc = [0, 0, CONF_OP, {"voters": list(value.voters), "learners": list(value.learners)}]
        packed: bytes = msgpack.packb(doc, use_bin_type=True)
        return packed
    raise TypeError(f"entry value must be bytes or a Membership, got {type(value).__name__}")


_CONF_HEAD: Final = msgpack.packb([0, 0, CONF_OP], use_bin_type=True)[1:]
"""How a stored configuration entry starts after its array header: cheap to test for, so
recovering a long WAL decodes only the configuration entries."""


def core_value(data: bytes) -> Value:
    """The core entry value of WAL bytes: a ``Membership`` for a configuration entry, the
    bytes themselves otherwise. Raises :class:`EntryError` for a malformed configuration."""
    if data[1 : 1 + len(_CONF_HEAD)] != _CONF_HEAD or data[:1] != b"\x94":
        return data
    try:
        doc = msgpack.unpackb(data, raw=False)
        body = doc[3]
        if not isinstance(body, dict) or set(body) != {"voters", "learners"}:
            raise EntryError(f"configuration entry body is not {{voters, learners}}: {body!r:.80}")
        ids: dict[str, tuple[int, ...]] = {}
        for name in ("voters", "learners"):
            raw = body[name]
            if not isinstance(raw, list) or any(type(j) is not int or j < 0 for j in raw):
                raise EntryError(f"configuration entry {name} is not a list of member ids")
            ids[name] = tuple(raw)
        return Membership(voters=ids["voters"], learners=ids["learners"])
    except EntryError:
        raise
    except (ValueError, TypeError, IndexError, msgpack.ExtraData) as exc:
        raise EntryError(f"malformed configuration entry: {exc}") from exc


def decode_session_tag(raw: object, where: str = "body.session") -> SessionTag | None:
    """The ``session`` field of a write's body: ``{client_id, sequence, lowest_unacked}``
    (``lowest_unacked`` defaults to ``sequence``). Absent means an untagged write."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise wire.WireError(where, "expected a map")
    unknown = set(raw) - {"client_id", "sequence", "lowest_unacked"}
    if unknown:
        raise wire.WireError(f"{where}.{sorted(unknown)[0]}", "unknown field")
    values: dict[str, int] = {}
    for name in ("client_id", "sequence", "lowest_unacked"):
        value = raw.get(name, raw.get("sequence") if name == "lowest_unacked" else None)
        if type(value) is not int or value < 0:
            raise wire.WireError(f"{where}.{name}", "expected a non-negative integer")
        values[name] = value
    return SessionTag(values["client_id"], values["sequence"], values["lowest_unacked"])
