"""The ReplicaSet and ReplicationController controller: its decisions as functions, and the
controller against a real API server with a kubelet stand-in."""

from __future__ import annotations

import random
from typing import cast

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.controllers.controller_utils import (
    PodControl,
    pods_to_delete,
    rfc3339,
    slow_start_batch,
)
from raftkube.controllers.expectations import ControllerExpectations
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.ref_manager import claim_action
from raftkube.controllers.replicaset import (
    REPLICATION_CONTROLLERS,
    ReplicaSetController,
    calculate_status,
    replicas_diff,
)
from raftkube.controllers.replication import replication_manager
from raftkube.controllers.resources import resource
from raftkube.kubeclient import KubeClient, KubeConnectionError
from tests.helpers.api_server import APIHarness
from tests.helpers.polling import eventually
from tests.helpers.workloads import (
    PODS,
    REPLICA_SETS,
    LaggingFactory,
    bare_pod,
    ensure_default_account,
    kubelet_standin,
    owned_pods,
    pod_template,
    replica_set,
)

EVENTS = resource("", "v1", "events")
COST = "controller.kubernetes.io/pod-deletion-cost"
Obj = dict


class ManualClock:
    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        return self.t

    async def sleep_until(self, deadline: float) -> None:
        raise AssertionError("not used")

    def cancel_scope_at(self, deadline: float) -> trio.CancelScope:
        raise AssertionError("not used")


def pod(
    name: str,
    *,
    node: str = "",
    phase: str = "Running",
    ready: bool = True,
    cost: int | None = None,
    created: str = "2026-01-01T00:00:00Z",
    ready_since: str = "2026-01-01T00:00:00Z",
    owner_uid: str | None = None,
) -> Obj:
    meta: Obj = {"name": name, "namespace": "default", "uid": f"uid-{name}",
                 "creationTimestamp": created, "labels": {"app": "a"}}  # fmt: skip
    if cost is not None:
        meta["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    if owner_uid:
        meta["ownerReferences"] = [{"uid": owner_uid, "controller": True, "kind": "ReplicaSet",
                                    "name": "rs", "apiVersion": "apps/v1"}]  # fmt: skip
    conditions = [{"type": "Ready", "status": "True" if ready else "False",
                   "lastTransitionTime": ready_since}]  # fmt: skip
    return {
        "metadata": meta,
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, "conditions": conditions},
    }


NOW = 1_790_000_000.0  # 2026-09-21T13:46:40Z


def test_deletion_order_follows_upstream_ranking() -> None:
    pods = [
        pod("old-ready", node="n1", created="2026-01-01T00:00:00Z"),
        pod("unscheduled", phase="Pending", ready=False),
        pod("pending", node="n1", phase="Pending", ready=False),
        pod("not-ready", node="n1", ready=False),
        pod("cheap", node="n1", cost=-10),
        pod("young-ready", node="n1", ready_since="2026-09-20T00:00:00Z"),
    ]
    order = [p["metadata"]["name"] for p in pods_to_delete(pods, [], 5, NOW)]
    assert order == ["unscheduled", "pending", "not-ready", "cheap", "young-ready"]
    # Deleting them all needs no order (upstream skips the sort too).
    assert pods_to_delete(pods, [], 6, NOW) == pods
    assert [p["metadata"]["name"] for p in pods_to_delete(pods, [], 2, NOW)] == [
        "unscheduled",
        "pending",
    ]
    # Doubled up on a node goes before alone, other things equal.
    a, b = pod("alone", node="n2"), pod("crowded", node="n1")
    related = [a, b, pod("sibling", node="n1")]
    assert pods_to_delete([a, b], related, 1, NOW)[0]["metadata"]["name"] == "crowded"


