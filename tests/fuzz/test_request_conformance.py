"""The request-conformance rules and the view check on hand-built views: for each, a request
(or cache) the spec allows and one it does not; and the monitor's wiring, from a sync's
start through a request's outcome to the violation after the step."""

from __future__ import annotations

import json
from typing import Any

import pytest

from raftkube.controllers.informer import SharedIndexInformer
from raftkube.controllers.synctrace import listen_to_syncs, sync_started
from raftkube_fuzz.checks import request_conformance as rules
from raftkube_fuzz.checks.views import NOT_FINISHED, StoreHistory, view_mismatch
from raftkube_fuzz.cluster.conformance_monitor import CURRENT, ConformanceMonitor
from raftkube_fuzz.violation import Violation
from raftkube_spec.kv.types import KeyValue
from tests.helpers.informers import cached_informer

Obj = dict[str, Any]
RS_UID = "rs-uid"


def pod(name: str, *, node: str = "", cpu: str = "500m", ready: bool = False, rv: int = 2,
        owner: str = RS_UID, phase: str = "Running", ip: str = "10.0.0.1") -> Obj:  # fmt: skip
    return {
        "metadata": {
            "name": name, "namespace": "default", "uid": f"uid-{name}",
            "resourceVersion": str(rv), "labels": {"app": "a"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "a", "uid": owner,
                                 "controller": True}],
        },
        "spec": {"nodeName": node, "containers": [{"resources": {"requests": {"cpu": cpu}}}]},
        "status": {"phase": phase, "podIP": ip,
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }  # fmt: skip


def replica_set(replicas: int) -> Obj:
    return {
        "metadata": {"name": "a", "namespace": "default", "uid": RS_UID, "resourceVersion": "2"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "a"}},
                 "template": {"metadata": {"labels": {"app": "a"}}}},
    }  # fmt: skip


def node(name: str, cpu: str = "1", rv: int = 1) -> Obj:
    return {"metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": str(rv)},
            "status": {"allocatable": {"cpu": cpu}}}  # fmt: skip


def service() -> Obj:
    return {"metadata": {"name": "svc", "namespace": "default", "uid": "svc-uid"},
            "spec": {"selector": {"app": "a"}}}  # fmt: skip


def endpoints(*pods: Obj) -> Obj:
    addresses = [
        {
            "ip": "10.0.0.1",
            "nodeName": p["spec"]["nodeName"],
            "targetRef": {"kind": "Pod", "name": p["metadata"]["name"]},
        }
        for p in pods
    ]
    return {"metadata": {"name": "svc", "namespace": "default"},
            "subsets": [{"addresses": addresses, "ports": [{"port": 8080}]}]}  # fmt: skip


# --- the rules -----------------------------------------------------------------------------------


def test_a_replica_set_create_is_allowed_only_below_replicas_counting_unseen_creates() -> None:
    view = rules.world_of(pods=[pod("a-1")], replica_sets=[replica_set(2)])
    rs = rules.spec_replica_set(replica_set(2))
    assert rules.replica_set_create(rs, view, created_since_view=1) is None
    why = rules.replica_set_create(rs, view, created_since_view=2)
    assert why is not None and "1 active pods" in why
    assert rules.replica_set_create(rs, view, created_since_view=2, unknown=1) is None
    finished = rules.world_of(pods=[pod("a-1", phase="Failed")], replica_sets=[replica_set(1)])
    assert rules.replica_set_create(rules.spec_replica_set(replica_set(1)), finished, 1) is None


def test_a_replica_set_delete_is_allowed_only_above_replicas_counting_unseen_deletes() -> None:
    view = rules.world_of(pods=[pod("a-1"), pod("a-2"), pod("a-3")], replica_sets=[replica_set(2)])
    rs = rules.spec_replica_set(replica_set(2))
    assert rules.replica_set_delete(rs, view, "uid-a-1", deleted_unseen=1) is None
    why = rules.replica_set_delete(rs, view, "uid-a-2", deleted_unseen=2)
    assert why is not None and "deleted 2 of them" in why
    assert rules.replica_set_delete(rs, view, "uid-other", deleted_unseen=1) is not None


def test_a_binding_must_fit_given_the_view_and_the_assumed_pods() -> None:
    view = rules.world_of(
        pods=[pod("bound", node="n1", cpu="400m"), pod("p", cpu="500m"),
              pod("q", cpu="300m")],
        nodes=[node("n1"), node("n2")],
    )  # fmt: skip
    assert rules.binding(("default", "p"), "n1", view, ()) is None
    why = rules.binding(("default", "p"), "n1", view, (("uid-q", "n1"),))
    assert why is not None and "q:300m (assumed)" in why
    assert rules.binding(("default", "p"), "n1", view, (("uid-q", "n2"),)) is None
    assert rules.binding(("default", "bound"), "n2", view, ()) is not None
    assert rules.binding(("default", "p"), "n3", view, ()) is not None


def test_an_endpoints_write_must_list_exactly_the_views_ready_pods() -> None:
    ready, unready = pod("r", node="n1", ready=True), pod("u", node="n1")
    view = rules.world_of(pods=[ready, unready])
    svc = rules.view_service(service())
    assert rules.endpoints_write(svc, view, rules.written_addresses(endpoints(ready))) is None
    why = rules.endpoints_write(svc, view, rules.written_addresses(endpoints(ready, unready)))
    assert why is not None and "['u']" in why
    assert rules.endpoints_write(svc, view, rules.written_addresses(endpoints())) is not None
    assert rules.endpoints_delete(svc) is not None and rules.endpoints_delete(None) is None


