"""``AtMostOneLeader`` on the real Lease writes (:mod:`raftkube_fuzz.cluster.leadership`): a
takeover while the previous holder may still act is a violation only when the new holder had
not watched the record for ``leaseDurationSeconds`` of its own clock; and the wall-clock step
the cluster suite uses to expose such a takeover leaves the monotonic clock alone."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.cluster.leadership import LEASE_KEY, LeadershipLog
from raftkube_fuzz.violation import Violation
from raftkube_fuzz.world.clock import SimClock
from raftkube_spec.kv.types import KeyValue


class Leases:
    """Lease revisions written one at a time, each stamped with the candidates' clocks (which
    the test sets) as the first store member applies it."""

    def __init__(self) -> None:
        self.written: dict[int, tuple[KeyValue, ...]] = {}
        self.clocks = {"kcm-0": 0.0, "kcm-1": 0.0}
        self.log = LeadershipLog(lambda: max(self.written, default=1))
        self.log.clocks = {name: (lambda n=name: self.clocks[n]) for name in self.clocks}
        self.observer = ClusterObserver(self.log)

    def write(self, holder: str, duration: int = 15) -> None:
        revision = max(self.written, default=1) + 1
        spec = {"holderIdentity": holder, "leaseDurationSeconds": duration}
        value = json.dumps({"kind": "Lease", "spec": spec}).encode()
        records = (KeyValue(LEASE_KEY, 2, revision, 1, value),)
        self.log.lease_written(revision, records)
        self.written[revision] = records
        self.observer.follow(self.written)

    def advance(self, seconds: float, only: str | None = None) -> None:
        for name in self.clocks:
            if only is None or name == only:
                self.clocks[name] += seconds


def _led_by_kcm_1() -> Leases:
    leases = Leases()
    leases.write("kcm-1")
    leases.advance(2.0)
    leases.write("kcm-1")  # a renewal
    return leases


def test_a_takeover_after_the_lease_duration_on_the_new_holders_clock_is_upstreams_overlap() -> (
    None
):
    leases = _led_by_kcm_1()
    leases.advance(15.0)
    leases.write("kcm-0")
    assert leases.log.overlapping() == ("kcm-0", "kcm-1")


def test_a_clock_that_ran_fast_or_jumped_still_counts_its_own_seconds() -> None:
    leases = _led_by_kcm_1()
    leases.advance(15.0, only="kcm-0")  # 15 s on kcm-0's clock, none on kcm-1's
    leases.write("kcm-0")


def test_an_early_takeover_while_the_holder_may_act_is_two_leaders() -> None:
    leases = _led_by_kcm_1()
    leases.advance(14.5)
    with pytest.raises(Violation) as caught:
        leases.write("kcm-0")
    assert caught.value.prop == "AtMostOneLeader"
    assert "14.500 s of its own clock" in str(caught.value)


def test_an_early_takeover_after_the_holder_stopped_is_not_two_leaders() -> None:
    leases = _led_by_kcm_1()
    leases.log.ended("kcm-1")  # crashed, or lost the Lease
    leases.advance(1.0)
    leases.write("kcm-0")
    assert leases.log.overlapping() == ()


def test_a_released_lease_may_be_taken_at_once() -> None:
    leases = _led_by_kcm_1()
    leases.write("")  # released (an empty holder)
    leases.write("kcm-0")


def test_a_renewal_measures_from_the_latest_record() -> None:
    leases = _led_by_kcm_1()
    leases.advance(10.0)
    leases.write("kcm-1")  # renewed: the wait starts again
    leases.advance(10.0)
    with pytest.raises(Violation):
        leases.write("kcm-0")


def test_a_wall_clock_step_moves_the_wall_clock_only() -> None:
    async def main() -> None:
        clock = SimClock(offset=2.0)
        clock.set_wall_offset(-30.0)
        assert (clock.now(), clock.wall()) == (2.0, -28.0)
        await clock.sleep_until(3.0)  # timeouts run on the monotonic clock
        assert trio.current_time() == 1.0
        clock.resync()
        assert clock.wall() == clock.now() == 3.0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
