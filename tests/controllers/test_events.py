"""Events as client-go's recorder writes them, and written to a real server."""

from __future__ import annotations

import pytest

from raftkube.controllers.events import EVENTS, EventRecorder, make_event
from tests.helpers.api_server import APIHarness

LEASE = {
    "apiVersion": "coordination.k8s.io/v1",
    "kind": "Lease",
    "metadata": {"name": "kcm", "namespace": "kube-system", "uid": "u1", "resourceVersion": "7"},
}


def test_event_shape() -> None:
    event = make_event(LEASE, "Normal", "LeaderElection", "me became leader", "kcm", "", 1.5)
    assert event["metadata"] == {"name": "kcm.59682f00", "namespace": "kube-system"}
    assert event["involvedObject"] == {
        "kind": "Lease",
        "apiVersion": "coordination.k8s.io/v1",
        "namespace": "kube-system",
        "name": "kcm",
        "uid": "u1",
        "resourceVersion": "7",
    }
    assert event["firstTimestamp"] == event["lastTimestamp"] == "1970-01-01T00:00:01Z"
    assert (event["count"], event["type"], event["source"]) == (1, "Normal", {"component": "kcm"})
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    assert make_event(node, "Warning", "R", "m", "c", "h", 2)["metadata"]["namespace"] == "default"


@pytest.mark.trio
async def test_recorded_on_the_server_and_failures_swallowed(api: APIHarness) -> None:
    recorder = EventRecorder(api.admin, "kube-controller-manager")
    await recorder.event(LEASE, "Normal", "LeaderElection", "me became leader")
    listed = await api.admin.list(EVENTS, namespace="kube-system")
    assert [e["message"] for e in listed["items"]] == ["me became leader"]
    # A user who may not write events: dropped, not raised.
    async with api.client_for("nobody") as nobody:
        await EventRecorder(nobody, "x").event(LEASE, "Normal", "R", "m")
    listed = await api.admin.list(EVENTS, namespace="kube-system")
    assert len(listed["items"]) == 1
