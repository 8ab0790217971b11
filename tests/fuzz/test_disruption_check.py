"""``NoTaintingInFullDisruption`` on the store's revisions (:mod:`raftkube_fuzz.checks.disruption`,
through :class:`~raftkube_fuzz.checks.cluster_state.ClusterObserver`): once every node has been
down for the settling time, no NoExecute taint of the node lifecycle controller is added; the
window upstream allows (the pass that enters master disruption mode), the swap of one taint for
the other, disturbances and overlapping leaders are not judged."""

from __future__ import annotations

import json
from typing import Any

import pytest

from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.checks.disruption import DisruptionWatch
from raftkube_fuzz.violation import Violation
from raftkube_spec.kv.types import KeyValue

SETTLE = 4.0
RECOVERY = 20.0
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
NOT_READY = {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}
EXCLUDED = {"node.kubernetes.io/exclude-disruption": ""}


class Store:
    """Revisions written one at a time at given virtual times, as the run's ``written``
    grows; the settling time can be taken away (a lagging manager)."""

    def __init__(self) -> None:
        self.written: dict[int, tuple[KeyValue, ...]] = {}
        self.times: dict[int, float] = {}
        self.settle: float | None = SETTLE
        self.watch = DisruptionWatch(lambda: self.settle, RECOVERY)
        self.observer = ClusterObserver(disruption=self.watch, times=self.times)

    def node(
        self,
        at: float,
        name: str,
        ready: str,
        taints: tuple[dict[str, str], ...] = (),
        labels: dict[str, str] | None = None,
    ) -> None:
        obj: dict[str, Any] = {
            "kind": "Node",
            "metadata": {"name": name, "uid": f"uid-{name}", "labels": labels or {}},
            "spec": {"taints": list(taints)},
            "status": {"conditions": [{"type": "Ready", "status": ready}]},
        }
        revision = max(self.written, default=1) + 1
        self.times[revision] = at
        key = f"/registry/nodes/{name}".encode()
        self.written[revision] = (KeyValue(key, 2, revision, 1, json.dumps(obj).encode()),)
        self.observer.follow(self.written)


def both_down(at: float = 30.0) -> Store:
    """Two Ready nodes; ``a`` goes Unknown at ``at - 1`` and ``b`` at ``at``."""
    store = Store()
    store.node(0.0, "a", "True")
    store.node(0.0, "b", "True")
    store.node(at - 1, "a", "Unknown")
    store.node(at, "b", "Unknown")
    return store


def test_a_taint_added_once_every_node_has_been_down_long_enough_is_a_violation() -> None:
    store = both_down()
    with pytest.raises(Violation) as caught:
        store.node(30.0 + SETTLE, "a", "Unknown", (UNREACHABLE,))
    assert caught.value.prop == "NoTaintingInFullDisruption"
    assert "a tainted node.kubernetes.io/unreachable" in str(caught.value)


def test_a_taint_added_in_the_pass_that_finds_every_node_down_is_upstreams_behaviour() -> None:
    store = both_down()
    store.node(30.0 + SETTLE - 0.5, "a", "Unknown", (UNREACHABLE,))


def test_taints_while_a_node_is_ready_are_not_judged() -> None:
    store = Store()
    store.node(0.0, "a", "True")
    store.node(0.0, "b", "False")
    store.node(100.0, "b", "False", (NOT_READY,))


def test_an_excluded_node_counts_in_no_zone() -> None:
    store = both_down()
    store.node(31.0, "c", "True", labels=EXCLUDED)
    with pytest.raises(Violation):
        store.node(40.0, "a", "Unknown", (UNREACHABLE,))


def test_a_taint_kept_or_swapped_is_not_a_taint_added() -> None:
    store = Store()
    store.node(0.0, "a", "True")
    store.node(0.0, "b", "False", (NOT_READY,))
    store.node(10.0, "a", "Unknown")
    store.node(40.0, "b", "False", (NOT_READY, {"key": "example.com/x", "effect": "NoSchedule"}))
    store.node(50.0, "b", "Unknown", (UNREACHABLE,))


def test_a_disturbance_or_a_new_leader_is_felt_for_the_recovery_time() -> None:
    store = both_down()
    store.watch.disturbed(31.0)
    store.node(31.0 + RECOVERY + SETTLE - 1, "a", "Unknown", (UNREACHABLE,))
    store.watch.leaders(60.0, {"kcm-1": 5})
    store.node(60.0 + RECOVERY + SETTLE - 1, "b", "Unknown", (UNREACHABLE,))
    with pytest.raises(Violation):
        store.node(60.0 + RECOVERY + SETTLE, "a", "Unknown", (UNREACHABLE, NOT_READY))


def test_overlapping_leaders_or_lagging_managers_are_not_judged() -> None:
    store = both_down()
    store.watch.leaders(0.0, {"kcm-0": 2, "kcm-1": 9})
    store.node(100.0, "a", "Unknown", (UNREACHABLE,))
    store.watch.leaders(0.0, {"kcm-1": 9})
    store.settle = None
    store.node(200.0, "b", "Unknown", (UNREACHABLE,))
    store.settle = SETTLE
    with pytest.raises(Violation):
        store.node(300.0, "b", "Unknown", (UNREACHABLE, NOT_READY))
