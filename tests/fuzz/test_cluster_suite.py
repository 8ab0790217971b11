"""The ``cluster`` suite: a short clean run, exact replay of its trace in a new process, and
checks that fail on the states they exist to reject.

A whole control plane per example makes these the heaviest fuzz tests; the budget is kept to
a few examples (``RAFTKUBE_CLUSTER_EXAMPLES`` raises it) and a short fixed step list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from raftkube.kubeclient import KubeConnectionError
from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.checks.reconciliation import unreconciled
from raftkube_fuzz.cluster.ambiguous import AmbiguousCreates
from raftkube_fuzz.example import run_steps
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suite_runner import run_suite
from raftkube_fuzz.suites import get_suite
from raftkube_fuzz.violation import Violation
from raftkube_spec.kv.types import KeyValue

EXAMPLES = int(os.environ.get("RAFTKUBE_CLUSTER_EXAMPLES", "2"))

STEPS = [
    Step.of("apply_deployment", name="dep-a", replicas=3, version=1),
    Step.of("apply_service", target="dep-a"),
    Step.of("long_wait", seconds=5.0),
    Step.of("host_crash", host="192.168.1.10", hold=1.0),
    Step.of("apply_rs", name="rs-a", replicas=2),
    Step.of("host_cut", host="kcm-0", hold=5.0),
    Step.of("apply_deployment", name="dep-a", replicas=2, version=2),
    Step.of("long_wait", seconds=5.0),
]
"""User actions racing a kubelet crash and the leading controller manager cut off."""


def test_clean_control_plane_survives_a_short_run(tmp_path: Path) -> None:
    outcome = run_suite(
        "cluster", examples=EXAMPLES, seed=2026, traces_dir=tmp_path, state_dir=tmp_path
    )
    assert outcome.trace is None and outcome.error is None, (
        outcome.trace.violation if outcome.trace else outcome.error
    )
    assert outcome.examples >= EXAMPLES


def test_a_cluster_trace_replays_byte_for_byte_in_a_new_process(tmp_path: Path) -> None:
    suite = get_suite("cluster")
    run = run_steps(suite, dict(suite.default_config), 7, STEPS)
    assert run.violation is None, run.violation
    assert run.faults["host_crash"] == 1 and run.faults["host_cut"] == 1
    path = run.trace().save(tmp_path / "cluster.json")
    result = subprocess.run(
        [sys.executable, "-m", "raftkube.cli", "fuzz", "replay", str(path), "--json"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "4242"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["digest_matches"] is True


# --- the checks on hand-made revisions ----------------------------------------------------------


def _kv(key: str, revision: int, obj: dict[str, Any] | None) -> KeyValue:
    if obj is None:
        return KeyValue(key.encode(), mod_revision=revision)
    return KeyValue(key.encode(), 2, revision, 1, json.dumps(obj).encode())


def _pod(name: str, node: str = "", owner: str = "", ready: bool = False, ip: str = "") -> dict:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "uid": f"u-{name}",
                            "labels": {"app": "web"}}  # fmt: skip
    if owner:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": owner, "uid": f"u-{owner}"}]
    status: dict[str, Any] = {"phase": "Running" if node else "Pending"}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True"}]
    if ip:
        status["podIP"] = ip
    return {"kind": "Pod", "metadata": meta, "spec": {"nodeName": node}, "status": status}


def _rs(name: str, replicas: int) -> dict:
    return {
        "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "default", "uid": f"u-{name}"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}},
    }


def _follow(observer: ClusterObserver, *writes: list[KeyValue]) -> None:
    observer.follow({observer.revision + 1 + i: tuple(w) for i, w in enumerate(writes)})


def test_a_rebound_pod_is_a_violation() -> None:
    observer = ClusterObserver()
    _follow(observer, [_kv("/registry/pods/default/p", 2, _pod("p", "sim-0"))])
    with pytest.raises(Violation) as caught:
        _follow(observer, [_kv("/registry/pods/default/p", 3, _pod("p", "sim-1"))])
    assert caught.value.prop == "BoundOnce"


def test_more_active_pods_than_ever_asked_is_a_violation() -> None:
    observer = ClusterObserver()
    writes = [[_kv("/registry/replicasets/default/rs", 2, _rs("rs", 2))]]
    for i in range(2):
        writes.append([_kv(f"/registry/pods/default/p{i}", 3 + i, _pod(f"p{i}", owner="rs"))])
    _follow(observer, *writes)
    with pytest.raises(Violation) as caught:
        _follow(observer, [_kv("/registry/pods/default/p2", 5, _pod("p2", owner="rs"))])
    assert caught.value.prop == "NoOverCreation"


def test_a_finished_pod_and_its_replacement_are_not_over_creation() -> None:
    # Seed 8's false alarm: a kubelet refused a pod (Failed, OutOfcpu), the ReplicaSet
    # controller replaced it, as upstream's does, and the Failed pod stays.
    observer = ClusterObserver()
    writes = [[_kv("/registry/replicasets/default/rs", 2, _rs("rs", 2))]]
    for i in range(2):
        writes.append([_kv(f"/registry/pods/default/p{i}", 3 + i, _pod(f"p{i}", owner="rs"))])
    refused = _pod("p1", "sim-0", owner="rs")
    refused["status"] = {"phase": "Failed", "reason": "OutOfcpu"}
    writes.append([_kv("/registry/pods/default/p1", 5, refused)])
    writes.append([_kv("/registry/pods/default/p2", 6, _pod("p2", owner="rs"))])
    _follow(observer, *writes)
    # A third active pod beside them still is one too many.
    with pytest.raises(Violation) as caught:
        _follow(observer, [_kv("/registry/pods/default/p3", 7, _pod("p3", owner="rs"))])
    assert caught.value.prop == "NoOverCreation"
    assert caught.value.evidence["not_counted_finished"] == ["p1"]


def test_a_create_with_an_unknown_outcome_allows_one_more_pod_of_its_owner() -> None:
    report = AmbiguousCreates()
    observer = ClusterObserver(ambiguous=report)
    pods = "/api/v1/namespaces/default/pods"

    def body(owner: str) -> dict:
        ref = {"kind": "ReplicaSet", "name": owner, "uid": f"u-{owner}", "controller": True}
        return {"metadata": {"generateName": f"{owner}-", "ownerReferences": [ref]}}

    # Outcomes that leave nothing to excuse: written and answered, refused, never sent
    # (no connection), another owner's, not a pod create (a binding).
    report("POST", pods, body("rs"), 201)
    report("POST", pods, body("rs"), KubeConnectionError("cannot connect", sent=False))
    report("POST", pods, body("rs"), 409)
    report("POST", pods, body("other"), 500)
    report("POST", f"{pods}/p0/binding", body("rs"), 500)
    writes = [[_kv("/registry/replicasets/default/rs", 2, _rs("rs", 2))]]
    for i in range(2):
        writes.append([_kv(f"/registry/pods/default/p{i}", 3 + i, _pod(f"p{i}", owner="rs"))])
    _follow(observer, *writes)
    with pytest.raises(Violation):
        _follow(observer, [_kv("/registry/pods/default/p2", 5, _pod("p2", owner="rs"))])
    # The store's write timed out after it committed (a 500), or the answer never came:
    # upstream's controller lowers its expectations and may create once more for each.
    report("POST", pods, body("rs"), 500)
    report("POST", pods, body("rs"), KubeConnectionError("POST: no answer within 10.0 s"))
    observer = ClusterObserver(ambiguous=report)
    _follow(observer, *writes)
    _follow(observer, [_kv(f"/registry/pods/default/p{i}", 3 + i, _pod(f"p{i}", owner="rs"))
                       for i in (2, 3)])  # fmt: skip
    with pytest.raises(Violation) as caught:
        _follow(observer, [_kv("/registry/pods/default/p4", 6, _pod("p4", owner="rs"))])
    assert caught.value.evidence["creates_with_unknown_outcome"] == 2
    assert caught.value.evidence["most_replicas_asked"] == 2


def test_endpoints_of_a_never_ready_pod_are_a_violation() -> None:
    observer = ClusterObserver()
    service = {"kind": "Service", "metadata": {"name": "svc", "namespace": "default"},
               "spec": {"selector": {"app": "web"}}}  # fmt: skip
    ready, unready = (
        _pod("a", "sim-0", ready=True, ip="10.0.0.1"),
        _pod("b", "sim-0", ip="10.0.0.2"),
    )

    def endpoints(*pods: dict) -> dict:
        addresses = [
            {
                "ip": p["status"]["podIP"],
                "targetRef": {
                    "kind": "Pod",
                    "uid": p["metadata"]["uid"],
                    "name": p["metadata"]["name"],
                },
            }
            for p in pods
        ]
        return {
            "kind": "Endpoints",
            "metadata": {"name": "svc", "namespace": "default"},
            "subsets": [{"addresses": addresses}],
        }

    _follow(
        observer,
        [_kv("/registry/services/default/svc", 2, service)],
        [_kv("/registry/pods/default/a", 3, ready), _kv("/registry/pods/default/b", 3, unready)],
        [_kv("/registry/endpoints/default/svc", 4, endpoints(ready))],
    )
    with pytest.raises(Violation) as caught:
        _follow(observer, [_kv("/registry/endpoints/default/svc", 5, endpoints(ready, unready))])
    assert caught.value.prop == "EndpointsListOnlyReady"


def test_a_pod_running_where_it_is_not_bound_is_a_violation() -> None:
    observer = ClusterObserver()
    _follow(observer, [_kv("/registry/pods/default/p", 2, _pod("p", "sim-0"))])
    observer.check_machines({"sim-0": [("default", "p")], "sim-1": []})
    with pytest.raises(Violation) as caught:
        observer.check_machines({"sim-0": [], "sim-1": [("default", "p")]})
    assert caught.value.prop == "PodRunsOnOneNode"


def test_reconciliation_reports_a_missing_replica_and_an_unready_node() -> None:
    observer = ClusterObserver()
    node = {"kind": "Node", "metadata": {"name": "sim-0"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}  # fmt: skip
    _follow(
        observer,
        [_kv("/registry/nodes/sim-0", 2, node)],
        [_kv("/registry/replicasets/default/rs", 3, _rs("rs", 2))],
        [_kv("/registry/pods/default/p0", 4, _pod("p0", "sim-0", "rs", ready=True))],
    )
    assert unreconciled(observer) == ["replicaset rs has 1 of 2"]
    _follow(observer, [_kv("/registry/pods/default/p1", 5, _pod("p1", "sim-0", "rs", True))])
    assert unreconciled(observer) == []
    down = {**node, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}
    _follow(observer, [_kv("/registry/nodes/sim-0", 6, down)])
    problems = unreconciled(observer)
    assert "node sim-0 is not Ready" in problems
    assert any(p.startswith("pod p0 ") for p in problems)
