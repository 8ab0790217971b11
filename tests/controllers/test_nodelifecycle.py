"""The node lifecycle and taint eviction controllers: their decisions as plain functions, and
both against a real API server with a stand-in kubelet (short grace periods, real time)."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.controllers.events import EventRecorder
from raftkube.controllers.evictionqueue import RateLimitedTimedQueue
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.nodehealth import (
    DisruptionConfig,
    ZoneState,
    compute_zone_state,
    handle_disruption,
    no_schedule_taint_changes,
    update_node_health,
)
from raftkube.controllers.nodelifecycle import NodeLifecycleConfig, NodeLifecycleController
from raftkube.controllers.tainteviction import TaintEvictionController, eviction_delay
from tests.helpers.api_server import APIHarness
from tests.helpers.nodes import (
    NODES,
    PODS,
    Heartbeats,
    bound_pod,
    post_ready,
    register_node,
    unreachable_toleration,
)
from tests.helpers.polling import eventually, wait_for

Obj = dict[str, Any]

READY = {"type": "Ready", "status": "True", "lastHeartbeatTime": "t1", "lastTransitionTime": "t0"}


def node(ready: Obj | None = READY) -> Obj:
    return {
        "metadata": {"name": "n", "uid": "u", "resourceVersion": "1"},
        "status": {"conditions": [ready] if ready else []},
    }


def lease(renew: str) -> Obj:
    return {"metadata": {"name": "n"}, "spec": {"renewTime": renew}}


def test_health_is_judged_by_the_controllers_own_clock() -> None:
    kw = {"grace_period": 40.0, "startup_grace_period": 60.0}
    first = update_node_health(node(), lease("2030-01-01T00:00:00.000000Z"), None, 100.0, 0, **kw)
    assert first.status_update is None and first.health.probe_timestamp == 100.0
    # The lease's renewTime is far in the future by our clock: that alone proves nothing.
    same = update_node_health(
        node(), lease("2030-01-01T00:00:00.000000Z"), first.health, 141.0, 0, **kw
    )
    assert same.status_update is not None
    ready = next(c for c in same.status_update["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "Unknown" and ready["reason"] == "NodeStatusUnknown"
    assert same.observed_ready["status"] == "True"
    # A renewal seen at 130 (its time is earlier than ours, still a change) resets the count.
    renewed = update_node_health(
        node(), lease("2030-01-01T00:00:01.000000Z"), first.health, 130.0, 0, **kw
    )
    later = update_node_health(
        node(), lease("2030-01-01T00:00:01.000000Z"), renewed.health, 169.0, 0, **kw
    )
    assert later.status_update is None
    # A node that never posted Ready gets the startup grace period.
    fresh = update_node_health(node(None), None, None, 0.0, 0, **kw)
    assert update_node_health(node(None), None, fresh.health, 59.0, 0, **kw).status_update is None
    never = update_node_health(node(None), None, fresh.health, 61.0, 0, **kw).status_update
    assert never is not None
    assert {c["reason"] for c in never["status"]["conditions"]} == {"NodeStatusNeverUpdated"}


def test_no_schedule_taints_follow_conditions() -> None:
    n = node({"type": "Ready", "status": "Unknown"})
    n["spec"] = {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]}
    add, remove = no_schedule_taint_changes(n)
    assert add == [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]
    assert remove == [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]


def test_zone_states_and_disruption() -> None:
    config = DisruptionConfig()
    assert compute_zone_state(["Unknown", "False"], config) == (2, ZoneState.FULL_DISRUPTION)
    assert compute_zone_state(["True", "Unknown", "Unknown"], config)[1] == ZoneState.NORMAL
    partial = ["True"] * 3 + ["Unknown"] * 4
    assert compute_zone_state(partial, config) == (4, ZoneState.PARTIAL_DISRUPTION)
    # A small partially disrupted zone stops tainting; a large one slows to the secondary rate.
    states = {"a": ZoneState.NORMAL, "b": ZoneState.NORMAL}
    decision = handle_disruption(states, {"a": partial, "b": ["True"]}, config)
    assert decision.limiter_qps == {"a": 0}
    big = ["True"] * 20 + ["Unknown"] * 40
    assert handle_disruption(states, {"a": big, "b": ["True"]}, config).limiter_qps == {"a": 0.01}
    # Every zone down: stop everywhere, untaint everything.
    down = handle_disruption(states, {"a": ["Unknown"], "b": [None]}, config)
    assert down.enter_full_disruption and down.limiter_qps == {"a": 0, "b": 0}
    # One zone back: leave the mode, every zone gets its state's rate.
    back = handle_disruption(down.zone_states, {"a": ["True"], "b": ["Unknown"]}, config)
    assert back.exit_full_disruption and back.limiter_qps == {"a": 0.1, "b": 0.1}
    assert back.zone_states == {"a": ZoneState.NORMAL, "b": ZoneState.FULL_DISRUPTION}


def test_tainting_is_rate_limited_per_zone() -> None:
    queue = RateLimitedTimedQueue(0.1, now=0.0)
    for name in ("a", "b", "c"):
        assert queue.add(name, "", 0.0)
    assert not queue.add("a", "", 0.0)
    tainted: list[tuple[str, float]] = []
    now = 0.0
    while now < 25.0:  # the tainting pass every 100 ms
        while (entry := queue.pop_due(now)) is not None:
            tainted.append((entry.value, now))
            queue.finish(entry, True, 0.0, now)
        now = round(now + 0.1, 1)
    # One token every 10 s (the 100 ms pass may find it a pass late: float arithmetic).
    assert [name for name, _ in tainted] == ["a", "b", "c"]
    assert tainted[0][1] == 0.0
    assert 10.0 <= tainted[1][1] <= 10.1 and 20.0 <= tainted[2][1] <= 20.2
    assert not queue.add("a", "", now)  # tainted nodes stay known until removed
    assert queue.remove("a") and queue.add("a", "", now)
    queue.swap_limiter(0, now)
    assert queue.pop_due(now + 100) is None


def test_eviction_delay() -> None:
    taints = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]

    def pod(*tolerations: Obj) -> Obj:
        return {"spec": {"tolerations": list(tolerations)}}

    assert eviction_delay(pod(), taints) == 0
    assert eviction_delay(pod(unreachable_toleration(30)), taints) == 30
    assert eviction_delay(pod(unreachable_toleration(None)), taints) is None
    assert eviction_delay(pod(unreachable_toleration(-5)), taints) == 0
    assert eviction_delay(pod(), []) is None


CONFIG = NodeLifecycleConfig(
    node_monitor_period=0.2,
    node_monitor_grace_period=1.5,
    node_startup_grace_period=1.5,
    eviction_period=0.05,
    disruption=DisruptionConfig(eviction_rate=10.0),
)


async def run_controllers(api: APIHarness, nursery: trio.Nursery) -> NodeLifecycleController:
    """The node lifecycle and taint eviction controllers, running; the first is returned so
    that a test can wait until it has seen its nodes."""
    client, clock = api.admin, TrioClock()
    factory = SharedInformerFactory(client, clock=clock, rng=random.Random(3))
    recorder = EventRecorder(client, "node-controller")
    lifecycle = NodeLifecycleController(client, factory, clock, recorder, config=CONFIG)
    eviction = TaintEvictionController(client, factory, clock, recorder)
    factory.start(nursery)
    nursery.start_soon(lifecycle.run)
    nursery.start_soon(eviction.run)
    return lifecycle


def taint_keys(obj: Obj, effect: str) -> set[str]:
    return {t["key"] for t in obj["spec"].get("taints") or [] if t["effect"] == effect}


def deleting(pod: Obj) -> bool:
    return pod["metadata"].get("deletionTimestamp") is not None


@pytest.mark.trio
async def test_silent_node_is_tainted_and_its_pods_evicted(api: APIHarness) -> None:
    client = api.admin
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            beats = Heartbeats(client)
            for name in ("quiet", "loud"):
                await register_node(client, name)
                beats.alive.add(name)
            nursery.start_soon(beats.run)
            await bound_pod(client, "now", "quiet", [unreachable_toleration(0)])
            await bound_pod(client, "later", "quiet", [unreachable_toleration(2)])
            await bound_pod(client, "never", "quiet", [unreachable_toleration(None)])
            await bound_pod(client, "rescued", "quiet", [unreachable_toleration(60)])
            await bound_pod(client, "elsewhere", "loud", [unreachable_toleration(0)])
            await run_controllers(api, nursery)
            await trio.sleep(2.5)  # longer than the grace period: the lease keeps them healthy
            for name in ("quiet", "loud"):
                assert taint_keys(await client.get(NODES, name), "NoExecute") == set()

            beats.alive.discard("quiet")
            stopped = trio.current_time()

            async def tainted() -> Obj | None:
                n = await client.get(NODES, "quiet")
                return n if "node.kubernetes.io/unreachable" in taint_keys(n, "NoExecute") else None

            quiet = await eventually(tainted, "the unreachable NoExecute taint", timeout=10)
            # Not before the grace period (1.5 s) from the last renewal the controller saw (at
            # most a heartbeat period and a monitor period before the kubelet stopped).
            assert trio.current_time() - stopped >= 1.5 - 0.2 - 0.2
            ready = next(c for c in quiet["status"]["conditions"] if c["type"] == "Ready")
            assert ready["status"] == "Unknown"
            assert ready["message"] == "Kubelet stopped posting node status."

            async def pod(name: str) -> Obj:
                result: Obj = await client.get(PODS, name, namespace="default")
                return result

            async def evicted(name: str) -> bool:
                return deleting(await pod(name))

            await eventually(lambda: evicted("now"), "the untolerating pod deleted", timeout=5)

            # A pod bound now to the Unknown node is marked not ready at once.
            late = await client.create(
                PODS,
                {
                    "metadata": {"name": "late", "namespace": "default"},
                    "spec": {
                        "containers": [{"name": "c", "image": "busybox"}],
                        "tolerations": [unreachable_toleration(None)],
                    },
                },
            )
            late["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
            await client.update(PODS, late, subresource="status")
            binding = {"metadata": {"name": "late"}, "target": {"kind": "Node", "name": "quiet"}}
            await client.create(
                PODS, binding, namespace="default", name="late", subresource="binding"
            )

            async def late_not_ready() -> bool:
                conditions = (await pod("late"))["status"]["conditions"]
                return {"type": "Ready", "status": "False"}.items() <= next(
                    c for c in conditions if c["type"] == "Ready"
                ).items()

            await eventually(late_not_ready, "the late pod marked not ready", timeout=5)
            assert not await evicted("later")
            await eventually(lambda: evicted("later"), "the pod deleted after 2 s", timeout=6)
            gone = await pod("now")
            # Graceful, never forced: the pod waits for its kubelet (PR #35235).
            assert gone["metadata"]["deletionGracePeriodSeconds"] > 0
            conditions = {c["type"]: c for c in gone["status"]["conditions"]}
            assert conditions["DisruptionTarget"]["reason"] == "DeletionByTaintManager"
            assert [c["status"] for c in gone["status"]["conditions"] if c["type"] == "Ready"] == [
                "False"
            ]
            assert not await evicted("never") and not await evicted("elsewhere")
            assert "node.kubernetes.io/unreachable" in taint_keys(quiet, "NoSchedule") or (
                "node.kubernetes.io/unreachable"
                in taint_keys(await client.get(NODES, "quiet"), "NoSchedule")
            )
            events = await client.list("/api/v1/namespaces/default/events")
            reasons = {(e["reason"], e["involvedObject"]["name"]) for e in events["items"]}
            assert ("NodeNotReady", "quiet") in reasons
            assert ("TaintManagerEviction", "now") in reasons

            # The kubelet comes back and posts Ready: the taints go.
            beats.alive.add("quiet")
            await post_ready(client, "quiet")

            async def healed() -> bool:
                n = await client.get(NODES, "quiet")
                return not taint_keys(n, "NoExecute")

            await eventually(healed, "the NoExecute taints removed", timeout=10)

            async def rescued() -> bool:
                found = await client.list(
                    "/api/v1/namespaces/default/events",
                    field_selector="involvedObject.name=rescued",
                )
                messages = {e["message"] for e in found["items"]}
                return "Cancelling deletion of Pod default/rescued" in messages

            await eventually(rescued, "the pending deletion cancelled", timeout=10)
            assert not await evicted("rescued")
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_full_disruption_stops_evictions(api: APIHarness) -> None:
    client = api.admin
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            beats = Heartbeats(client)
            for name, zone in (("a1", "za"), ("b1", "zb")):
                await register_node(client, name, zone=zone)
                beats.alive.add(name)
            nursery.start_soon(beats.run)
            await bound_pod(client, "pa", "a1", [unreachable_toleration(0)])
            await bound_pod(client, "pb", "b1", [unreachable_toleration(0)])
            lifecycle = await run_controllers(api, nursery)
            await wait_for(lambda: {"a1", "b1"} <= set(lifecycle.health), "both nodes' health")
            beats.alive.clear()  # every node of every zone falls silent: a partition of ours

            async def all_unknown() -> bool:
                for name in ("a1", "b1"):
                    n = await client.get(NODES, name)
                    ready = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
                    if ready["status"] != "Unknown":
                        return False
                return True

            await eventually(all_unknown, "both nodes Unknown", timeout=10)
            await trio.sleep(2.0)  # many monitor and tainting passes
            for name in ("a1", "b1"):
                assert taint_keys(await client.get(NODES, name), "NoExecute") == set()
            for name in ("pa", "pb"):
                assert not deleting(await client.get(PODS, name, namespace="default"))

            beats.alive.add("a1")  # zone za is back: zb's node is now really suspect
            await post_ready(client, "a1")

            async def pb_evicted() -> bool:
                return deleting(await client.get(PODS, "pb", namespace="default"))

            await eventually(pb_evicted, "the pod of the still silent node evicted", timeout=10)
            assert "node.kubernetes.io/unreachable" in taint_keys(
                await client.get(NODES, "b1"), "NoExecute"
            )
            assert not deleting(await client.get(PODS, "pa", namespace="default"))
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_node_reporting_not_ready_gets_the_not_ready_taints(api: APIHarness) -> None:
    client = api.admin
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            beats = Heartbeats(client)
            # Two nodes: with the only node down the zone would be fully disrupted.
            for name in ("sick", "well"):
                await register_node(client, name)
                beats.alive.add(name)
            nursery.start_soon(beats.run)
            not_ready = {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 0,
            }
            await bound_pod(client, "victim", "sick", [not_ready])
            lifecycle = await run_controllers(api, nursery)
            await wait_for(lambda: "sick" in lifecycle.health, "the node's health")
            # The kubelet is alive (its Lease is renewed) but says the node is not ready.
            node = await client.get(NODES, "sick")
            for condition in node["status"]["conditions"]:
                if condition["type"] == "Ready":
                    condition.update(status="False", reason="KubeletNotReady")
            await client.update(NODES, node, subresource="status")

            async def tainted() -> bool:
                n = await client.get(NODES, "sick")
                key = "node.kubernetes.io/not-ready"
                return key in taint_keys(n, "NoExecute") and key in taint_keys(n, "NoSchedule")

            await eventually(tainted, "the not-ready taints", timeout=10)

            async def evicted() -> bool:
                return deleting(await client.get(PODS, "victim", namespace="default"))

            await eventually(evicted, "the pod not tolerating not-ready evicted", timeout=10)
            n = await client.get(NODES, "sick")
            ready = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")
            assert ready["status"] == "False"  # the kubelet's word stands: no Unknown
            nursery.cancel_scope.cancel()