# --- the view check ------------------------------------------------------------------------------


def put(obj: Obj, resource: str = "pods") -> KeyValue:
    meta = obj["metadata"]
    scope = f"{meta['namespace']}/" if meta.get("namespace") else ""
    key = f"/registry/{resource}/{scope}{meta['name']}".encode()
    return KeyValue(key, version=1, value=json.dumps(obj).encode())


def gone(name: str) -> KeyValue:
    return KeyValue(f"/registry/pods/default/{name}".encode())


def history() -> StoreHistory:
    h = StoreHistory()
    h.written(2, (put(pod("a-1", rv=2)),))
    h.written(3, (put(pod("a-2", rv=3)),))
    h.written(4, (put(pod("a-1", rv=4, phase="Succeeded")),))
    h.written(5, (gone("a-2"),))
    return h


def test_a_cache_equal_to_the_store_at_its_revision_passes_and_any_other_fails() -> None:
    h, everywhere = history(), ("", "", "")
    assert view_mismatch(h, "pods", "3", [pod("a-1", rv=2), pod("a-2", rv=3)], everywhere) is None
    assert view_mismatch(h, "pods", "5", [pod("a-1", rv=4)], everywhere) is None
    stale = view_mismatch(h, "pods", "4", [pod("a-1", rv=2), pod("a-2", rv=3)], everywhere)
    assert stale is not None and "a-1@2 (store: 4)" in stale
    early = view_mismatch(h, "pods", "2", [pod("a-1", rv=2), pod("a-2", rv=3)], everywhere)
    assert early is not None and "not in the store then default/a-2" in early
    assert view_mismatch(h, "pods", "3", [pod("a-1", rv=2)], everywhere) is not None


def test_the_schedulers_field_selector_leaves_finished_pods_out() -> None:
    h, unfinished = history(), ("", "", NOT_FINISHED)
    assert view_mismatch(h, "pods", "4", [pod("a-2", rv=3)], unfinished) is None
    assert view_mismatch(h, "pods", "4", [pod("a-1", rv=4), pod("a-2", rv=3)], unfinished)


# --- the monitor's wiring ------------------------------------------------------------------------


def informer(resource: str, items: list[Obj], version: int) -> SharedIndexInformer:
    return cached_informer("apps" if resource == "replicasets" else "", resource, items, version)


@pytest.mark.parametrize(("running", "violates"), [(1, False), (2, True)])
def test_the_monitor_judges_a_create_against_the_view_its_sync_read(
    running: int, violates: bool
) -> None:
    monitor = ConformanceMonitor()
    rs = replica_set(2)
    monitor.history.written(2, (put(rs, "replicasets"),))
    pods = [pod(f"a-{i}", rv=3 + i) for i in range(running)]
    for i, p in enumerate(pods):
        monitor.history.written(3 + i, (put(p),))
    created = pod("a-new", rv=3 + running)
    monitor.history.written(3 + running, (put(created),))
    observe = monitor.watch("kcm-0")
    caches = (informer("replicasets", [rs], 2), informer("pods", pods, 2 + running))
    try:
        sync_started("replicaset", "default/a", caches)
        owners = created["metadata"]["ownerReferences"]
        body = {"metadata": {"generateName": "a-", "ownerReferences": owners}}
        observe("POST", "/api/v1/namespaces/default/pods", body, 201)
    finally:
        CURRENT.set(None)
        listen_to_syncs(None)
    if violates:
        with pytest.raises(Violation, match="RequestConformance"):
            monitor.check()
    else:
        monitor.check()
        assert monitor.judged == {"replicaset": 1}


@pytest.mark.parametrize(("cpu", "violates"), [("500m", False), ("700m", True)])
def test_a_binding_is_judged_as_it_is_sent_with_the_assumptions_of_earlier_decisions(
    cpu: str, violates: bool
) -> None:
    monitor = ConformanceMonitor()
    pending = [pod("p", cpu="500m", rv=2), pod("q", cpu=cpu, rv=3)]
    for i, p in enumerate(pending):
        monitor.history.written(2 + i, (put(p),))
    monitor.history.written(4, (put(node("n1", rv=4), "nodes"),))
    monitor.watch("sched-0")
    trace = monitor.tracer()
    caches = (informer("pods", pending, 3), informer("nodes", [node("n1", rv=4)], 4))
    try:
        for p in pending:
            sync_started("scheduler", f"default/{p['metadata']['name']}", caches)
            meta = p["metadata"]
            body = {"metadata": {"name": meta["name"], "namespace": "default", "uid": meta["uid"]},
                    "target": {"kind": "Node", "name": "n1"}}  # fmt: skip
            path = f"/api/v1/namespaces/default/pods/{meta['name']}/binding"
            trace("POST", path, None, body)  # no answer yet
    finally:
        CURRENT.set(None)
        listen_to_syncs(None)
    if violates:
        with pytest.raises(Violation, match="p:500m \\(assumed\\)"):
            monitor.check()
    else:
        monitor.check()
        assert monitor.judged == {"scheduler": 2}
