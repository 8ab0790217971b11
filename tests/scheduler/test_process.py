"""The scheduler process against a real API server and store: pods get bound and their
Events written; a pod that fits nowhere gets upstream's condition and FailedScheduling Event
and is bound once a node with room appears; a failed binding gives its capacity back; and of
two schedulers with leader election only the Lease holder binds, the other taking over when
it stops. Real sockets: the waits are real time."""

from __future__ import annotations

import random
from functools import partial
from typing import Any

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.kubeclient import KubeAPIError, KubeClient
from raftkube.scheduler.cli import SchedulerOptions, serve
from raftkube.scheduler.recorder import EVENTS
from raftkube.scheduler.scheduler import NODES, PODS, Scheduler
from tests.helpers.api_server import TOKEN, APIHarness
from tests.helpers.polling import eventually
from tests.helpers.scheduler_objects import node, pod

Obj = dict[str, Any]
SCHEDULER_USER = "system:kube-scheduler"


async def create_nodes(admin: KubeClient, *nodes: Obj) -> None:
    for n in nodes:
        await admin.create(NODES, n)


async def create_pods(admin: KubeClient, *pods: Obj) -> None:
    try:
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
        await admin.create("/api/v1/namespaces/default/serviceaccounts", account)
    except KubeAPIError as exc:
        if exc.code != 409:
            raise
    for p in pods:
        body = {**p, "metadata": {k: v for k, v in p["metadata"].items() if k != "uid"}}
        await admin.create(PODS, body)


async def node_of(admin: KubeClient, name: str) -> str:
    got = await admin.get(PODS, name, namespace="default")
    return str(got["spec"].get("nodeName") or "")


async def events_of(admin: KubeClient, name: str, reason: str) -> list[Obj]:
    listed = await admin.list(
        EVENTS,
        namespace="default",
        field_selector=f"involvedObject.name={name},reason={reason}",
    )
    return list(listed["items"])


