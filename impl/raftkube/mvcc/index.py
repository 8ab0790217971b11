"""The key index: every key's retained revisions, in key order, with cheap reads at any revision.

Layout
------
* ``_histories`` maps a key to its :class:`KeyHistory`: two parallel lists, the
  ascending ``mod_revision`` of each record and the records themselves
  (tombstones included). A read at revision ``r`` is one ``bisect`` on the int
  list, and the common read "at the latest revision" is just the last record.
* ``_order`` is a ``SortedList`` of the same keys, used only by range scans; a
  key enters it when its first record is written and leaves it when compaction
  empties its history, so point operations never pay for the ordering.

Records are the spec's frozen :class:`KeyValue` values, stored once and handed
out as they are: a response or an event never has to be rebuilt from an
internal form.

Revisions within one history are non-decreasing, not strictly increasing: a txn
may put a key in one nested txn and delete it in a later one, which leaves two
records at the same revision (etcd's sub-revisions). The last record at a
revision is the one a read at that revision sees, which ``bisect_right`` gives.

Compaction
----------
Compacting at ``C`` keeps, per key, every record at or after ``C`` plus the
record a read at ``C`` depends on when nothing was written exactly at ``C`` —
unless that is a tombstone, which a read cannot tell from absence. That is the
spec's rule, so the retained history equals the model's record for record.

Visiting every key on every compaction would make compaction cost the size of
the key space. Instead each write that makes history droppable leaves a
*trigger*: a record superseding an older one makes the older droppable once
``C >= its revision``; a tombstone becomes droppable once ``C > its revision``.
Revisions only grow, so both trigger queues are already sorted, and a
compaction pops exactly the triggers it reaches and trims only those keys. A key
without a reached trigger provably has nothing the rule would drop.

That work is still proportional to the writes since the last compaction, which
with etcd's retentions (minutes to hours) is millions of keys: done at once it
would stall the member's event loop for seconds. So, as etcd compacts its
backend in batches after the compact revision is set, :meth:`KeyIndex.compact`
only moves the trim point, and :meth:`KeyIndex.trim` does a bounded batch of
the trimming, called after every write. Records still awaiting their trim are
invisible: every read and watch is at or after the compact revision, where the
rule keeps exactly what they see, and :func:`first_retained` applies the rule
again when a snapshot is encoded, so images stay canonical.

A range read served in steps (:mod:`raftkube.mvcc.reader`) may have opened
before a compaction above its revision: it *holds* its revision
(:meth:`KeyIndex.hold`), and trimming goes no further than the oldest held
revision until it is released, so the records that read needs stay.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from operator import attrgetter

import attrs
from sortedcontainers import SortedList  # type: ignore[import-untyped]

from raftkube_spec.kv.keyrange import FROM_KEY
from raftkube_spec.kv.types import KeyValue


def decode_range(key: bytes, range_end: bytes) -> tuple[bytes, bytes | None]:
    """etcd's ``(key, range_end)`` convention as a half-open ``[start, end)``; ``None``: unbounded.

    ``b""`` is the single key (its successor in byte order is ``key + b"\\x00"``)
    and ``b"\\x00"`` means "every key from ``key`` on".
    """
    if not range_end:
        return key, key + b"\x00"
    if range_end == FROM_KEY:
        return key, None
    return key, range_end


_MOD_REVISION = attrgetter("mod_revision")

TRIM_BATCH = 32
"""Trigger entries :meth:`KeyIndex.trim` handles per write: more than a write adds (one per
record, and most writes write one), so a backlog drains within a fraction of the writes that
made it, in slices short enough not to stall anything."""


def first_retained(kvs: Sequence[KeyValue], length: int, revision: int) -> int:
    """The compaction rule: the index of the first of ``kvs[:length]`` that compacting at
    ``revision`` keeps (see the module docstring); ``length`` if it keeps none."""
    # Most histories hold at most one record below the compaction point (trimming keeps
    # them so): answered from the first two records, without a bisect, as the snapshot
    # encoder asks once per key (a third of its time at 100,000 keys went here).
    if not length:
        return 0
    first = kvs[0]
    if first.mod_revision >= revision:
        return 0
    if length == 1 or kvs[1].mod_revision > revision:
        return 0 if first.version != 0 else 1
    i = bisect_left(kvs, revision, 0, length, key=_MOD_REVISION)
    if (i == length or kvs[i].mod_revision > revision) and i > 0 and kvs[i - 1].version != 0:
        # Nothing written exactly at ``revision``: a read there sees this live record.
        i -= 1
    return i


@attrs.define(slots=True, eq=False)
class KeyHistory:
    """The retained records of one key, oldest first; ``revs[i] == kvs[i].mod_revision``."""

    revs: list[int]
    kvs: list[KeyValue]
    compacted: int = 0
    """The revision this history was last compacted at: a hot key leaves a trigger per write,
    and once compacted at a revision, the others reaching it have nothing left to drop."""

    def at(self, revision: int) -> KeyValue | None:
        """The live record a read at ``revision`` sees, if any."""
        revs = self.revs
        if revs[-1] <= revision:
            kv = self.kvs[-1]
        else:
            i = bisect_right(revs, revision)
            if i == 0:
                return None
            kv = self.kvs[i - 1]
        return None if kv.version == 0 else kv

    def latest(self) -> KeyValue | None:
        """The live record at the newest revision written (a write in progress included)."""
        kv = self.kvs[-1]
        return None if kv.version == 0 else kv

    def since(self, revision: int) -> list[KeyValue]:
        """Records written at or after ``revision``, oldest first."""
        revs = self.revs
        if revs[0] >= revision:
            return list(self.kvs)
        return self.kvs[bisect_left(revs, revision) :]

    def compact(self, revision: int) -> None:
        """Apply the compaction rule at ``revision`` (see the module docstring)."""
        revs = self.revs
        i = first_retained(self.kvs, len(revs), revision)
        if i:
            del revs[:i]
            # A new list rather than an in-place delete: a snapshot view being encoded may
            # hold the old one (see ``KeyIndex.view``), which must only ever grow at its end.
            self.kvs = self.kvs[i:]


class KeyIndex:
    """All keys' histories plus the compaction triggers; mutable, owned by one store."""

    __slots__ = ("_histories", "_holds", "_order", "_superseded", "_tombstones", "_trim_to")

    def __init__(self) -> None:
        self._histories: dict[bytes, KeyHistory] = {}
        self._order = SortedList()
        # (revision, key): the key has a record older than ``revision`` that becomes
        # droppable once the compact revision reaches ``revision``.
        self._superseded: deque[tuple[int, bytes]] = deque()
        # (revision, key): a tombstone at ``revision``, droppable once compaction passes it.
        self._tombstones: deque[tuple[int, bytes]] = deque()
        self._trim_to = 0
        """The latest compaction point; :meth:`trim` catches the histories up with it."""
        self._holds: dict[int, int] = {}
        """Revision -> open paged reads at it; trimming stops at the oldest (see :meth:`hold`)."""

    def __len__(self) -> int:
        """Keys with any retained record (live or not)."""
        return len(self._histories)

    # -- reads ----------------------------------------------------------------------------

    def get(self, key: bytes) -> KeyHistory | None:
        return self._histories.get(key)

    def latest(self, key: bytes) -> KeyValue | None:
        """The live record of ``key`` at the newest revision written, if any."""
        history = self._histories.get(key)
        return None if history is None else history.latest()

    def scan(self, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, KeyHistory]]:
        """``(key, history)`` for every retained key in ``[start, end)``, ascending."""
        histories = self._histories
        if end is None:
            keys = self._order.irange(minimum=start)
        elif end <= start:
            return
        elif end == start + b"\x00":
            history = histories.get(start)
            if history is not None:
                yield start, history
            return
        else:
            keys = self._order.irange(start, end, inclusive=(True, False))
        for key in keys:
            yield key, histories[key]

    def scan_after(
        self, start: bytes, after: bytes | None, end: bytes | None
    ) -> Iterator[tuple[bytes, KeyHistory]]:
        """Like :meth:`scan`, but only keys after ``after`` (when given): a paged read resumes
        here, since an iterator kept across writes would break when the key order changes."""
        if after is None:
            yield from self.scan(start, end)
            return
        if end is not None and end <= after:
            return
        histories = self._histories
        for key in self._order.irange(after, end, inclusive=(False, False)):
            yield key, histories[key]

    def visible(self, start: bytes, end: bytes | None, revision: int) -> list[KeyValue]:
        """The live records a read of ``[start, end)`` at ``revision`` returns, by key."""
        found = []
        for _, history in self.scan(start, end):
            kv = history.at(revision)
            if kv is not None:
                found.append(kv)
        return found

    def view(self) -> tuple[list[bytes], dict[bytes, KeyHistory]]:
        """Every retained key ascending, and the live map from key to history, for a snapshot
        encoded while writes go on (:mod:`raftkube.mvcc.snapshot`).

        Only the key list is copied (the key order changes as keys come and go); the records
        are read later, from the live histories, by revision: a record list is only ever
        appended to with higher revisions (compaction replaces it by a new list), so the
        records up to a revision stay what they were, provided the caller :meth:`hold`s the
        compaction point it encodes at, so that trimming leaves them alone."""
        return list(self._order), self._histories

    def items(self) -> Iterator[tuple[bytes, KeyHistory]]:
        """Every retained key's history, ascending by key."""
        histories = self._histories
        for key in self._order:
            yield key, histories[key]

    # -- writes ---------------------------------------------------------------------------

    def append(self, kv: KeyValue) -> None:
        """Record a new revision of ``kv.key``; the caller guarantees revisions never go back."""
        key = kv.key
        rev = kv.mod_revision
        history = self._histories.get(key)
        if history is None:
            self._histories[key] = KeyHistory([rev], [kv])
            self._order.add(key)
        else:
            history.revs.append(rev)
            history.kvs.append(kv)
            self._superseded.append((rev, key))
        if kv.version == 0:
            self._tombstones.append((rev, key))

    def compact(self, revision: int) -> None:
        """Compact at ``revision``: what no read or watch at or after it can observe may go.
        Only the trim point moves here; :meth:`trim` drops the records, a batch at a time."""
        self._trim_to = max(self._trim_to, revision)

    def hold(self, revision: int) -> None:
        """Keep what a read at ``revision`` sees until :meth:`release`: trimming stops at the
        oldest held revision (a paged range read, opened before a compaction above it)."""
        self._holds[revision] = self._holds.get(revision, 0) + 1

    def release(self, revision: int) -> None:
        """End one :meth:`hold` of ``revision``."""
        left = self._holds[revision] - 1
        if left:
            self._holds[revision] = left
        else:
            del self._holds[revision]

    def _trim_point(self) -> int:
        """Where trimming may go now: the compaction point, or below it while a read holds an
        older revision (a handful of reads at most, so ``min`` over them is cheap)."""
        if not self._holds:
            return self._trim_to
        return min(self._trim_to, min(self._holds))

    @property
    def trim_pending(self) -> bool:
        """Whether some history still awaits trimming as far as it may go now."""
        superseded, tombstones = self._superseded, self._tombstones
        point = self._trim_point()
        return bool(
            (superseded and superseded[0][0] <= point) or (tombstones and tombstones[0][0] < point)
        )

    def trim(self, budget: int = TRIM_BATCH) -> None:
        """Apply the compaction rule to the keys of up to ``budget`` reached triggers."""
        revision = self._trim_point()
        superseded, tombstones, histories = self._superseded, self._tombstones, self._histories
        while budget > 0:
            if superseded and superseded[0][0] <= revision:
                key = superseded.popleft()[1]
            elif tombstones and tombstones[0][0] < revision:
                key = tombstones.popleft()[1]
            else:
                return
            budget -= 1
            history = histories.get(key)
            if history is None or history.compacted == revision:
                continue
            history.compact(revision)
            history.compacted = revision
            if not history.revs:
                del histories[key]
                self._order.remove(key)

    def trim_all(self) -> None:
        """Finish every pending trim now (tests; a store that must be minimal at once)."""
        while self.trim_pending:
            self.trim()

    # -- restore --------------------------------------------------------------------------

    @classmethod
    def from_histories(cls, histories: Iterable[list[KeyValue]]) -> KeyIndex:
        """Rebuild an index (triggers included) from retained histories, e.g. after a snapshot;
        the lists become the index's own (a loader builds them for it: no copy of 150,000
        records).

        Triggers already passed by the old compaction point are harmless: the
        next compaction pops them and the rule drops nothing more from those keys.
        """
        index = cls()
        superseded: list[tuple[int, bytes]] = []
        tombstones: list[tuple[int, bytes]] = []
        for kvs in histories:
            if not kvs:
                continue
            key = kvs[0].key
            revs = list(map(_MOD_REVISION, kvs))
            index._histories[key] = KeyHistory(revs, kvs)
            if len(revs) > 1:
                superseded.extend([(rev, key) for rev in revs[1:]])
            tombstones.extend([(kv.mod_revision, key) for kv in kvs if kv.version == 0])
        index._order = SortedList(index._histories)
        index._superseded = deque(sorted(superseded))
        index._tombstones = deque(sorted(tombstones))
        return index
