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