def test_claim_decisions() -> None:
    owner = {"metadata": {"name": "rs", "namespace": "default", "uid": "u1"}}
    mine, theirs, orphan = pod("m", owner_uid="u1"), pod("t", owner_uid="u2"), pod("o")
    assert claim_action(owner, mine, True) == "keep"
    assert claim_action(owner, mine, False) == "release"
    assert claim_action(owner, theirs, True) == "ignore"
    assert claim_action(owner, orphan, True) == "adopt"
    assert claim_action(owner, orphan, False) == "ignore"
    deleting = {"metadata": {**owner["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert claim_action(deleting, mine, False) == "ignore"
    assert claim_action(deleting, orphan, True) == "ignore"


def test_status_counts_and_replica_failure() -> None:
    owner = {
        "metadata": {"generation": 2},
        "spec": {"replicas": 3, "minReadySeconds": 60, "template": pod_template({"app": "a"})},
        "status": {},
    }
    pods = [pod("a", ready_since="2026-01-01T00:00:00Z"), pod("b", ready_since=rfc3339(NOW - 10)),
            pod("c", ready=False)]  # fmt: skip
    status = calculate_status(owner, pods, None, NOW)
    assert (status["replicas"], status["fullyLabeledReplicas"]) == (3, 3)
    assert (status["readyReplicas"], status["availableReplicas"]) == (2, 1)
    failed = calculate_status(owner, pods[:1], "pods is forbidden", NOW)
    (condition,) = failed["conditions"]
    assert condition["type"] == "ReplicaFailure" and condition["reason"] == "FailedCreate"
    assert condition["message"] == "pods is forbidden"
    healed = calculate_status({**owner, "status": failed}, pods, None, NOW)
    assert "conditions" not in healed
    assert replicas_diff(owner, pods[:1]) == -2
    assert replicas_diff(owner, pods * 400, burst=500) == 500


def test_expectations_block_until_observed_or_expired() -> None:
    clock = ManualClock()
    expectations = ControllerExpectations(clock)
    assert expectations.satisfied("ns/rs")
    expectations.expect_creations("ns/rs", 2)
    expectations.creation_observed("ns/rs")
    assert not expectations.satisfied("ns/rs")
    expectations.creation_observed("ns/rs")
    assert expectations.satisfied("ns/rs")
    expectations.expect_deletions("ns/rs", ["ns/a", "ns/b"])
    expectations.deletion_observed("ns/rs", "ns/a")
    expectations.deletion_observed("ns/rs", "ns/a")  # the same pod reported twice counts once
    assert not expectations.satisfied("ns/rs")
    clock.t += 301
    assert expectations.satisfied("ns/rs")


@pytest.mark.trio
async def test_slow_start_stops_after_a_failing_batch() -> None:
    calls = 0

    async def fail_from_the_fourth() -> None:
        nonlocal calls
        calls += 1
        if calls >= 4:
            raise RuntimeError("quota")

    successes, failure = await slow_start_batch(10, 1, fail_from_the_fourth)
    # Batches of 1 and 2 succeed; the batch of 4 has failures and stops the run.
    assert calls == 7 and successes == 3 and isinstance(failure, RuntimeError)


class FlakyPodControl:
    """Deletes by name; the deletions of ``broken`` pods fail as a connection reset does."""

    def __init__(self, broken: set[str]) -> None:
        self.broken = broken
        self.deleted: list[str] = []

    async def delete_pod(self, namespace: str, name: str, owner: object) -> None:
        if name in self.broken:
            await trio.lowlevel.checkpoint()
            raise KubeConnectionError("connection broke while sending: connection reset")
        # Slower than the failure, so a failure that cancelled its siblings would stop this.
        for _ in range(5):
            await trio.lowlevel.checkpoint()
        self.deleted.append(name)


@pytest.mark.trio
async def test_a_deletion_lost_with_its_connection_lowers_the_expectations() -> None:
    # The cluster suite's trace: the API server restarted under a scale-down, one DELETE
    # broke with the connection, and the owner then waited five minutes for a deletion no
    # watch would report. Upstream lowers the expectation for any failed deletion and lets
    # the others finish.
    clock = ManualClock()
    client = cast(KubeClient, None)  # nothing here reaches the API: the informers never run
    controller = ReplicaSetController(
        client, SharedInformerFactory(client, clock=clock), clock, wall=lambda: 1.8e9
    )
    flaky = FlakyPodControl({"a"})
    controller.pod_control = cast(PodControl, flaky)
    owner = replica_set("rs", 0, {"app": "a"})
    owner["metadata"]["uid"] = "uid-rs"
    with pytest.raises(KubeConnectionError):
        await controller.manage_replicas(owner, [pod("a"), pod("b")])
    assert flaky.deleted == ["b"]
    # Only the deletion that was sent is still awaited from the pod informer.
    assert not controller.expectations.satisfied("default/rs")
    controller.expectations.deletion_observed("default/rs", "default/b")
    assert controller.expectations.satisfied("default/rs")

    # Every deletion lost: the retry may manage the owner at once.
    flaky.broken = {"a", "b"}
    with pytest.raises(KubeConnectionError):
        await controller.manage_replicas(owner, [pod("a"), pod("b")])
    assert controller.expectations.satisfied("default/rs")


def _start(api: APIHarness, factory: SharedInformerFactory, controller: ReplicaSetController,
           nursery: trio.Nursery) -> None:  # fmt: skip
    factory.start(nursery)
    nursery.start_soon(controller.run)


@pytest.mark.trio
async def test_converges_to_three_and_stays_there_with_a_lagging_pod_informer(
    api: APIHarness,
) -> None:
    client = api.admin
    clock = TrioClock()
    factory = LaggingFactory(client, clock=clock, lagging=(PODS,), delay=0.7)
    controller = ReplicaSetController(client, factory, clock)
    await ensure_default_account(client)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            _start(api, factory, controller, nursery)
            nursery.start_soon(kubelet_standin, client)
            rs = await client.create(REPLICA_SETS, replica_set("web", 3, {"app": "web"}))
            uid = rs["metadata"]["uid"]
            most = 0

            async def available() -> bool:
                nonlocal most
                most = max(most, len(await owned_pods(client, uid)))
                got = await client.get(REPLICA_SETS, "web", namespace="default")
                return (got.get("status") or {}).get("availableReplicas") == 3

            await eventually(available, "three available replicas", timeout=30)
            # Keep looking while every late event arrives and the status settles.
            end = trio.current_time() + 2.5
            while trio.current_time() < end:
                most = max(most, len(await owned_pods(client, uid)))
                await trio.sleep(0.05)
            assert most == 3
            got = await client.get(REPLICA_SETS, "web", namespace="default")
            status = got["status"]
            assert status["replicas"] == status["readyReplicas"] == 3
            assert status["observedGeneration"] == got["metadata"]["generation"]
            pods = await owned_pods(client, uid)
            assert all(p["metadata"]["generateName"] == "web-" for p in pods)
            ref = pods[0]["metadata"]["ownerReferences"][0]
            assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                           "uid": uid, "controller": True, "blockOwnerDeletion": True}  # fmt: skip
            events = await client.list(EVENTS, namespace="default")
            created = [e for e in events["items"] if e["reason"] == "SuccessfulCreate"]
            assert len(created) == 3
            assert created[0]["message"].startswith("Created pod: web-")
            assert created[0]["source"] == {"component": "replicaset-controller"}
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_scaling_down_deletes_not_ready_then_cheapest(api: APIHarness) -> None:
    client = api.admin
    clock = TrioClock()
    factory = SharedInformerFactory(client, clock=clock, rng=random.Random(3))
    controller = ReplicaSetController(client, factory, clock)
    sick: set[str] = set()
    await ensure_default_account(client)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            _start(api, factory, controller, nursery)
            nursery.start_soon(
                lambda: kubelet_standin(client, ready=lambda p: p["metadata"]["name"] not in sick)
            )
            rs = await client.create(REPLICA_SETS, replica_set("api", 4, {"app": "api"}))
            uid = rs["metadata"]["uid"]

            async def ready_count(n: int) -> bool:
                got = await client.get(REPLICA_SETS, "api", namespace="default")
                return (got.get("status") or {}).get("readyReplicas") == n

            await eventually(lambda: ready_count(4), "four ready")
            names = sorted(p["metadata"]["name"] for p in await owned_pods(client, uid))
            sick.add(names[0])
            await eventually(lambda: ready_count(3), "one turned not ready")
            cost = {"metadata": {"annotations": {COST: "-5"}}}
            await client.patch(PODS, names[1], cost, namespace="default")
            await client.patch(REPLICA_SETS, "api", {"spec": {"replicas": 2}}, namespace="default")

            async def two_left() -> bool:
                return len(await owned_pods(client, uid)) == 2

            await eventually(two_left, "two pods left")
            left = sorted(p["metadata"]["name"] for p in await owned_pods(client, uid))
            assert left == names[2:]
            events = await client.list(EVENTS, namespace="default")
            deleted = sorted(
                e["message"] for e in events["items"] if e["reason"] == "SuccessfulDelete"
            )
            assert deleted == [f"Deleted pod: {n}" for n in names[:2]]
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_adopts_orphans_and_releases_pods_that_stop_matching(api: APIHarness) -> None:
    client = api.admin
    clock = TrioClock()
    factory = SharedInformerFactory(client, clock=clock, rng=random.Random(4))
    controller = ReplicaSetController(client, factory, clock)
    await ensure_default_account(client)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            orphan = await client.create(PODS, bare_pod("orphan", {"app": "db"}))
            _start(api, factory, controller, nursery)
            rs = await client.create(REPLICA_SETS, replica_set("db", 2, {"app": "db"}))
            uid = rs["metadata"]["uid"]

            async def two() -> list[Obj] | None:
                pods = await owned_pods(client, uid)
                return pods if len(pods) == 2 else None

            pods = await eventually(two, "two pods, one adopted")
            assert orphan["metadata"]["uid"] in {p["metadata"]["uid"] for p in pods}
            relabel = {"metadata": {"labels": {"app": "elsewhere"}}}
            await client.patch(PODS, "orphan", relabel, namespace="default")

            async def replaced() -> bool:
                pods = await owned_pods(client, uid)
                names = {p["metadata"]["name"] for p in pods}
                return len(pods) == 2 and "orphan" not in names

            await eventually(replaced, "the relabelled pod released and replaced")
            released = await client.get(PODS, "orphan", namespace="default")
            assert not released["metadata"].get("ownerReferences")
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_replication_controller(api: APIHarness) -> None:
    client = api.admin
    clock = TrioClock()
    factory = SharedInformerFactory(client, clock=clock, rng=random.Random(5))
    controller = replication_manager(client, factory, clock)
    rc = {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "legacy", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"app": "legacy"},
                 "template": pod_template({"app": "legacy"})},
    }  # fmt: skip
    await ensure_default_account(client)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            _start(api, factory, controller, nursery)
            nursery.start_soon(kubelet_standin, client)
            created = await client.create(REPLICATION_CONTROLLERS, rc)

            async def ready() -> bool:
                got = await client.get(REPLICATION_CONTROLLERS, "legacy", namespace="default")
                return (got.get("status") or {}).get("readyReplicas") == 2

            await eventually(ready, "two ready replicas")
            pods = await owned_pods(client, created["metadata"]["uid"])
            assert len(pods) == 2
            assert pods[0]["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController"
            events = await client.list(EVENTS, namespace="default")
            sources = {e["source"]["component"] for e in events["items"]}
            assert "replication-controller" in sources
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_refused_creations_record_failed_create_and_replica_failure(
    api: APIHarness,
) -> None:
    client = api.admin
    clock = TrioClock()
    factory = SharedInformerFactory(client, clock=clock, rng=random.Random(6))
    controller = ReplicaSetController(client, factory, clock)
    namespaces = resource("", "v1", "namespaces")
    await client.create(namespaces, {"metadata": {"name": "bare"}})
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            _start(api, factory, controller, nursery)
            # No default ServiceAccount in "bare": admission refuses every pod.
            rs = await client.create(REPLICA_SETS, replica_set("job", 2, {"app": "job"}, "bare"))

            async def failing() -> Obj | None:
                got = await client.get(REPLICA_SETS, "job", namespace="bare")
                for condition in (got.get("status") or {}).get("conditions") or []:
                    if condition["type"] == "ReplicaFailure":
                        return condition
                return None

            condition = await eventually(failing, "the ReplicaFailure condition")
            assert condition["status"] == "True" and condition["reason"] == "FailedCreate"
            assert "error looking up service account bare/default" in condition["message"]
            events = await client.list(EVENTS, namespace="bare")
            failed = [e for e in events["items"] if e["reason"] == "FailedCreate"]
            assert failed and failed[0]["type"] == "Warning"
            assert failed[0]["message"].startswith("Error creating: pods ")

            await ensure_default_account(client, "bare")

            async def healed() -> bool:
                got = await client.get(REPLICA_SETS, "job", namespace="bare")
                status = got.get("status") or {}
                return status.get("replicas") == 2 and not status.get("conditions")

            await eventually(healed, "two pods and the condition removed", timeout=30)
            assert len(await owned_pods(client, rs["metadata"]["uid"], "bare")) == 2
            nursery.cancel_scope.cancel()
