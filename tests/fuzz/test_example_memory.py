"""Nothing of a passed example outlives it, and the heap it freed goes back to the system.

A cluster fuzz run's resident memory is the high-water mark of its largest example
(docs/performance.md, Memory): the runner keeps no example it does not need, and the cluster
suite trims the C heap after each example's collection (:mod:`raftkube_fuzz.heap`).
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import pytest

from raftkube_fuzz.example import Run
from raftkube_fuzz.heap import can_release_free_heap, release_free_heap
from raftkube_fuzz.machine_context import MachineContext
from raftkube_fuzz.suite_runner import run_suite


def test_a_passed_run_is_gone_before_the_next_example_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session held the last run until the next one replaced it, so a long example's
    records stayed alive while the next example was drawn and its world built."""
    runs: list[weakref.ref[Run]] = []
    alive_at_start: list[int] = []
    real = MachineContext.started

    def started(self: MachineContext, run: Run) -> None:
        gc.collect()
        alive_at_start.append(sum(r() is not None for r in runs))
        runs.append(weakref.ref(run))
        real(self, run)

    monkeypatch.setattr(MachineContext, "started", started)
    result = run_suite(
        "raft", examples=3, seed=5, steps_per_example=4, traces_dir=tmp_path, state_dir=tmp_path
    )
    assert result.trace is None and result.error is None
    assert len(runs) >= 3
    assert alive_at_start == [0] * len(runs)


class _Ended:
    """What :meth:`MachineContext.finished` reads of a run."""

    def __init__(self, violation: object) -> None:
        self.violation = violation
        self.stats: dict[str, Any] = {
            "virtual_seconds": 1.0,
            "deliveries": 0,
            "events": 0,
            "faults": {},
        }


def test_a_failed_run_is_kept_for_shrinking_and_its_trace() -> None:
    session = MachineContext()
    passed, failed = _Ended(None), _Ended(object())
    session.started(passed)  # type: ignore[arg-type]
    session.finished(passed)  # type: ignore[arg-type]
    assert session.last_run is None
    session.started(failed)  # type: ignore[arg-type]
    session.finished(failed)  # type: ignore[arg-type]
    assert session.last_run is failed
    assert (session.examples, session.failures) == (2, 1)


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(
    not can_release_free_heap(),
    reason="the C library has no malloc_trim (glibc has; musl and macOS's do not), so there "
    "is no trim to test",
)
def test_freed_heap_below_a_live_chunk_is_handed_back() -> None:
    """glibc returns freed memory by itself only from the top of its heap: 64 MiB of
    4 KiB objects (each a malloc of its own) freed under one still alive stay resident
    until the heap is trimmed."""
    chunks = [bytes([i % 256]) * 4096 for i in range(16 * 1024)]  # written: resident
    keep = bytes([1]) * 4096  # allocated last: above the freed chunks
    del chunks
    before = _rss_mib()
    assert release_free_heap() is True
    after = _rss_mib()
    assert before - after > 32, (before, after)
    assert len(keep) == 4096
