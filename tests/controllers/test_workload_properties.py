"""Hypothesis over the workload controllers' pure decisions: a rolling update driven by the
Deployment arithmetic alone stays within maxSurge/maxUnavailable at every step and finishes;
Endpoints subsets do not depend on the order pods are listed in; the deletion ranking picks
the same pods whatever the order."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from raftkube.controllers import deployment_util as du
from raftkube.controllers.controller_utils import pods_to_delete
from raftkube.controllers.endpoints import desired_subsets

Obj = dict[str, Any]

INT_OR_PERCENT = st.one_of(st.integers(0, 4), st.integers(0, 100).map(lambda n: f"{n}%"))


def _rs(name: str, size: int, available: int, day: int) -> Obj:
    return {
        "metadata": {
            "name": name,
            "uid": name,
            "creationTimestamp": f"2026-01-{day:02d}T00:00:00Z",
        },
        "spec": {"replicas": size},
        "status": {"replicas": size, "availableReplicas": available},
    }


@settings(max_examples=300)
@given(
    replicas=st.integers(1, 12),
    surge=INT_OR_PERCENT,
    unavailable=INT_OR_PERCENT,
    lag=st.booleans(),
)
def test_rolling_update_arithmetic_respects_its_bounds(
    replicas: int, surge: object, unavailable: object, lag: bool
) -> None:
    if surge in (0, "0%") and unavailable in (0, "0%"):
        unavailable = 1  # validation refuses both zero
    d = {"spec": {"replicas": replicas, "strategy": {"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": surge, "maxUnavailable": unavailable}}}}  # fmt: skip
    most, least = (replicas + du.max_surge(d), replicas - du.max_unavailable(d))
    old = _rs("old", replicas, replicas, 1)
    new = _rs("new", 0, 0, 2)
    for _ in range(10 * replicas + 10):
        if du.replicas(new) == replicas and du.replicas(old) == 0:
            break
        # New pods become available one step late with ``lag``; old pods go at once.
        new["status"]["availableReplicas"] = new["status"]["replicas"] if lag else du.replicas(new)
        new["status"]["replicas"] = du.replicas(new)
        if du.replicas(new) < replicas:
            grown = du.new_rs_new_replicas(d, [old, new], new)
            if grown != du.replicas(new):
                new["spec"]["replicas"] = grown
                if not lag:
                    new["status"]["availableReplicas"] = grown
                    new["status"]["replicas"] = grown
                assert du.replica_count([old, new]) <= most
                continue
        limit = du.max_scaled_down(d, [old, new], new)
        if limit > 0 and du.replicas(old) > 0:
            plan = du.cleanup_unhealthy_plan([old], limit)
            plan += du.scale_down_old_plan(d, [old, new], [old])
            for rs, size in plan:
                rs["spec"]["replicas"] = size
                rs["status"]["replicas"] = rs["status"]["availableReplicas"] = size
        assert du.replica_count([old, new]) <= most
        assert du.available_replica_count([old, new]) >= min(least, replicas)
    assert (du.replicas(new), du.replicas(old)) == (replicas, 0)


def _pod(i: int, ready: bool, port_name: str) -> Obj:
    return {
        "metadata": {"name": f"p{i}", "namespace": "ns", "uid": f"u{i}", "labels": {"app": "a"}},
        "spec": {"containers": [
            {"name": "c", "ports": [{"name": port_name, "containerPort": 8000 + i % 3}]}]},
        "status": {"phase": "Running", "podIP": f"10.0.{i // 200}.{i % 200 + 1}",
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }  # fmt: skip


@settings(max_examples=200)
@given(
    pods=st.lists(st.tuples(st.booleans(), st.sampled_from(["http", "web"])), max_size=12),
    data=st.data(),
)
def test_endpoints_are_the_same_whatever_the_pod_order(
    pods: list[tuple[bool, str]], data: st.DataObject
) -> None:
    service = {"metadata": {"name": "s", "namespace": "ns"},
               "spec": {"selector": {"app": "a"}, "ports": [
                   {"name": "http", "port": 80, "targetPort": "http"},
                   {"name": "metrics", "port": 9, "targetPort": 9090}]}}  # fmt: skip
    objs = [_pod(i, ready, name) for i, (ready, name) in enumerate(pods)]
    subsets = desired_subsets(service, objs)
    shuffled = data.draw(st.permutations(objs))
    assert desired_subsets(service, shuffled) == subsets
    seen = {
        (a["targetRef"]["name"], p["port"], field == "addresses")
        for s in subsets
        for field in ("addresses", "notReadyAddresses")
        for a in s.get(field) or []
        for p in s.get("ports") or []
    }
    want = set()
    for i, (ready, name) in enumerate(pods):
        want.add((f"p{i}", 9090, ready))
        if name == "http":
            want.add((f"p{i}", 8000 + i % 3, ready))
    assert seen == want


@settings(max_examples=200)
@given(
    specs=st.lists(
        st.tuples(st.booleans(), st.sampled_from(["Pending", "Running"]), st.booleans(),
                  st.integers(-2, 2), st.integers(1, 28)),
        min_size=1, max_size=8,
    ),
    diff=st.integers(1, 8),
    data=st.data(),
)  # fmt: skip
def test_deletion_choice_does_not_depend_on_listing_order(
    specs: list[tuple[bool, str, bool, int, int]], diff: int, data: st.DataObject
) -> None:
    pods = []
    for i, (scheduled, phase, ready, cost, hour) in enumerate(specs):
        # Distinct creation times: pods equal in every rank may go in either order upstream.
        day = i + 1
        pods.append({
            "metadata": {"name": f"p{i}", "uid": f"u{i}",
                         "creationTimestamp": f"2026-02-{day:02d}T00:00:00Z",
                         "annotations": {"controller.kubernetes.io/pod-deletion-cost": str(cost)}},
            "spec": {"nodeName": "n1"} if scheduled else {},
            "status": {"phase": phase, "conditions": [
                {"type": "Ready", "status": "True" if ready else "False",
                 "lastTransitionTime": f"2026-02-{day:02d}T{hour % 24:02d}:00:00Z"}]},
        })  # fmt: skip
    now = 1_790_000_000.0
    chosen = {p["metadata"]["name"] for p in pods_to_delete(pods, pods, diff, now)}
    shuffled = data.draw(st.permutations(pods))
    assert {p["metadata"]["name"] for p in pods_to_delete(shuffled, pods, diff, now)} == chosen
    assert len(chosen) == min(diff, len(pods))
    # Nobody scheduled goes after somebody unscheduled stays.
    unscheduled = {p["metadata"]["name"] for p in pods if not p["spec"].get("nodeName")}
    if len(chosen) < len(pods) and not unscheduled <= chosen:
        assert chosen <= unscheduled
