"""The whole observable state of the object API, as one immutable value.

The state is what the API server's storage holds: the store revision, the live objects in store
order, and the retained history of changes. A change records the object before and after one
write, which is enough both to replay events to a watch and to roll the live objects back to
any retained revision for a list at an exact resourceVersion, so no snapshot is kept apart.

Compaction follows the store underneath (etcd and raftkube's MVCC store): compacting at ``C``
keeps revision ``C`` readable and its change watchable, so after it the history holds exactly the
changes at revisions ``>= C``, reads are possible at ``C`` or later, and a watch can start from
``C - 1`` (it asks for what came after).
"""

from __future__ import annotations

import bisect
import enum

import attrs

from raftkube_spec.kube.objects import Object, ObjectKey


class EventType(enum.Enum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@attrs.frozen
class WatchEvent:
    """One event as a watcher receives it: ``{"type": ..., "object": ...}``."""

    type: EventType
    object: Object


@attrs.frozen
class Change:
    """One write: ``before`` is ``None`` for a creation and ``after`` is ``None`` for a deletion."""

    revision: int
    key: ObjectKey
    before: Object | None
    after: Object | None


Entry = tuple[ObjectKey, Object]


def _sort_key(entry: Entry) -> tuple[str, str]:
    return entry[0].sort_key


@attrs.frozen(cache_hash=True)
class KubeState:
    """``revision`` starts at 1 like the store's; ``compact_revision == 0`` means never compacted.

    ``objects`` is sorted by :attr:`ObjectKey.sort_key`; ``changes`` ascend by revision, one
    per revision, and hold every retained write.
    """

    revision: int = 1
    compact_revision: int = 0
    objects: tuple[Entry, ...] = ()
    changes: tuple[Change, ...] = ()

    def get(self, key: ObjectKey) -> Object | None:
        i = bisect.bisect_left(self.objects, key.sort_key, key=_sort_key)
        if i < len(self.objects) and self.objects[i][0] == key:
            return self.objects[i][1]
        return None

    def written(self, key: ObjectKey, before: Object | None, after: Object | None) -> KubeState:
        """The state after one write at the next revision: ``after`` replaces ``before``.

        The caller has already stamped ``after`` with that revision as its resourceVersion.
        """
        revision = self.revision + 1
        i = bisect.bisect_left(self.objects, key.sort_key, key=_sort_key)
        present = i < len(self.objects) and self.objects[i][0] == key
        tail = self.objects[i + 1 :] if present else self.objects[i:]
        middle: tuple[Entry, ...] = () if after is None else ((key, after),)
        return KubeState(
            revision=revision,
            compact_revision=self.compact_revision,
            objects=(*self.objects[:i], *middle, *tail),
            changes=(*self.changes, Change(revision, key, before, after)),
        )


def initial_state() -> KubeState:
    return KubeState()
