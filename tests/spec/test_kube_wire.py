"""Reading a real API server's JSON answers as the kube model's results."""

from __future__ import annotations

from typing import Any

import pytest

from raftkube_spec.kube import (
    Create,
    Delete,
    DeleteResponse,
    EventType,
    KubeError,
    List,
    ListResponse,
    Object,
    ObjectKey,
    Reason,
    WatchEvent,
    apply,
    initial_state,
)
from raftkube_spec.kube.wire import (
    delete_result_matches,
    error_from_status,
    list_result,
    object_result,
    watch_event,
)

T0 = 1_700_000_000


def served_configmap(name: str, rv: str, uid: str) -> dict[str, Any]:
    """A ConfigMap as kube-apiserver sends it: managed fields, no empty metadata."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": uid,
            "resourceVersion": rv,
            "generation": 1,
            "creationTimestamp": "2023-11-14T22:13:20Z",
            "managedFields": [{"manager": "kubectl-create", "operation": "Update"}],
        },
        "data": {"k": "v"},
    }


def model_create(name: str, uid: str) -> Create:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}
    return Create("configmaps", "default", Object.of(body), uid, T0)


def test_a_served_object_equals_the_models() -> None:
    _, model = apply(initial_state(), model_create("c", "u-1"))
    assert object_result(201, served_configmap("c", "2", "u-1")) == model


def test_a_served_list_gets_its_items_kind_back() -> None:
    state, _ = apply(initial_state(), model_create("c", "u-1"))
    state, _ = apply(state, model_create("d", "u-2"))
    items = [served_configmap("c", "2", "u-1"), served_configmap("d", "3", "u-2")]
    for item in items:
        del item["kind"], item["apiVersion"]
    body = {
        "kind": "ConfigMapList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "3", "continue": "", "remainingItemCount": None},
        "items": items,
    }
    assert list_result(body) == apply(state, List("configmaps"))[1]
    assert list_result(body | {"items": None}) == ListResponse(3, ())


def test_failure_statuses_become_errors() -> None:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'configmaps "c" not found',
        "reason": "NotFound",
        "details": {"name": "c", "kind": "configmaps"},
        "code": 404,
    }
    expected = KubeError(Reason.NOT_FOUND, 'configmaps "c" not found')
    assert object_result(404, status) == expected
    assert list_result(status) == expected
    assert watch_event({"type": "ERROR", "object": status}) == expected
    gone = status | {"reason": "Expired", "code": 410, "message": "too old"}
    assert error_from_status(gone) == KubeError(Reason.GONE, "too old")
    with pytest.raises(ValueError):
        error_from_status(status | {"reason": "Forbidden", "code": 403})
    with pytest.raises(ValueError):
        error_from_status(status | {"code": 409})


def test_watch_events() -> None:
    served = served_configmap("c", "2", "u-1")
    event = watch_event({"type": "ADDED", "object": served})
    assert event == WatchEvent(EventType.ADDED, Object.of(served))
    assert isinstance(event, WatchEvent)
    assert "managedFields" not in event.object.metadata


def test_delete_answers() -> None:
    state, _ = apply(initial_state(), model_create("c", "u-1"))
    _, deleted = apply(state, Delete(ObjectKey("configmaps", "default", "c"), T0))
    assert isinstance(deleted, DeleteResponse) and deleted.deleted
    success = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "c", "kind": "configmaps", "uid": "u-1"},
    }
    assert delete_result_matches(deleted, 200, success)
    assert not delete_result_matches(deleted, 202, success)  # upstream's answer is 200
    assert not delete_result_matches(deleted, 200, success | {"details": {"name": "c"}})
    assert delete_result_matches(deleted, 200, served_configmap("c", "3", "u-1"))
    assert not delete_result_matches(deleted, 200, served_configmap("c", "2", "u-1"))
    held = DeleteResponse(deleted.object, deleted=False)
    assert not delete_result_matches(held, 202, success)
    missing = {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404}
    assert delete_result_matches(KubeError(Reason.NOT_FOUND, ""), 404, missing | {"message": ""})
    refused = KubeError(Reason.CONFLICT, "")
    assert not delete_result_matches(refused, 404, missing | {"message": ""})
    assert not delete_result_matches(refused, 200, success)
