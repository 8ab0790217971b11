"""The cyclic collector's thresholds for a fuzz process (a run, a replay, each worker).

A fuzz process takes the members' thresholds (:data:`raftkube.tuning.GC_THRESHOLDS`) except
for the young generation, which is much larger, because its objects live differently. A
member's young objects are a request's temporaries, dead by the next collection. A fuzz
example's objects mostly live as long as the example: the timeline keeps every event and
message, the shadow every spec state, the history every operation, until the run is let go
of (:meth:`raftkube_fuzz.example.Run.close`) and reference counting frees them. A young pass
every 50,000 net allocations found most of them still alive, moved them to the middle generation
and walked them again there, a few percent of a kv run's CPU. With a young generation larger
than what an example leaves alive, a young pass finds little; the full collection after every
generation of examples (:mod:`raftkube_fuzz.suite_runner`) still runs as before. What it
costs is memory: cyclic garbage (an ended world, see ``Run.close``) waits longer for a pass,
some 25 MB more peak RSS on a kv run. The figures are in docs/performance.md.
"""

from __future__ import annotations

import gc
from typing import Final

from raftkube.tuning import GC_THRESHOLDS

FUZZ_GC_THRESHOLDS: Final = (500_000, *GC_THRESHOLDS[1:])
"""A young pass every 500,000 net allocations; the older two as for a member."""


def tune_fuzz_gc() -> None:
    """Apply :data:`FUZZ_GC_THRESHOLDS` to this process (call once, at start-up)."""
    gc.set_threshold(*FUZZ_GC_THRESHOLDS)
