"""A range read served a bounded step at a time, at one revision, while the store goes on.

Why not :meth:`MvccStore.apply`: a range over a million keys materialises the whole answer in
one call, several seconds on this project's machines, during which the member's event loop
sends no heartbeat and its followers elect a new leader. A :class:`RangeReader` instead visits
at most a bounded number of keys per :meth:`~RangeReader.step`, so its caller (the client
listener) can return to the event loop between steps, and hands the answer out in parts of a
bounded size, so the listener sends each part as soon as it is full instead of building the
whole answer first.

Consistency without a copy
--------------------------
The reader fixes its revision when it opens and reads every key at that revision, so the
answer is the one :meth:`MvccStore.apply` would have given then, however many writes are
applied between steps: the index is multi-version, a later write only appends records of a
higher revision (invisible at the reader's), and a key created later has no record a read at
that revision sees. Two things could still change under it, and both are handled:

* Compaction. A compaction above the reader's revision would let the index trim records the
  reader still needs. The reader holds its revision in the index (:meth:`KeyIndex.hold`), and
  trimming stops at the oldest held revision until the reader closes. The compaction itself
  (its revision, and refusing new reads below it) is unaffected, as is every other member:
  trimming is a member's own housekeeping, invisible to reads, watches and snapshot images.
  etcd reads a range inside one backend read transaction, which a compaction cannot cut into
  either; the cost is the same as there: history awaiting trim stays while the read lasts.
* The key order. The index's sorted key list may gain and lose keys between steps, so the
  reader keeps no iterator across steps: each step resumes after the last key it visited.

A follower that installs a snapshot replaces its whole store; a reader of the old one keeps
reading the old, now frozen, index, which still answers at the reader's revision.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from raftkube.mvcc.index import KeyIndex, decode_range
from raftkube.mvcc.store import MvccStore
from raftkube_spec.kv.errors import ErrorCode, KVError
from raftkube_spec.kv.requests import RangeRequest
from raftkube_spec.kv.responses import RangeResponse
from raftkube_spec.kv.types import KeyValue, ResponseHeader

STEP_KEYS = 2048
"""Keys a step visits at most: a few milliseconds of Python, so a caller that yields between
steps keeps its event loop responsive however large (or however sparse) the range is."""


@attrs.define(eq=False)
class RangeReader:
    """One range request read at one revision, a step at a time. Open it with
    :func:`open_range`; call :meth:`step` until :attr:`done`; close it (it is a context
    manager) so the index may trim below its revision again."""

    _index: KeyIndex
    _start: bytes
    _end: bytes | None
    _single: bool
    revision: int
    """The revision every key is read at."""
    header_revision: int
    """The store's revision when the read opened, which the answer's header carries (as
    :meth:`MvccStore.apply` gives it, also for a read at an older revision)."""
    _limit: int
    _keys_only: bool
    _count_only: bool
    _part_bytes: int
    _overhead: int
    count: int = 0
    """Live keys found so far; the answer's ``count`` once :attr:`done`."""
    done: bool = False
    _after: bytes | None = None
    _part: list[KeyValue] = attrs.Factory(list)
    _part_size: int = 0
    _closed: bool = False

    @property
    def more(self) -> bool:
        """The answer's ``more`` (meaningful once :attr:`done`): the limit cut the answer (a
        count-only answer has none, as etcd's)."""
        return not self._count_only and 0 < self._limit < self.count

    def step(self, max_keys: int = STEP_KEYS) -> list[KeyValue] | None:
        """Visit up to ``max_keys`` more keys; a part of the answer, in key order, when one is
        full (the next record would take it over the part size) or the read is done (the last
        part, possibly empty), else None: call again, after yielding to whatever else waits.
        A part holds at least one record however large that record is."""
        if self.done:
            raise RuntimeError("the range read is already done")
        for key, kv in self._visit(max_keys):
            if kv is not None and not self._count_only and not 0 < self._limit <= self.count:
                if self._keys_only:
                    kv = KeyValue(
                        kv.key, kv.create_revision, kv.mod_revision, kv.version, b"", kv.lease
                    )
                cost = len(kv.key) + len(kv.value) + self._overhead
                if self._part and self._part_size + cost > self._part_bytes:
                    # This record opens the next part: hand out the full one and visit this
                    # key again next step (``_after`` has not moved past it).
                    return self._take_part()
                self._part.append(kv)
                self._part_size += cost
            if kv is not None:
                self.count += 1
            self._after = key
        return self._take_part() if self.done else None

    def response(self, kvs: tuple[KeyValue, ...] = ()) -> RangeResponse:
        """The answer's last part as a :class:`RangeResponse` (``more`` and ``count`` are
        known only once the read is done)."""
        if not self.done:
            raise RuntimeError("the range read is not done")
        return RangeResponse(
            ResponseHeader(self.header_revision), kvs=kvs, more=self.more, count=self.count
        )

    def close(self) -> None:
        """Release the revision held in the index; idempotent."""
        if not self._closed:
            self._closed = True
            self._index.release(self.revision)

    def __enter__(self) -> RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------

    def _visit(self, max_keys: int) -> Iterator[tuple[bytes, KeyValue | None]]:
        """``(key, record a read at the revision sees)`` for up to ``max_keys`` keys after the
        last one visited; sets :attr:`done` when the range is exhausted."""
        index, at = self._index, self.revision
        if self._single:
            history = index.get(self._start)
            self.done = True
            if history is not None:
                yield self._start, history.at(at)
            return
        scan = index.scan_after(self._start, self._after, self._end)
        for visited, (key, history) in enumerate(scan):
            if visited == max_keys:
                return
            yield key, history.at(at)
        self.done = True

    def _take_part(self) -> list[KeyValue]:
        part, self._part, self._part_size = self._part, [], 0
        return part


def open_range(
    store: MvccStore, req: RangeRequest, *, part_bytes: int, overhead: int
) -> RangeReader | KVError:
    """Open a paged read of ``req`` on ``store``, or the error :meth:`MvccStore.apply` would
    give it (an empty key, a compacted or future revision), changing nothing.

    ``part_bytes`` bounds a part by the estimate ``len(key) + len(value) + overhead`` per
    record (the caller's framing decides both)."""
    if not req.key:
        return KVError(code=ErrorCode.EMPTY_KEY, header=ResponseHeader(store.revision))
    bad = store.read_revision_error(req.revision)
    if bad is not None:
        return KVError(code=bad, header=ResponseHeader(store.revision))
    at = req.revision if req.revision > 0 else store.revision
    if req.range_end:
        start, end = decode_range(req.key, req.range_end)
        single = end is not None and end == start + b"\x00"
    else:
        start, end, single = req.key, None, True
    index = store.index
    index.hold(at)
    return RangeReader(
        index,
        start,
        end,
        single,
        at,
        store.revision,
        req.limit,
        req.keys_only,
        req.count_only,
        part_bytes,
        overhead,
    )
