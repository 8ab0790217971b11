"""Request conformance of the node lifecycle controller and the taint manager
(:mod:`raftkube_fuzz.checks.nodelifecycle_conformance`): each rule on hand-built views, the
monitor's collectors on hand-built caches, and ``eviction-ignores-disruption`` named by the
tainting rule in a cluster whose nodes are all cut off, which the real controller passes."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import trio

from raftkube.controllers.informer import SharedIndexInformer
from raftkube.controllers.synctrace import listen_to_syncs, sync_started
from raftkube_fuzz.checks import nodelifecycle_conformance as rules
from raftkube_fuzz.checks.nodelifecycle_conformance import PassView, Sighting
from raftkube_fuzz.cluster.conformance_monitor import CURRENT, ConformanceMonitor
from raftkube_fuzz.example import run_steps
from raftkube_fuzz.mutants import MUTANTS
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite
from raftkube_fuzz.violation import Violation
from raftkube_spec.control.records import NO_EXECUTE, NO_SCHEDULE, NOT_READY, UNREACHABLE
from raftkube_spec.kv.types import KeyValue
from tests.helpers.informers import cached_informer, set_cache

Obj = dict[str, Any]

NR_S, UR_S = (NOT_READY, NO_SCHEDULE), (UNREACHABLE, NO_SCHEDULE)
NR_X, UR_X = (NOT_READY, NO_EXECUTE), (UNREACHABLE, NO_EXECUTE)
NONE: frozenset[tuple[str, str]] = frozenset()


def keys(*taints: tuple[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(taints)


# --- the rules ----------------------------------------------------------------------------------


def test_the_no_schedule_worker_adds_and_removes_the_taint_the_view_calls_for() -> None:
    assert rules.no_schedule_write("Unknown", keys(NR_S), keys(UR_S)) is None
    assert rules.no_schedule_write("True", keys(UR_S), NONE) is None
    assert "adds the NoSchedule taint" in str(rules.no_schedule_write("Unknown", NONE, keys(NR_S)))
    assert "removes" in str(rules.no_schedule_write("False", keys(NR_S), NONE))
    assert "NoExecute" in str(rules.no_schedule_write("False", keys(UR_X), keys(NR_S)))


def view(start: float, *nodes: tuple[str, str | None], **kw: Any) -> PassView:
    """A monitor pass whose counted nodes are ``(name, Ready)``, all in zone ``z``."""
    return PassView(start, tuple((n, "z", r, True) for n, r in nodes), **kw)


def test_master_disruption_holds_from_the_first_pass_that_found_every_node_down() -> None:
    up, down = view(1, ("a", "True"), ("b", "True")), view(2, ("a", "Unknown"), ("b", "False"))
    assert rules.master_disruption([up, down], view(3, ("a", "Unknown")), "z") is not None
    # The pass that judged both down has not ended yet: the rate is still the old one.
    assert rules.master_disruption([up], down, "z") is None
    # The pass under way has seen a node Ready again: it may leave the mode.
    assert rules.master_disruption([up, down], view(3, ("a", "True")), "z") is None
    # The node was written Unknown by the pass itself: judged down there.
    written = view(2, ("a", "True"), ("b", "False"), unknown=frozenset({"a"}))
    assert rules.master_disruption([up, written], down, "z") is not None
    # A status write failed: the pass may not have counted the node.
    failed = view(2, ("a", "True"), ("b", "False"), failed=frozenset({"a"}))
    assert rules.master_disruption([up, failed], down, "z") is None
    # Another zone: not counted in the run, its queue keeps its rate.
    assert rules.master_disruption([up, down], down, "elsewhere") is None


def test_master_disruption_is_not_entered_when_the_ready_zone_dropped_out() -> None:
    """Upstream's ``handleDisruption`` compares with the zones it knew: if the only zone with
    a Ready node is gone from the next pass, every remaining zone "was" fully disrupted, so
    the mode is not entered and the rates stay."""
    before = PassView(1, (("a", "z", "Unknown", True), ("b", "y", "True", True)))
    after = PassView(2, (("a", "z", "Unknown", True),))
    assert rules.master_disruption([before, after], after, "z") is None


def test_the_tainting_pass_adds_the_view_s_taint_unless_every_zone_is_down() -> None:
    assert rules.tainting_write("Unknown", keys(NR_X), keys(UR_X), None) is None
    assert rules.tainting_write("False", NONE, keys(NR_X), None) is None
    assert "Ready 'True'" in str(rules.tainting_write("True", NONE, keys(UR_X), None))
    assert "spec's taint is" in str(rules.tainting_write("False", NONE, keys(UR_X), None))
    why = rules.tainting_write("Unknown", NONE, keys(UR_X), "every zone is down")
    assert "master disruption" in str(why)


def test_the_monitor_pass_swaps_at_once_and_untaints_only_as_upstream_does() -> None:
    swap = rules.monitor_taint_write(["False"], False, False, keys(UR_X), keys(NR_X))
    assert swap is None
    fresh = rules.monitor_taint_write(["Unknown"], False, False, NONE, keys(UR_X))
    assert "only the tainting pass" in str(fresh)
    # The pass read the node with the old taint; it was gone by the write.
    assert rules.monitor_taint_write(["False"], False, False, NONE, keys(NR_X), keys(UR_X)) is None
    wrong = rules.monitor_taint_write(["Unknown"], False, False, keys(UR_X), keys(NR_X))
    assert "swaps in" in str(wrong)
    kept = rules.monitor_taint_write(["Unknown"], False, False, keys(UR_X), NONE)
    assert "removes the NoExecute taint" in str(kept)
    assert rules.monitor_taint_write(["Unknown"], True, False, keys(UR_X), NONE) is None
    assert rules.monitor_taint_write(["Unknown"], False, True, keys(UR_X), NONE) is None
    assert rules.monitor_taint_write(["Unknown", "True"], False, False, keys(UR_X), NONE) is None


def test_the_probe_bound_follows_the_first_revision_with_a_renewal_no_earlier() -> None:
    revisions = [3, 5, 9]
    times = ["2026-01-01T00:00:10.000000Z", "2026-01-01T00:00:20.000000Z",
             "2026-01-01T00:00:15.000000Z"]  # fmt: skip
    # The kubelet's wall clock stepped back: 00:15 was first matched by revision 5's 00:20.
    assert rules.first_revision_renewed(revisions, times, times[2]) == 5
    assert rules.first_revision_renewed(revisions, times, times[0]) == 3
    observed = [(0.0, 2), (10.0, 4), (12.0, 5)]
    assert rules.probe_bound(1.0, observed, 5)[0] == 10.0
    assert rules.probe_bound(11.0, observed, 3)[0] == 11.0


def test_a_node_is_written_unknown_only_after_its_grace() -> None:
    assert rules.status_write("Unknown", 31.0, 20.0, 10.0, "") is None
    assert "grace period" in str(rules.status_write("Unknown", 30.0, 20.0, 10.0, ""))
    assert "only ever sets Unknown" in str(rules.status_write("False", 99.0, 20.0, 10.0, ""))


def test_eviction_delays_match_tolerations_as_upstream() -> None:
    taint = {"key": UNREACHABLE, "effect": NO_EXECUTE, "value": ""}
    exists = {"key": UNREACHABLE, "operator": "Exists", "effect": NO_EXECUTE}
    assert rules.eviction_delay([], [taint]) == 0.0
    assert rules.eviction_delay([exists], [taint]) is None
    assert rules.eviction_delay([{**exists, "tolerationSeconds": 300}], [taint]) == 300.0
    assert rules.eviction_delay([{**exists, "tolerationSeconds": -1}], [taint]) == 0.0
    other = {"key": UNREACHABLE, "operator": "Equal", "value": "x", "effect": NO_EXECUTE}
    assert rules.eviction_delay([other], [taint]) == 0.0
    assert rules.eviction_delay([exists], []) is None


def test_an_eviction_waits_for_its_toleration_since_the_taint_was_first_seen() -> None:
    assert rules.eviction_delete(5.0, [Sighting(5.0, "u", 0.0)]) is None
    tolerated = [Sighting(0.0, "u", 300.0), Sighting(100.0, "u", 300.0)]
    assert rules.eviction_delete(300.0, tolerated) is None
    assert "tolerationSeconds" in str(rules.eviction_delete(299.0, tolerated))
    # Seen untainted at 50, tainted again at 100: the new run counts from 100.
    again = [Sighting(50.0, "u", None), Sighting(100.0, "u", 300.0)]
    assert rules.eviction_delete(300.0, again) is not None
    assert rules.eviction_delete(400.0, again) is None
    # The earlier run still counts: the cancel may not have run yet (syncs run at once).
    assert rules.eviction_delete(300.0, [Sighting(0.0, "u", 300.0), *again]) is None
    # Another pod of that name: its run starts with it.
    renamed = [Sighting(0.0, "u", 1000.0), Sighting(100.0, "v", 300.0)]
    assert rules.eviction_delete(350.0, renamed) is not None
    assert rules.eviction_delete(400.0, renamed) is None
    assert "never saw" in str(rules.eviction_delete(1.0, []))


# --- the collectors ------------------------------------------------------------------------------


@attrs.define
class SetClock:
    """A clock the test sets (the monitor only reads it)."""

    t: float = 0.0

    def now(self) -> float:
        return self.t

    async def sleep_until(self, deadline: float) -> None:
        await trio.sleep_forever()

    def cancel_scope_at(self, deadline: float) -> trio.CancelScope:
        return trio.CancelScope()


def informer(
    group: str, resource: str, items: list[Obj], version: int, clock: SetClock
) -> SharedIndexInformer:
    return cached_informer(group, resource, items, version, clock)


def node(ready: str, taints: list[Obj] | None = None, rv: int = 2) -> Obj:
    return {
        "metadata": {"name": "sim-1", "uid": "n1", "resourceVersion": str(rv)},
        "spec": {"taints": taints or []},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def lease(renew: str, rv: int) -> Obj:
    return {
        "metadata": {"name": "sim-1", "namespace": "kube-node-lease", "resourceVersion": str(rv)},
        "spec": {"renewTime": renew},
    }


@contextlib.contextmanager
def watched(monitor: ConformanceMonitor) -> Iterator[Any]:
    monitor.watch("kcm-0")
    try:
        yield monitor.tracer()
    finally:
        CURRENT.set(None)
        listen_to_syncs(None)


RENEWED = "2026-01-01T00:00:10.000000Z"


@pytest.mark.parametrize(("at", "violates"), [(30.0, True), (31.0, False)])
def test_the_monitor_judges_an_unknown_write_by_when_its_lease_cache_took_the_renewal(
    at: float, violates: bool
) -> None:
    """The controller first saw the node at 0; its Lease cache was still before the renewal's
    revision (5) at 10 and had it at 12: the renewal counts from 10, so Unknown may be
    written from 30 on (grace 20 s)."""
    monitor = ConformanceMonitor()
    key = b"/registry/leases/kube-node-lease/sim-1"
    renewal = KeyValue(key, version=1, value=json.dumps(lease(RENEWED, 5)).encode())
    monitor.history.written(2, (KeyValue(b"/registry/nodes/sim-1", version=1, value=b"{}"),))
    monitor.history.written(5, (renewal,))
    clock = SetClock()
    nodes = informer("", "nodes", [node("True")], 4, clock)
    leases = informer("coordination.k8s.io", "leases", [], 4, clock)
    with watched(monitor) as trace:
        for t, version in ((0.0, 4), (10.0, 4), (12.0, 5)):
            clock.t = t
            set_cache(leases, [lease(RENEWED, 5)] if version == 5 else [], version)
            sync_started("node-lifecycle-monitor", "nodes", (nodes, leases))
        clock.t = at
        written = node("Unknown")
        trace("PUT", "/api/v1/nodes/sim-1/status", None, written)
    if violates:
        with pytest.raises(Violation, match=r"RequestConformance.*grace period"):
            monitor.check()
    else:
        monitor.check()
    assert monitor.judged == {"node-lifecycle-monitor": 1}


@pytest.mark.parametrize(("at", "violates"), [(299.0, True), (300.0, False)])
def test_the_monitor_judges_an_eviction_by_the_taint_managers_sightings(
    at: float, violates: bool
) -> None:
    tolerant = {
        "metadata": {"name": "p", "namespace": "default", "uid": "p1", "resourceVersion": "3"},
        "spec": {"nodeName": "sim-1", "tolerations": [
            {"key": UNREACHABLE, "operator": "Exists", "effect": NO_EXECUTE,
             "tolerationSeconds": 300}]},
    }  # fmt: skip
    tainted = node("Unknown", [{"key": UNREACHABLE, "effect": NO_EXECUTE}])
    monitor = ConformanceMonitor()
    monitor.history.written(2, (KeyValue(b"/registry/nodes/sim-1", version=1, value=b"{}"),))
    pod_key = b"/registry/pods/default/p"
    monitor.history.written(3, (KeyValue(pod_key, version=1, value=json.dumps(tolerant).encode()),))
    clock = SetClock()
    caches = (
        informer("", "nodes", [tainted], 3, clock),
        informer("", "pods", [tolerant], 3, clock),
    )
    with watched(monitor) as trace:
        sync_started("taint-eviction", "node:sim-1", caches)
        clock.t = at
        sync_started("taint-eviction-fire", "default/p", caches)
        trace("DELETE", "/api/v1/namespaces/default/pods/p", None, None)
    if violates:
        with pytest.raises(Violation, match=r"RequestConformance.*tolerationSeconds"):
            monitor.check()
    else:
        monitor.check()


# --- teeth ---------------------------------------------------------------------------------------

CUT = [Step.of("nodes_cut", hold=30.0)]
CONFIG = {"servers": 1, "nodes": 2, "store_faults": "off"}


def _cut(mutant: str | None) -> Violation | None:
    suite = get_suite("cluster")
    with MUTANTS[mutant].patch() if mutant else contextlib.nullcontext():
        run = run_steps(suite, {**suite.default_config, **CONFIG}, 7, CUT, mutant=mutant)
    return run.violation


def test_a_controller_that_ignores_master_disruption_is_named_tainting_a_cut_off_node() -> None:
    violation = _cut("eviction-ignores-disruption")
    assert getattr(violation, "prop", None) == "RequestConformance", violation
    assert "node-lifecycle-tainting on" in str(violation)
    assert "in master disruption" in str(violation)


def test_the_real_controller_taints_nothing_when_every_node_is_cut_off() -> None:
    assert _cut(None) is None
