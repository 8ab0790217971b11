"""A fuzz process's collector thresholds (raftkube_fuzz.gc_tuning)."""

from __future__ import annotations

import gc

from raftkube.tuning import GC_THRESHOLDS
from raftkube_fuzz.gc_tuning import FUZZ_GC_THRESHOLDS, tune_fuzz_gc


def test_a_fuzz_process_has_a_larger_young_generation_than_a_member() -> None:
    before = gc.get_threshold()
    try:
        tune_fuzz_gc()
        young, *older = gc.get_threshold()
    finally:
        gc.set_threshold(*before)
    assert (young, *older) == FUZZ_GC_THRESHOLDS
    assert young > GC_THRESHOLDS[0]
    assert tuple(older) == GC_THRESHOLDS[1:]
