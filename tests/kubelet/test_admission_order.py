"""The kubelet admits each batch of new pods oldest first, as upstream's
``HandlePodAdditions`` sorts by creation time: on a full node the older pod runs."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from raftkube.kubelet import Kubelet, NodeConfig, RuntimeProber
from raftkube.kubelet.kubelet import admission_order
from raftkube.runtime import SimulatedRuntime
from tests.helpers.api_server import APIHarness
from tests.helpers.clocks import FastClock
from tests.helpers.kubelet import PODS, container, ensure_default_service_account, pod, wait_for_pod

Obj = dict[str, Any]


def _phase(obj: Obj) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


@pytest.mark.trio
async def test_of_two_new_pods_in_one_batch_the_older_is_admitted(api: APIHarness) -> None:
    """Both pods are bound before the kubelet starts, so its first list is one batch; the
    newer sorts first by name (the order the list and the informer deliver them in)."""
    one_cpu = container("app", resources={"requests": {"cpu": "1500m"}})
    await ensure_default_service_account(api.admin)
    await api.admin.create(PODS, pod("z-older", "n1", one_cpu))
    await trio.sleep(1.1)  # creation timestamps have whole seconds
    await api.admin.create(PODS, pod("a-newer", "n1", one_cpu))
    client = api.client_for("system:node:n1", ("system:nodes",))
    config = NodeConfig("n1", "127.1.0.0/24", cpu="2", memory="4Gi", max_pods=10)
    runtime = SimulatedRuntime(FastClock(), "127.1.0.0/24", {})
    kl = Kubelet(client, runtime, config, runtime.clock, prober=RuntimeProber(runtime))
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(kl.run)
            newer = await wait_for_pod(api.admin, "a-newer", lambda p: _phase(p) == "Failed")
            older = await wait_for_pod(api.admin, "z-older", lambda p: _phase(p) == "Running")
            nursery.cancel_scope.cancel()
    await client.aclose()
    assert newer["status"]["reason"] == "OutOfcpu"
    assert older["metadata"]["creationTimestamp"] < newer["metadata"]["creationTimestamp"]


def _news(name: str, uid: str, created: str, **meta: Any) -> Obj:
    return {"metadata": {"name": name, "uid": uid, "creationTimestamp": created, **meta}}


def test_a_batch_is_coalesced_and_new_pods_come_last_oldest_first() -> None:
    newer = _news("a", "u-a", "2026-01-01T00:00:02Z")
    older = _news("b", "u-b", "2026-01-01T00:00:01Z")
    same_second = _news("c", "u-c", "2026-01-01T00:00:01Z")
    going = _news("d", "u-d", "2026-01-01T00:00:00Z", deletionTimestamp="x")
    stale_newer = _news("a", "u-a", "2026-01-01T00:00:02Z", resourceVersion="1")
    batch = [
        (stale_newer, False),
        (same_second, False),
        (newer, False),
        (going, False),
        (older, False),
    ]
    order = admission_order(batch, {})
    assert [(p["metadata"]["name"], d) for p, d in order] == [
        ("d", False),
        ("b", False),
        ("c", False),
        ("a", False),
    ]
    assert order[-1][0] is newer  # the latest state of a pod, once
