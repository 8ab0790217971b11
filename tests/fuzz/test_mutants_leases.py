"""Behaviour scenario of the leader-election mutant (:mod:`raftkube_fuzz.mutants.leases`):
the patch changes what a small deterministic scenario does, and is fully undone on exit. The
marker diff of every mutant is in ``test_mutants.py``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio

from raftkube.controllers.leaderelection import (
    LeaderElectionConfig,
    LeaderElectionRecord,
    LeaderElector,
    micro_time,
)
from raftkube_fuzz.mutants.leases import micro_time_seconds
from tests.helpers.mutant_scenarios import Scenario, check_scenario

RENEWED = 1_767_225_600.25
"""When the holder last renewed, by its own wall clock."""

# --- scenarios: each returns what the mutant changes ---------------------------------------------


class OneLease:
    """A resource lock holding one record; remembers what it was asked to write."""

    identity = "b"

    def __init__(self, record: LeaderElectionRecord) -> None:
        self.record = record
        self.written: list[str] = []

    async def get(self) -> LeaderElectionRecord:
        return self.record

    async def create(self, record: LeaderElectionRecord) -> None:
        self.written.append(record.holder_identity)

    async def update(self, record: LeaderElectionRecord) -> None:
        self.written.append(record.holder_identity)

    async def record_event(self, message: str) -> None:
        pass

    def describe(self) -> str:
        return "kube-system/test"


def takeover_with_a_wall_clock_ahead() -> tuple[bool, list[str]]:
    """Candidate ``b`` reads ``a``'s record for the first time (so it saw it change just now,
    on its own clock) while its wall clock reads 30 s past the record's renewTime: whether it
    takes the Lease over, and what it wrote."""
    stamp = micro_time(RENEWED)
    lock = OneLease(LeaderElectionRecord("a", 15, stamp, stamp, 0))
    clock: Any = SimpleNamespace(now=lambda: 101.0)
    elector = LeaderElector(LeaderElectionConfig(lock), clock, wall=lambda: RENEWED + 30.0)
    took = trio.run(elector.try_acquire_or_renew)
    return took, lock.written


SCENARIOS: dict[str, Scenario] = {
    "lease-judged-by-remote-clock": (
        takeover_with_a_wall_clock_ahead,
        (False, []),
        (True, ["b"]),
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_patch_changes_behavior_and_is_undone(name: str) -> None:
    check_scenario(name, SCENARIOS[name])


def test_micro_times_read_back_as_written() -> None:
    assert micro_time_seconds(micro_time(RENEWED)) == RENEWED
    assert micro_time_seconds("") == float("-inf")