@pytest.mark.trio
async def test_pods_are_bound_and_events_recorded(api: APIHarness) -> None:
    with trio.fail_after(60):
        await create_nodes(api.admin, node("n1", cpu="1"), node("n2", cpu="1"))
        async with api.client_for(SCHEDULER_USER) as client, trio.open_nursery() as nursery:
            clock = TrioClock()
            scheduler = Scheduler(client, clock, rng=random.Random(1))
            options = SchedulerOptions(kubeconfig=api.kubeconfig, leader_elect=False)
            nursery.start_soon(partial(serve, options, client, clock, scheduler=scheduler))
            pods = [pod(f"p{i}", cpu="300m") for i in range(6)]
            await create_pods(api.admin, *pods)

            async def all_bound() -> bool:
                return all([await node_of(api.admin, f"p{i}") for i in range(6)])

            await eventually(all_bound, "six pods bound")
            placed = [await node_of(api.admin, f"p{i}") for i in range(6)]
            # 1 cpu each: at most three 300m pods per node.
            assert sorted(placed) == ["n1"] * 3 + ["n2"] * 3
            got = await api.admin.get(PODS, "p0", namespace="default")
            scheduled = [c for c in got["status"]["conditions"] if c["type"] == "PodScheduled"]
            assert scheduled[0]["status"] == "True"

            async def scheduled_event() -> list[Obj]:
                return await events_of(api.admin, "p0", "Scheduled")

            (event,) = await eventually(scheduled_event, "the Scheduled event")
            assert event["message"] == f"Successfully assigned default/p0 to {placed[0]}"
            assert event["type"] == "Normal"
            assert event["source"] == {"component": "default-scheduler"}
            assert scheduler.cache.assumed_keys() == []
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_unschedulable_pod_gets_condition_and_event_then_binds(api: APIHarness) -> None:
    with trio.fail_after(60):
        taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
        await create_nodes(api.admin, node("small", cpu="1"), node("gpu", taints=[taint]))
        async with api.client_for(SCHEDULER_USER) as client, trio.open_nursery() as nursery:
            clock = TrioClock()
            scheduler = Scheduler(client, clock, rng=random.Random(2))
            options = SchedulerOptions(kubeconfig=api.kubeconfig, leader_elect=False)
            nursery.start_soon(partial(serve, options, client, clock, scheduler=scheduler))
            await create_pods(api.admin, pod("big", cpu="2"))
            expected = (
                "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint "
                "{dedicated: gpu}. preemption: 0/2 nodes are available: 1 No preemption "
                "victims found for incoming pod, 1 Preemption is not helpful for scheduling.."
            )

            async def condition() -> Obj | None:
                got = await api.admin.get(PODS, "big", namespace="default")
                for c in got["status"].get("conditions") or []:
                    if c["type"] == "PodScheduled":
                        return dict(c)
                return None

            found = await eventually(condition, "the PodScheduled condition")
            assert (found["status"], found["reason"]) == ("False", "Unschedulable")
            assert found["message"] == expected

            async def failed_event() -> list[Obj]:
                return await events_of(api.admin, "big", "FailedScheduling")

            events = await eventually(failed_event, "the FailedScheduling event")
            assert events[0]["type"] == "Warning" and events[0]["message"] == expected
            assert scheduler.queue.where("default/big") in ("unschedulable", "backoff")

            await create_nodes(api.admin, node("large", cpu="4"))

            async def bound() -> str:
                return await node_of(api.admin, "big")

            assert await eventually(bound, "the pod bound to the new node") == "large"
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_refused_binding_forgets_the_assumption(api: APIHarness) -> None:
    with trio.fail_after(60):
        await create_nodes(api.admin, node("n1", cpu="1"))
        async with (
            api.client_for(SCHEDULER_USER) as client,
            api.token_client(TOKEN) as alice,
            trio.open_nursery() as nursery,
        ):
            scheduler = Scheduler(client, TrioClock(), rng=random.Random(3))
            await create_pods(api.admin, pod("p", cpu="600m"))
            nursery.start_soon(scheduler.run_informers)
            await scheduler.wait_for_cache_sync()
            # Bindings go out as alice, who may not bind: 403.
            scheduler.client = alice
            queued = await scheduler.queue.pop()
            async with trio.open_nursery() as inner:
                scheduler.schedule_one(queued, inner)
                assert scheduler.cache.assumed_keys() == ["default/p"]
            assert scheduler.binding_errors == 1
            assert scheduler.cache.assumed_keys() == []
            n1 = scheduler.cache.node_info("n1")
            assert n1 is not None and n1.requested.milli_cpu == 0 and not n1.pods
            # Retried after its back-off: the move request came during its attempt.
            assert scheduler.queue.where("default/p") == "backoff"
            # Bound for real once bindings go out as the scheduler again.
            scheduler.client = client
            scheduler.queue.flush_backoff_completed()
            async with trio.open_nursery() as inner:
                nursery.start_soon(scheduler.queue.run)
                scheduler.schedule_one(await scheduler.queue.pop(), inner)
            assert await node_of(api.admin, "p") == "n1"
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_pod_bound_by_someone_else_meanwhile(api: APIHarness) -> None:
    with trio.fail_after(60):
        await create_nodes(api.admin, node("n1", cpu="1"), node("n2", cpu="1"))
        async with api.client_for(SCHEDULER_USER) as client, trio.open_nursery() as nursery:
            scheduler = Scheduler(client, TrioClock(), rng=random.Random(3))
            await create_pods(api.admin, pod("p", cpu="600m"))
            nursery.start_soon(scheduler.run_informers)
            await scheduler.wait_for_cache_sync()
            queued = await scheduler.queue.pop()
            binding = {"apiVersion": "v1", "kind": "Binding",
                       "metadata": {"name": "p", "namespace": "default"},
                       "target": {"kind": "Node", "name": "n2"}}  # fmt: skip
            await api.admin.create(PODS, binding, namespace="default", name="p",
                                   subresource="binding")  # fmt: skip
            async with trio.open_nursery() as inner:
                scheduler.schedule_one(queued, inner)
            assert scheduler.binding_errors <= 1
            assert scheduler.cache.assumed_keys() == []
            assert await node_of(api.admin, "p") == "n2"

            async def counted_on_n2() -> bool:
                info = scheduler.cache.node_info("n2")
                n1 = scheduler.cache.node_info("n1")
                return (
                    info is not None
                    and "default/p" in info.pods
                    and n1 is not None
                    and (not n1.pods)
                )

            await eventually(counted_on_n2, "the pod counted on n2 only")
            assert scheduler.queue.where("default/p") is None
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_leader_failover_of_two_schedulers(api: APIHarness) -> None:
    with trio.fail_after(90):
        await create_nodes(api.admin, node("n1"))
        clock = TrioClock()
        fast = {"lease_duration": 2.0, "renew_deadline": 1.5, "retry_period": 0.5}
        async with (
            api.client_for(SCHEDULER_USER) as client_a,
            api.client_for(SCHEDULER_USER) as client_b,
            trio.open_nursery() as nursery,
        ):
            a = Scheduler(client_a, clock, rng=random.Random(4), identity="a")
            b = Scheduler(client_b, clock, rng=random.Random(5), identity="b")
            options_a = SchedulerOptions(api.kubeconfig, identity="a", **fast)
            options_b = SchedulerOptions(api.kubeconfig, identity="b", **fast)
            scope_a = trio.CancelScope()

            async def run_a() -> None:
                with scope_a:
                    await serve(options_a, client_a, clock, scheduler=a)

            nursery.start_soon(run_a)

            async def holder() -> str:
                try:
                    lease = await api.admin.get(
                        "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
                        "kube-scheduler",
                    )
                except KubeAPIError:
                    return ""
                return str(lease["spec"].get("holderIdentity") or "")

            assert await eventually(holder, "a leader") == "a"
            nursery.start_soon(partial(serve, options_b, client_b, clock, scheduler=b))
            await create_pods(api.admin, pod("first"))
            await eventually(lambda: node_of(api.admin, "first"), "first bound")
            assert (a.bound, b.bound) == (1, 0)
            scope_a.cancel()  # a crashes: no release, b must wait out the lease.

            async def b_leads() -> bool:
                return await holder() == "b"

            await eventually(b_leads, "b takes the lease")
            await create_pods(api.admin, pod("second"))
            await eventually(lambda: node_of(api.admin, "second"), "second bound")
            assert (a.bound, b.bound) == (1, 1)
            nursery.cancel_scope.cancel()
