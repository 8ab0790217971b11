"""The garbage-collection pause log: what it counts and when it warns (a fake timer, so no
timing is measured here); and when a member process freezes its long-lived objects."""

from __future__ import annotations

import gc
import logging
import weakref

import pytest

from raftkube.gcpauses import GcPauseLog
from raftkube.tuning import (
    RECLAIM_FLOOR,
    RECLAIM_GROWTH,
    middle_generation_due,
    reclaim_due,
    reclaim_frozen,
)


class FakeTimer:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def collection(log: GcPauseLog, timer: FakeTimer, generation: int, took: float) -> None:
    log("start", {"generation": generation})
    timer.now += took
    log("stop", {"generation": generation, "collected": 7, "uncollectable": 0})


def test_a_long_collection_is_logged_with_its_generation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    timer = FakeTimer()
    log = GcPauseLog(logging.getLogger("test.gc"), threshold=0.1, timer=timer)
    with caplog.at_level(logging.WARNING, logger="test.gc"):
        collection(log, timer, 0, 0.05)
        collection(log, timer, 2, 1.25)
    assert [r.getMessage() for r in caplog.records] == [
        "garbage collection took too long: generation 2, 1.250 s (expected under 0.100 s), "
        "7 objects collected"
    ]
    assert log.collections == [1, 0, 1]
    assert log.long_pauses == [0, 0, 1]
    assert log.longest == [pytest.approx(0.05), 0.0, pytest.approx(1.25)]


def test_a_stop_without_its_start_is_ignored() -> None:
    timer = FakeTimer()
    log = GcPauseLog(logging.getLogger("test.gc"), timer=timer)
    log("stop", {"generation": 1, "collected": 0})
    assert log.collections == [0, 0, 0]


def test_installed_it_sees_real_collections_and_uninstalls() -> None:
    with GcPauseLog(logging.getLogger("test.gc")) as log:
        assert log in gc.callbacks
        gc.collect(1)
    assert log not in gc.callbacks
    assert log.collections[1] >= 1


def test_the_middle_generation_is_due_one_young_collection_before_its_threshold() -> None:
    assert not middle_generation_due((1_000, 18, 3), (50_000, 20, 100))
    assert middle_generation_due((1_000, 19, 3), (50_000, 20, 100))
    assert middle_generation_due((0, 1, 0), (700, 2, 10))


def test_a_reclaim_is_due_once_the_frozen_objects_outgrow_their_baseline() -> None:
    baseline = 3 * RECLAIM_FLOOR
    assert not reclaim_due(RECLAIM_GROWTH * baseline, baseline)
    assert reclaim_due(RECLAIM_GROWTH * baseline + 1, baseline)
    # A small store is judged against the floor, not against its own few objects.
    assert not reclaim_due(RECLAIM_GROWTH * RECLAIM_FLOOR, 10)


def test_a_reclaim_collects_a_frozen_cycle_that_died() -> None:
    class Node:
        other: object = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    alive = weakref.ref(a)
    try:
        gc.freeze()
        del a, b
        gc.collect()
        assert alive() is not None  # frozen: no collection looks at it
        reclaim_frozen()
        assert alive() is None
    finally:
        gc.unfreeze()
