"""Who the members are, beyond their Raft ids: names and URLs, replicated through the log.

The Raft core knows a configuration as ids only (a spec ``Membership``). Everything else a
user and the transport need about a member - its name, where its peers reach it, where its
clients reach it - is what etcd calls a member's *attributes*, and like etcd (which keeps them
in its backend's ``members`` bucket, written when a conf change applies) every member keeps
them in a small table changed only by committed log entries, so all members agree on it:

* ``member add`` first commits a ``member_attrs`` entry (:mod:`raftkube.server.entries`) with
  the new member's id, name and URLs; when it applies, every member learns the new peer's
  address, and only then does the leader append the configuration change. A member the
  configuration does not (yet, or any more) contain may be in the table: the configuration,
  not the table, says who is a member.
* The table is saved with every snapshot (:func:`raftkube.server.snapshots.pack_stored`), so a
  restart or an installed snapshot knows it without the entries that built it.

A cluster started from ``--peers`` begins with a table built from that flag (names
``member-<id>``), the same on every member since every member is given the same flag.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs


class AttributesError(ValueError):
    """A member attributes document that is not well formed (names the field)."""


@attrs.frozen
class MemberAttributes:
    """One member's id and what etcd's ``Member`` message shows besides it."""

    id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...] = ()

    def encode(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "peer_urls": list(self.peer_urls),
            "client_urls": list(self.client_urls),
        }

    @classmethod
    def decode(cls, raw: object) -> MemberAttributes:
        """The attributes in a ``member_attrs`` body; :class:`AttributesError` otherwise."""
        if not isinstance(raw, dict):
            raise AttributesError("member attributes: expected a map")
        unknown = set(raw) - {"id", "name", "peer_urls", "client_urls"}
        if unknown:
            raise AttributesError(f"member attributes: unknown field {sorted(unknown)[0]}")
        mid = raw.get("id")
        if type(mid) is not int or mid < 0:
            raise AttributesError("member attributes: id must be a non-negative integer")
        name = raw.get("name", "")
        if not isinstance(name, str):
            raise AttributesError("member attributes: name must be a string")
        urls: dict[str, tuple[str, ...]] = {}
        for field in ("peer_urls", "client_urls"):
            value = raw.get(field, [])
            if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
                raise AttributesError(f"member attributes: {field} must be a list of strings")
            urls[field] = tuple(value)
        return cls(mid, name, urls["peer_urls"], urls["client_urls"])


class MemberTable:
    """The attributes of every member ever added, by id (see the module docstring)."""

    __slots__ = ("_by_id",)

    def __init__(self, members: Mapping[int, MemberAttributes] | None = None) -> None:
        self._by_id: dict[int, MemberAttributes] = dict(members or {})

    def __iter__(self) -> Iterator[MemberAttributes]:
        return iter(self._by_id[j] for j in sorted(self._by_id))

    def __contains__(self, member_id: object) -> bool:
        return member_id in self._by_id

    def get(self, member_id: int) -> MemberAttributes | None:
        return self._by_id.get(member_id)

    def set(self, attributes: MemberAttributes) -> None:
        self._by_id[attributes.id] = attributes

    def replace(self, other: MemberTable) -> None:
        """Become a copy of ``other`` (an installed snapshot's table)."""
        self._by_id = dict(other._by_id)

    def by_name(self, name: str) -> MemberAttributes | None:
        return next((m for m in self if m.name == name), None)

    def next_id(self) -> int:
        """The id a new member gets: one past every id ever used (a removed member's id is
        never reused, as etcd never reuses one, so a stale process cannot rejoin as another)."""
        return max(self._by_id, default=-1) + 1

    def copy(self) -> MemberTable:
        return MemberTable(self._by_id)

    def encode(self) -> list[dict[str, Any]]:
        return [m.encode() for m in self]

    @classmethod
    def decode(cls, raw: object) -> MemberTable:
        if not isinstance(raw, list):
            raise AttributesError("member table: expected a list")
        table = cls()
        for item in raw:
            table.set(MemberAttributes.decode(item))
        return table

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MemberTable) and self._by_id == other._by_id

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"MemberTable({list(self)!r})"
