"""Cordon in the ``cluster`` suite: ``kubectl cordon`` keeps new pods off a node and evicts
nothing, and eventual stable reconciliation accepts a pod left Pending when the only room is on
a cordoned node (upstream's scheduler filters ``spec.unschedulable`` nodes). One short run of
the whole control plane with fixed steps, and hand-made revisions for the check itself."""

from __future__ import annotations

import json
from typing import Any

from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.checks.reconciliation import unreconciled
from raftkube_fuzz.example import run_steps
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite
from raftkube_spec.kv.types import KeyValue

Obj = dict[str, Any]

STEPS = [
    Step.of("apply_rs", name="rs-b", replicas=1),
    Step.of("long_wait", seconds=5.0),
    Step.of("cordon", node="sim-0"),
    Step.of("cordon", node="sim-1"),
    Step.of("long_wait", seconds=5.0),
    Step.of("uncordon", node="sim-1"),
    Step.of("long_wait", seconds=5.0),
    Step.of("apply_rs", name="rs-a", replicas=3),
    Step.of("long_wait", seconds=10.0),
]
"""``rs-b``'s pod lands on some node before the cordons; then sim-0 is cordoned (and stays),
sim-1 cordoned and uncordoned again; ``rs-a``'s three 1500m pods all want room, and sim-1
alone may take them: two fit there (one if ``rs-b``'s is there too), the rest stay Pending
though sim-0 has room."""
CONFIG = {"servers": 1, "nodes": 2, "store_faults": "off"}


def test_a_cordoned_node_gets_no_new_pods_and_keeps_its_own() -> None:
    suite = get_suite("cluster")
    run = run_steps(suite, {**suite.default_config, **CONFIG}, 7, STEPS)
    # The end check judged reconciliation with pods Pending while sim-0 had room.
    assert run.violation is None, run.violation
    observer: ClusterObserver = run.extras["observer"]
    nodes = {n["metadata"]["name"]: n for n in observer.of("Node")}
    assert nodes["sim-0"]["spec"].get("unschedulable") is True
    assert not nodes["sim-1"]["spec"].get("unschedulable")
    pods = observer.of("Pod", "default")
    where = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods}
    rs_a = [name for name in where if name.startswith("rs-a-")]
    rs_b = [name for name in where if name.startswith("rs-b-")]
    assert len(rs_a) == 3 and len(rs_b) == 1, where
    assert all(where[name] in (None, "sim-1") for name in rs_a), where
    assert sum(where[name] == "sim-1" for name in rs_a + rs_b) == 2, where
    # Cordon evicts nothing: rs-b's pod is where it was bound, wherever that was.
    assert where[rs_b[0]] in ("sim-0", "sim-1")
    texts = [line.text for line in run.timeline.lines()]
    assert any("user: cordon sim-0: node/sim-0 cordoned" in t for t in texts)
    assert any("user: uncordon sim-1: node/sim-1 uncordoned" in t for t in texts)


UNSCHEDULABLE = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def _node(name: str, cordoned: bool, tainted: bool) -> Obj:
    spec: Obj = {"taints": [UNSCHEDULABLE] if tainted else []}
    if cordoned:
        spec["unschedulable"] = True
    return {"kind": "Node", "metadata": {"name": name}, "spec": spec,
            "status": {"allocatable": {"cpu": "4"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}  # fmt: skip


def _pod(name: str, node: str) -> Obj:
    running = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": f"u-{name}",
                     "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "uid": "u-rs"}]},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1500m"}}}],
                 **({"nodeName": node} if node else {})},
        "status": running if node else {"phase": "Pending"},
    }  # fmt: skip


RS = {"kind": "ReplicaSet", "metadata": {"name": "rs", "namespace": "default", "uid": "u-rs"},
      "spec": {"replicas": 3}}  # fmt: skip


def _problems(sim0: Obj) -> list[str]:
    """Reconciliation's verdict on rs x3: two pods fill sim-1, the third is unbound, and
    sim-0 (4 cpu, empty) is as given."""
    sim1 = _node("sim-1", cordoned=False, tainted=False)
    objects = [("/registry/nodes/sim-0", sim0), ("/registry/nodes/sim-1", sim1),
               ("/registry/replicasets/default/rs", RS)]  # fmt: skip
    objects += [(f"/registry/pods/default/{n}", _pod(n, node))
                for n, node in (("p0", "sim-1"), ("p1", "sim-1"), ("p2", ""))]  # fmt: skip
    observer = ClusterObserver()
    observer.follow(
        {
            2 + i: (KeyValue(key.encode(), 2 + i, 2 + i, 1, json.dumps(obj).encode()),)
            for i, (key, obj) in enumerate(objects)
        }
    )
    return unreconciled(observer)


def test_a_pod_pending_when_the_only_room_is_cordoned_is_reconciled() -> None:
    assert _problems(_node("sim-0", cordoned=True, tainted=True)) == []


def test_a_pod_pending_beside_an_uncordoned_node_with_room_is_not() -> None:
    assert _problems(_node("sim-0", cordoned=False, tainted=False)) == [
        "pod p2 is Pending, ready=False, on None"
    ]


def test_the_unschedulable_taint_must_follow_the_cordon() -> None:
    untainted = _problems(_node("sim-0", cordoned=True, tainted=False))
    assert untainted == ["node sim-0 is cordoned but [] are its taints"]
    stale = _problems(_node("sim-0", cordoned=False, tainted=True))
    assert stale[0] == (
        "node sim-0 is not cordoned but ['node.kubernetes.io/unschedulable'] are its taints"
    )
