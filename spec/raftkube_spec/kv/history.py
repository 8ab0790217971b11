"""Multi-version storage: every key's records, and the sorted key space holding them.

The store is kept as a tuple of per-key histories sorted by key, each an
ascending tuple of records (tombstones included). That one structure answers
reads at any retained revision, yields watch events, and is compacted in
place, and states built from each other share every untouched history, so
equality and hashing stay cheap for a search that memoizes on states.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping

import attrs

from raftkube_spec.kv.keyrange import KeyRange
from raftkube_spec.kv.types import KeyValue


def _mod_revision(kv: KeyValue) -> int:
    return kv.mod_revision


def _key(history: KeyHistory) -> bytes:
    return history.key


@attrs.frozen(cache_hash=True)
class KeyHistory:
    """All retained records of one key, oldest first.

    Revisions are non-decreasing rather than strictly increasing: etcd lets a
    txn put a key in one nested txn and delete it in a later one, which leaves
    a put and a tombstone at the same revision (etcd's sub-revisions). The
    last record at a revision is the one a read at that revision sees.
    """

    key: bytes
    records: tuple[KeyValue, ...]

    def at(self, revision: int) -> KeyValue | None:
        """The live record a read at ``revision`` sees, if any."""
        i = bisect.bisect_right(self.records, revision, key=_mod_revision)
        if i == 0:
            return None
        kv = self.records[i - 1]
        return None if kv.is_tombstone else kv

    def since(self, revision: int) -> tuple[KeyValue, ...]:
        """Records written at or after ``revision``, oldest first."""
        i = bisect.bisect_left(self.records, revision, key=_mod_revision)
        return self.records[i:]

    def appended(self, kv: KeyValue) -> KeyHistory:
        return KeyHistory(self.key, (*self.records, kv))

    def compacted(self, revision: int) -> KeyHistory | None:
        """Drop what no read or watch at or after ``revision`` can observe.

        Kept: every record at or after the compact revision (a watch from it
        must still see them), plus the record a read at the compact revision
        depends on when nothing was written exactly then — unless that is a
        tombstone, which reads cannot tell apart from absence. Keeping nothing
        else makes two states that differ only in forgotten history equal.
        """
        newer = self.since(revision)
        if not newer or newer[0].mod_revision > revision:
            visible = self.at(revision)
            if visible is not None and visible.mod_revision < revision:
                newer = (visible, *newer)
        if not newer:
            return None
        return KeyHistory(self.key, newer)


KeySpace = tuple[KeyHistory, ...]
"""Histories sorted by key, one per key that has any retained record."""


def find(space: KeySpace, key: bytes) -> KeyHistory | None:
    i = bisect.bisect_left(space, key, key=_key)
    if i < len(space) and space[i].key == key:
        return space[i]
    return None


def scan(space: KeySpace, keys: KeyRange) -> Iterator[KeyHistory]:
    """Histories of the keys in ``keys``, ascending."""
    i = bisect.bisect_left(space, keys.start, key=_key)
    while i < len(space) and keys.is_below_end(space[i].key):
        yield space[i]
        i += 1


def visible(space: KeySpace, keys: KeyRange, revision: int) -> list[KeyValue]:
    """The live records a read of ``keys`` at ``revision`` returns, ascending by key."""
    found = []
    for history in scan(space, keys):
        kv = history.at(revision)
        if kv is not None:
            found.append(kv)
    return found


def replaced(space: KeySpace, updates: Mapping[bytes, KeyHistory]) -> KeySpace:
    """``space`` with the histories of ``updates`` inserted or substituted, in one pass."""
    if not updates:
        return space
    merged: list[KeyHistory] = []
    pos = 0
    for key in sorted(updates):
        i = bisect.bisect_left(space, key, lo=pos, key=_key)
        merged.extend(space[pos:i])
        merged.append(updates[key])
        pos = i + 1 if i < len(space) and space[i].key == key else i
    merged.extend(space[pos:])
    return tuple(merged)


def compacted(space: KeySpace, revision: int) -> KeySpace:
    kept = []
    for history in space:
        smaller = history.compacted(revision)
        if smaller is not None:
            kept.append(smaller)
    return tuple(kept)
