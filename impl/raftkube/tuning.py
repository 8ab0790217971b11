"""Process-wide settings for the long-running, allocation-heavy processes (a member, the
benchmark client, a fuzz run and each of its workers).

Every request allocates a few dozen short-lived objects (decoded maps, attrs records, Trio's
bookkeeping). With CPython's default thresholds (700, 10, 10) the cyclic collector runs a
young-generation pass every 700 net allocations and, every 100 of those, a pass over the middle
generation, so under load it runs thousands of times a second and each pass also walks the
survivors of the last. Nearly all of these objects die by reference counting, not by the
collector, so collecting less often frees the same memory at a fraction of the CPU: measured on
``raftkube bench put`` with 256 clients, about 10% less CPU per acknowledged write (see
docs/performance.md); a fuzz run, which allocates a spec state, an event and a message or two
per simulated delivery, spends about 13% less CPU on a fixed kv workload. Cyclic garbage
(tracebacks, cancelled tasks) is still collected, only in bigger batches.
"""

from __future__ import annotations

import gc
from typing import Final

GC_THRESHOLDS: Final = (50_000, 20, 100)
"""Young generation every 50,000 net allocations; the older two as CPython scales them."""


def tune_gc() -> None:
    """Apply :data:`GC_THRESHOLDS` to this process (call once, at start-up)."""
    gc.set_threshold(*GC_THRESHOLDS)


def freeze_long_lived() -> None:
    """Move every object the collector tracks now into its permanent generation, which no
    collection examines again (``gc.freeze``): a member calls it once its store is loaded
    and whenever :func:`middle_generation_due` says so.

    A member's store is most of its heap: hundreds of thousands to millions of records that
    live until a compaction drops them (freed then by reference counting, frozen or not). With
    :data:`GC_THRESHOLDS` the middle generation gathers the survivors of 20 young collections,
    most of them new records, and one pass over them took 0.5-1.4 s (load 4-19), longer than
    the election timeout; a full collection of the whole store takes seconds. The cost:
    cyclic garbage that has survived a young collection when a freeze comes, or a frozen
    cycle that dies later, is never collected (reference counting frees everything else), so
    this is for the member process, whose heap is the store, and not for a process that
    churns through cyclic structures."""
    gc.freeze()


RECLAIM_GROWTH: Final = 4
"""A reclaim is due once the frozen objects are this many times what they were after the
last one (or after the store was loaded)."""
RECLAIM_FLOOR: Final = 1_000_000
"""The smallest baseline a reclaim is judged against: a member holding a small store freezes
few objects, and a reclaim of them would be a short pass made for nothing."""


def reclaim_due(frozen: int, baseline: int) -> bool:
    """Whether ``frozen`` objects (``gc.get_freeze_count()``) have outgrown ``baseline``, the
    count after the last :func:`reclaim_frozen`: the safety net against what
    :func:`freeze_long_lived` costs. Frozen cycles that died are never collected, so a member
    that ran for days would hold every cycle that was alive (a task's frames, a pending
    request's exception) at some freeze; the frozen count grows with the store too, so a
    growth of :data:`RECLAIM_GROWTH` times bounds that garbage to a multiple of the live heap
    at the price of one full collection per such growth."""
    return frozen > RECLAIM_GROWTH * max(baseline, RECLAIM_FLOOR)


def reclaim_frozen() -> int:
    """Unfreeze, collect every generation, freeze again; return the frozen count after it.
    One full pass over the heap: seconds for a store of millions of records, so a member
    logs it and does it only when :func:`reclaim_due` says so."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def middle_generation_due(
    counts: tuple[int, int, int] | None = None, thresholds: tuple[int, int, int] | None = None
) -> bool:
    """Whether the next young collection would also collect the middle generation
    (``gc.get_count()`` and ``gc.get_threshold()`` unless given): the moment to
    :func:`freeze_long_lived`, which empties it, so that pass finds next to nothing. Asked a
    few times a second: a young collection comes every 50,000 net allocations, seconds apart
    in a member, and freezing is a constant-time splice of the collector's lists."""
    counts = gc.get_count() if counts is None else counts
    thresholds = gc.get_threshold() if thresholds is None else thresholds
    return counts[1] >= thresholds[1] - 1
