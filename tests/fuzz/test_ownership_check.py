"""``GCDeletesOnlyDependents`` on the store's revisions (:mod:`raftkube_fuzz.checks.ownership`,
through :class:`~raftkube_fuzz.checks.cluster_state.ClusterObserver`): a pod whose owner lives
and is not being deleted in the foreground may be deleted only by a scale-down that could
have chosen it or by an eviction, never for matching another owner's selector."""

from __future__ import annotations

import json
from typing import Any

import pytest

from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.violation import Violation
from raftkube_spec.kv.types import KeyValue

STAMP = "2026-01-01T00:00:10Z"


class Store:
    """Revisions written one at a time, as the run's ``written`` grows."""

    def __init__(self) -> None:
        self.written: dict[int, tuple[KeyValue, ...]] = {}
        self.observer = ClusterObserver()

    def write(self, *records: KeyValue) -> None:
        self.written[max(self.written, default=1) + 1] = records
        self.observer.follow(self.written)

    def put(self, key: str, obj: dict[str, Any]) -> None:
        self.write(KeyValue(key.encode(), 2, 0, 1, json.dumps(obj).encode()))

    def tombstone(self, key: str) -> None:
        self.write(KeyValue(key.encode()))


def rs(name: str, replicas: int, labels: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {
        "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", **meta},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}},
    }


def pod(name: str, owner: str, **extra: Any) -> dict[str, Any]:
    ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": f"uid-{owner}",
           "controller": True, "blockOwnerDeletion": True}  # fmt: skip
    meta = {"name": name, "namespace": "default", "uid": f"uid-{name}", "ownerReferences": [ref]}
    return {"metadata": {**meta, **extra.pop("meta", {})}, "status": {"phase": "Running"}, **extra}


def canary_cluster() -> Store:
    """``rs-a`` (one pod) beside ``canary`` (one pod, labels a superset of ``rs-a``'s)."""
    store = Store()
    store.put("/registry/replicasets/default/rs-a", rs("rs-a", 1, {"app": "rs-a"}))
    store.put("/registry/replicasets/default/canary",
              rs("canary", 1, {"app": "rs-a", "track": "canary"}))  # fmt: skip
    store.put("/registry/pods/default/a-1", pod("a-1", "rs-a"))
    store.put("/registry/pods/default/canary-1", pod("canary-1", "canary"))
    return store


def deleting(obj: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "metadata": {**obj["metadata"], "deletionTimestamp": STAMP}}


def test_a_pod_marked_for_deletion_while_its_owner_lives_is_caught() -> None:
    store = canary_cluster()
    foreground = rs("rs-a", 1, {"app": "rs-a"}, finalizers=["foregroundDeletion"])
    store.put("/registry/replicasets/default/rs-a", deleting(foreground))
    store.put("/registry/pods/default/a-1", deleting(pod("a-1", "rs-a")))  # rs-a's own: fine
    with pytest.raises(Violation) as caught:
        store.put("/registry/pods/default/canary-1", deleting(pod("canary-1", "canary")))
    assert caught.value.prop == "GCDeletesOnlyDependents"
    assert "canary-1" in str(caught.value)


def test_a_pod_whose_owner_is_gone_may_go() -> None:
    store = canary_cluster()
    store.tombstone("/registry/replicasets/default/canary")
    store.tombstone("/registry/pods/default/canary-1")


def test_a_pod_deleted_without_being_marked_is_judged_too() -> None:
    store = canary_cluster()
    with pytest.raises(Violation):
        store.tombstone("/registry/pods/default/canary-1")


def test_a_scale_down_may_choose_any_pod_once_one_was_possible() -> None:
    store = canary_cluster()
    store.put("/registry/replicasets/default/canary",
              rs("canary", 2, {"app": "rs-a", "track": "canary"}))  # fmt: skip
    store.put("/registry/pods/default/canary-2", pod("canary-2", "canary"))
    store.put("/registry/replicasets/default/canary",
              rs("canary", 1, {"app": "rs-a", "track": "canary"}))  # fmt: skip
    store.put("/registry/pods/default/canary-1", deleting(pod("canary-1", "canary")))


def test_an_evicted_pod_may_go_even_if_a_status_write_dropped_its_condition() -> None:
    store = canary_cluster()
    condition = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager"}
    status = {"phase": "Running", "conditions": [condition]}
    store.put("/registry/pods/default/canary-1", pod("canary-1", "canary", status=status))
    store.put("/registry/pods/default/canary-1", pod("canary-1", "canary"))
    store.put("/registry/pods/default/canary-1", deleting(pod("canary-1", "canary")))


def test_an_ownerless_pod_is_the_users_to_delete() -> None:
    store = Store()
    store.put("/registry/pods/default/pinned", {"metadata": {"name": "pinned", "uid": "p"}})
    store.tombstone("/registry/pods/default/pinned")


def _in(namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}


def _namespace(name: str, terminating: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-ns-{name}"}
    if terminating:
        meta["deletionTimestamp"] = STAMP
    return {"kind": "Namespace", "metadata": meta, "spec": {"finalizers": ["kubernetes"]}}


def team_cluster() -> Store:
    """``canary_cluster``'s pair in a live namespace ``team-a`` of its own."""
    store = Store()
    store.put("/registry/namespaces/team-a", _namespace("team-a"))
    store.put("/registry/replicasets/team-a/rs-a", _in("team-a", rs("rs-a", 1, {"app": "rs-a"})))
    store.put("/registry/pods/team-a/canary-1", _in("team-a", pod("canary-1", "canary")))
    store.put("/registry/replicasets/team-a/canary",
              _in("team-a", rs("canary", 1, {"app": "rs-a", "track": "canary"})))  # fmt: skip
    return store


def test_a_pod_in_a_live_namespace_other_than_default_is_judged_too() -> None:
    store = team_cluster()
    with pytest.raises(Violation) as caught:
        store.put("/registry/pods/team-a/canary-1",
                  deleting(_in("team-a", pod("canary-1", "canary"))))  # fmt: skip
    assert caught.value.prop == "GCDeletesOnlyDependents"


def test_a_namespace_being_emptied_may_lose_any_pod() -> None:
    store = team_cluster()
    store.put("/registry/namespaces/team-a", _namespace("team-a", terminating=True))
    store.put("/registry/pods/team-a/canary-1",
              deleting(_in("team-a", pod("canary-1", "canary"))))  # fmt: skip
