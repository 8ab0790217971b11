"""The Deployment controller's request-conformance rules
(:mod:`raftkube_fuzz.checks.deployment_conformance`) on hand-built views, each with a write the
rollout allows and one it does not; the gathering of what a sync held as its writes are sent and
answered (:mod:`raftkube_fuzz.cluster.deployment_monitor`); and the monitor's wiring, from a
sync's start to the violation after the step."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from raftkube.controllers.informer import SharedIndexInformer
from raftkube.controllers.synctrace import listen_to_syncs, sync_started
from raftkube_fuzz.checks import deployment_conformance as rules
from raftkube_fuzz.checks.deployment_conformance import SetState
from raftkube_fuzz.cluster.conformance_monitor import CURRENT, ConformanceMonitor
from raftkube_fuzz.violation import Violation
from raftkube_spec.kv.types import KeyValue
from tests.helpers.informers import cached_informer

Obj = dict[str, Any]
D_UID = "uid-web"
RS_PATH = "/apis/apps/v1/namespaces/default/replicasets"


def template(version: int, pod_hash: str | None = None) -> Obj:
    labels = {"app": "web", **({"pod-template-hash": pod_hash} if pod_hash else {})}
    return {"metadata": {"labels": labels, "annotations": {"version": str(version)}},
            "spec": {"containers": [{"name": "app", "image": "sim"}]}}  # fmt: skip


def deployment(replicas: int = 3, version: int = 2, **spec: Any) -> Obj:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "uid": D_UID,
                     "resourceVersion": "2", "generation": 1},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": template(version),
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                 "revisionHistoryLimit": 10, **spec},
    }  # fmt: skip


def replica_set(version: int, replicas: int, available: int, *, rv: int = 3,
                desired: int | None = None, created: str = "") -> Obj:  # fmt: skip
    pod_hash = f"h{version}"
    annotations = {} if desired is None else {"deployment.kubernetes.io/desired-replicas":
                                              str(desired)}  # fmt: skip
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": f"web-{pod_hash}", "namespace": "default", "uid": f"uid-{pod_hash}",
            "resourceVersion": str(rv), "generation": 1,
            "creationTimestamp": created or f"2026-01-01T00:00:0{version}Z",
            "labels": {"app": "web", "pod-template-hash": pod_hash},
            "annotations": annotations,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                 "uid": D_UID, "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "spec": {"replicas": replicas,
                 "selector": {"matchLabels": {"app": "web", "pod-template-hash": pod_hash}},
                 "template": template(version, pod_hash)},
        "status": {"replicas": replicas, "availableReplicas": available,
                   "observedGeneration": 1},
    }  # fmt: skip


def state(name: str, replicas: int, available: int, new: bool = False) -> SetState:
    return SetState(name, replicas, available, new)


D = rules.spec_deployment(deployment())  # 3 replicas: maxSurge 1, maxUnavailable 0


# --- the rules -----------------------------------------------------------------------------------


def test_the_deployments_fenceposts_resolve_as_upstreams() -> None:
    assert (D.max_surge, D.max_unavailable) == (1, 0)
    four = rules.spec_deployment(deployment(4))
    assert (four.max_surge, four.max_unavailable) == (1, 1)
    zero = deployment(2, strategy={"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "10%"}})
    assert rules.spec_deployment(zero).max_unavailable == 1  # both 0: one may be unavailable


def test_the_path_is_read_from_the_view_as_upstream_reads_it() -> None:
    d, old = deployment(), replica_set(1, 3, 3, desired=3)
    assert rules.path_of(d, [old]) == "rolling"
    assert rules.path_of(d, [replica_set(1, 3, 3, desired=4)]) == "scaling"
    assert rules.path_of(d, [replica_set(1, 0, 0, desired=4)]) == "rolling"  # not active
    assert rules.path_of(deployment(paused=True), [old]) == "scaling"
    deleting = copy.deepcopy(d)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:09Z"
    assert rules.path_of(deleting, [old]) == "deleting"
    assert rules.path_of(deployment(strategy={"type": "Recreate"}), [old]) == "recreate"


def test_a_new_replica_set_is_created_within_the_surge_bound_and_only_if_missing() -> None:
    old = [state("web-h1", 3, 3)]
    assert rules.replica_set_create(D, "rolling", old, state("web-h2", 1, 0, True)) is None
    why = rules.replica_set_create(D, "rolling", old, state("web-h2", 3, 0, True))
    assert why is not None and "6 pods" in why and "3 + 1" in why
    both = [*old, state("web-h2", 1, 0, True)]
    why = rules.replica_set_create(D, "rolling", both, state("web-h2x", 0, 0, True))
    assert why is not None and "already has ReplicaSet web-h2" in why
    assert rules.replica_set_create(D, "scaling", old, state("web-h2", 0, 0, True)) is not None


def test_a_created_replica_set_carries_the_deployments_template_and_controller() -> None:
    d = deployment()
    made = replica_set(2, 1, 0)
    del made["status"]
    assert rules.created_from_template(d, made) is None
    other = replica_set(1, 1, 0)  # an older template
    assert "template is not the Deployment's" in str(rules.created_from_template(d, other))
    orphan = copy.deepcopy(made)
    orphan["metadata"]["ownerReferences"] = []
    assert "controller reference" in str(rules.created_from_template(d, orphan))
    unhashed = copy.deepcopy(made)
    unhashed["spec"]["selector"]["matchLabels"].pop("pod-template-hash")
    assert "selector" in str(rules.created_from_template(d, unhashed))


def test_only_the_new_replica_set_scales_up_within_replicas_plus_surge() -> None:
    held = [state("web-h1", 2, 2), state("web-h2", 1, 1, True)]
    assert rules.replica_set_scale(D, "rolling", held, "web-h2", 2) is None
    why = rules.replica_set_scale(D, "rolling", held, "web-h2", 3)
    assert why is not None and "5 pods" in why
    why = rules.replica_set_scale(D, "rolling", held, "web-h1", 3)
    assert why is not None and "not the new one" in why
    # a write leaving the size as it was (annotations) is allowed on every path
    assert rules.replica_set_scale(D, "deleting", held, "web-h1", 2) is None
    assert rules.replica_set_scale(D, "deleting", held, "web-h1", 1) is not None
    assert rules.replica_set_scale(D, "rolling", held, "web-x", 1) is not None
    over = [state("web-h1", 0, 0), state("web-h2", 5, 5, True)]
    assert rules.replica_set_scale(D, "rolling", over, "web-h2", 3) is None
    assert rules.replica_set_scale(D, "rolling", over, "web-h2", 2) is not None


def test_old_replica_sets_scale_down_only_by_available_pods_above_min_available() -> None:
    # the new one's pod is not available yet: maxScaledDown = 4 - 3 - 1 = 0
    warming = [state("web-h1", 3, 3), state("web-h2", 1, 0, True)]
    why = rules.replica_set_scale(D, "rolling", warming, "web-h1", 2)
    assert why is not None and "maxScaledDown is 0" in why
    ready = [state("web-h1", 3, 3), state("web-h2", 1, 1, True)]
    assert rules.replica_set_scale(D, "rolling", ready, "web-h1", 2) is None
    why = rules.replica_set_scale(D, "rolling", ready, "web-h1", 0)
    assert why is not None and "down by 3" in why and "at most 1" in why
    # unavailable old pods go first, beyond the available budget (cleanupUnhealthyReplicas)
    # (maxUnavailable 1: maxScaledDown 4 - 2 - 0 = 2, no available pod above minAvailable 2)
    loose = rules.spec_deployment(
        deployment(strategy={"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}})
    )
    sick = [state("web-h1", 3, 1), state("web-h2", 1, 1, True)]
    assert rules.replica_set_scale(loose, "rolling", sick, "web-h1", 1) is None
    assert rules.replica_set_scale(loose, "rolling", sick, "web-h1", 0) is not None


def test_a_syncs_scale_downs_share_one_budget() -> None:
    before = [state("web-h0", 1, 1), state("web-h1", 2, 2), state("web-h2", 1, 1, True)]
    # maxScaledDown 4 - 3 - 0 = 1, available 4 - 3 = 1: one pod in all
    first = rules.replica_set_scale(D, "rolling", before, "web-h0", 0, before)
    assert first is None
    after_first = [state("web-h0", 0, 1), *before[1:]]
    second = rules.replica_set_scale(D, "rolling", after_first, "web-h1", 1, before)
    assert second is not None and "down by 2" in second


def test_an_old_empty_replica_set_is_deleted_only_beyond_the_history_limit() -> None:
    held = [state("web-h0", 0, 0), state("web-h1", 0, 0), state("web-h2", 3, 3, True)]
    assert rules.replica_set_delete(D, "rolling", held, "web-h0", 1, 0) is None
    assert rules.replica_set_delete(D, "rolling", held, "web-h1", 1, 1) is not None
    assert rules.replica_set_delete(D, "rolling", held, "web-h0", 2, 0) is not None
    assert rules.replica_set_delete(D, "rolling", held, "web-h2", 0, 0) is not None
    busy = [state("web-h0", 1, 1), state("web-h2", 3, 3, True)]
    assert rules.replica_set_delete(D, "rolling", busy, "web-h0", 0, 0) is not None


# --- the monitor ---------------------------------------------------------------------------------


def put(obj: Obj, resource: str) -> KeyValue:
    meta = obj["metadata"]
    key = f"/registry/{resource}/{meta['namespace']}/{meta['name']}".encode()
    return KeyValue(key, version=1, value=json.dumps(obj).encode())


def informer(resource: str, items: list[Obj], version: int) -> SharedIndexInformer:
    return cached_informer("apps", resource, items, version)


def scaled(rs: Obj, replicas: int) -> Obj:
    body = copy.deepcopy(rs)
    body["spec"]["replicas"] = replicas
    return body


@pytest.mark.parametrize(("second", "violates"), [(2, False), (1, True)])
def test_the_monitor_judges_each_write_on_the_view_and_the_syncs_earlier_writes(
    second: int, violates: bool
) -> None:
    """Old ``web-h0`` (1 pod) and ``web-h1`` (2), all available, beside the new ``web-h2``
    (1, available): one old pod may go. The sync scales ``web-h0`` to 0 (answered 200), then
    writes ``web-h1`` with ``second`` replicas: from the view alone 2 -> 1 is one pod down,
    within the budget; after the first write it is a second one."""
    monitor = ConformanceMonitor()
    d = deployment()
    sets = [replica_set(0, 1, 1, rv=3), replica_set(1, 2, 2, rv=4), replica_set(2, 1, 1, rv=5)]
    monitor.history.written(2, (put(d, "deployments"),))
    for i, rs in enumerate(sets):
        monitor.history.written(3 + i, (put(rs, "replicasets"),))
    observe = monitor.watch("kcm-0")
    trace = monitor.tracer()
    caches = (informer("deployments", [d], 5), informer("replicasets", sets, 5))
    try:
        sync_started("deployment", "default/web", caches)
        for rs, size in ((sets[0], 0), (sets[1], second)):
            body, path = scaled(rs, size), f"{RS_PATH}/{rs['metadata']['name']}"
            trace("PUT", path, None, body)
            observe("PUT", path, body, 200)
    finally:
        CURRENT.set(None)
        listen_to_syncs(None)
    if violates:
        with pytest.raises(Violation, match=r"RequestConformance.*web-h1.*down by 2"):
            monitor.check()
    else:
        monitor.check()
        assert monitor.judged == {"deployment": 2}


@pytest.mark.parametrize(("grown", "violates"), [(1, False), (2, True)])
def test_a_replica_set_the_sync_created_is_held_as_its_create_sent_it(
    grown: int, violates: bool
) -> None:
    """Old ``web-h1`` asks for all 3 pods; the sync creates ``web-h2`` (the Deployment's
    template) with 1 (answered 201), then writes it with ``grown``: 2 would make 5 pods,
    more than 3 + 1, though the view has no such ReplicaSet at all."""
    monitor = ConformanceMonitor()
    d, old = deployment(), replica_set(1, 3, 3, rv=3)
    monitor.history.written(2, (put(d, "deployments"),))
    monitor.history.written(3, (put(old, "replicasets"),))
    observe = monitor.watch("kcm-0")
    trace = monitor.tracer()
    caches = (informer("deployments", [d], 3), informer("replicasets", [old], 3))
    made = replica_set(2, 1, 0)
    for field in ("uid", "resourceVersion", "creationTimestamp", "generation"):
        del made["metadata"][field]
    del made["status"]
    try:
        sync_started("deployment", "default/web", caches)
        trace("POST", RS_PATH, None, made)
        observe("POST", RS_PATH, made, 201)
        body = scaled(made, grown)
        trace("PUT", f"{RS_PATH}/web-h2", None, body)
        observe("PUT", f"{RS_PATH}/web-h2", body, 200)
    finally:
        CURRENT.set(None)
        listen_to_syncs(None)
    if violates:
        with pytest.raises(Violation, match=r"RequestConformance.*PUT.*5 pods"):
            monitor.check()
    else:
        monitor.check()
        assert monitor.judged == {"deployment": 2}
