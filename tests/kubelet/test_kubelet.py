"""The kubelet over the simulated runtime against a real API server, with only its node's
credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from raftkube.kubelet import Kubelet, NodeConfig, RuntimeProber
from raftkube.runtime import ContainerScript, ContainerState, SimulatedRuntime
from tests.helpers.api_server import APIHarness
from tests.helpers.clocks import FastClock
from tests.helpers.kubelet import (
    PODS,
    condition,
    container,
    ensure_default_service_account,
    pod,
    wait_for_pod,
)
from tests.helpers.polling import eventually

Obj = dict[str, Any]

SCRIPTS = {
    "crash": ContainerScript(exit_after=0.5, exit_code=1),
    "slow-stop": ContainerScript(stop_takes=1000.0),
    "finishes": ContainerScript(exit_after=1.0, exit_code=0),
    "hangs": ContainerScript(ready_after=0.0, live_for=15.0),
}


@asynccontextmanager
async def kubelet(
    api: APIHarness,
    runtime: SimulatedRuntime,
    name: str = "n1",
    cpu: str = "2",
    record_events: bool = False,
) -> AsyncIterator[Kubelet]:
    await ensure_default_service_account(api.admin)
    client = api.client_for(f"system:node:{name}", ("system:nodes",))
    config = NodeConfig(
        name, "127.1.0.0/24", cpu=cpu, memory="4Gi", max_pods=10, runtime_name="sim"
    )
    kl = Kubelet(
        client,
        runtime,
        config,
        runtime.clock,
        prober=RuntimeProber(runtime),
        record_events=record_events,
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(kl.run)
        yield kl
        nursery.cancel_scope.cancel()
    await client.aclose()


def sim_runtime() -> SimulatedRuntime:
    return SimulatedRuntime(FastClock(), "127.1.0.0/24", SCRIPTS)


@pytest.mark.trio
async def test_node_registers_with_capacity_and_lease(api: APIHarness) -> None:
    with trio.fail_after(30):
        async with kubelet(api, sim_runtime()):
            with trio.move_on_after(10):
                while True:
                    try:
                        lease = await api.admin.get(
                            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"
                        )
                        break
                    except Exception:
                        await trio.sleep(0.05)
            node = await api.admin.get("/api/v1/nodes/n1")
    assert node["status"]["allocatable"] == {"cpu": "2", "memory": "4Gi", "pods": "10"}
    assert node["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    assert condition(node, "Ready") == "True"
    assert node["spec"]["podCIDR"] == "127.1.0.0/24"
    assert lease["spec"]["holderIdentity"] == "n1"
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]


@pytest.mark.trio
async def test_a_bound_pod_becomes_running_and_ready(api: APIHarness) -> None:
    with trio.fail_after(30):
        async with kubelet(api, sim_runtime()):
            await api.admin.create(
                PODS,
                pod(
                    "web",
                    "n1",
                    container(
                        "app",
                        env=[
                            {
                                "name": "ME",
                                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                            }
                        ],
                    ),
                    initContainers=[container("setup", "finishes")],
                ),
            )
            ready = await wait_for_pod(api.admin, "web", lambda p: condition(p, "Ready") == "True")
    status = ready["status"]
    assert status["phase"] == "Running"
    assert status["podIP"] == "127.1.0.2"
    assert status["hostIP"] == "127.0.0.1"
    assert "startTime" in status
    [app] = status["containerStatuses"]
    assert (app["ready"], app["restartCount"]) == (True, 0)
    assert "running" in app["state"]
    [setup] = status["initContainerStatuses"]
    assert setup["state"]["terminated"]["reason"] == "Completed"
    for kind in ("Initialized", "ContainersReady", "PodScheduled"):
        assert condition(ready, kind) == "True"


@pytest.mark.trio
async def test_a_crashing_container_backs_off(api: APIHarness) -> None:
    with trio.fail_after(40):
        async with kubelet(api, sim_runtime()):
            await api.admin.create(PODS, pod("crashy", "n1", container("app", "crash")))
            looping = await wait_for_pod(
                api.admin,
                "crashy",
                lambda p: any(
                    s["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff"
                    for s in (p.get("status") or {}).get("containerStatuses") or []
                ),
            )
    [app] = looping["status"]["containerStatuses"]
    assert app["restartCount"] >= 1
    assert app["state"]["waiting"]["message"].startswith("back-off ")
    assert (
        "restarting failed container=app pod=crashy_default(" in app["state"]["waiting"]["message"]
    )
    assert app["lastState"]["terminated"]["exitCode"] == 1
    assert looping["status"]["phase"] == "Running"
    assert condition(looping, "Ready") == "False"


@pytest.mark.trio
async def test_a_pod_that_does_not_fit_fails_out_of_cpu(api: APIHarness) -> None:
    big = container("app", resources={"requests": {"cpu": "3"}})
    with trio.fail_after(30):
        async with kubelet(api, sim_runtime()) as kl:
            await api.admin.create(PODS, pod("big", "n1", big))
            failed = await wait_for_pod(
                api.admin, "big", lambda p: (p.get("status") or {}).get("phase") == "Failed"
            )
            assert kl.workers == {}
    assert failed["status"]["reason"] == "OutOfcpu"
    assert failed["status"]["message"] == (
        "Pod was rejected: Node didn't have enough resource: cpu, requested: 3000, used: 0, "
        "capacity: 2000"
    )


@pytest.mark.trio
async def test_deletion_is_graceful_then_the_pod_goes(api: APIHarness) -> None:
    runtime = sim_runtime()
    with trio.fail_after(40):
        async with kubelet(api, runtime):
            await api.admin.create(
                PODS,
                pod("slow", "n1", container("app", "slow-stop"), terminationGracePeriodSeconds=20),
            )
            await wait_for_pod(api.admin, "slow", lambda p: condition(p, "Ready") == "True")
            [sandbox] = await runtime.list_pod_sandboxes()
            [running] = await runtime.list_containers(sandbox.id)
            assert running.state is ContainerState.RUNNING
            t0 = runtime.clock.now()
            await api.admin.delete(f"{PODS}/slow")
            await wait_for_pod(api.admin, "slow", lambda p: p == {})
    assert await runtime.list_pod_sandboxes() == []
    # The container was killed at the grace period (20 s on the kubelet's clock), no sooner.
    assert runtime.clock.now() - t0 >= 20


@pytest.mark.trio
async def test_a_restarted_kubelet_adopts_its_pods(api: APIHarness) -> None:
    runtime = sim_runtime()
    with trio.fail_after(40):
        async with kubelet(api, runtime):
            await api.admin.create(PODS, pod("kept", "n1", container("app")))
            await wait_for_pod(api.admin, "kept", lambda p: condition(p, "Ready") == "True")
        before = await runtime.list_containers()
        async with kubelet(api, runtime) as kl:
            with trio.move_on_after(10):
                while "kept" not in [w.pod["metadata"]["name"] for w in kl.workers.values()]:
                    await trio.sleep(0.05)
            await trio.sleep(0.5)
            after = await runtime.list_containers()
            current = await api.admin.get(f"{PODS}/kept")
    assert [c.id for c in after] == [c.id for c in before]
    assert current["status"]["containerStatuses"][0]["restartCount"] == 0
    assert condition(current, "Ready") == "True"


@pytest.mark.trio
async def test_a_failed_liveness_probe_restarts_the_container(api: APIHarness) -> None:
    probe = {"exec": {"command": ["check"]}, "periodSeconds": 5, "failureThreshold": 2}
    hung = container("app", "hangs", livenessProbe=probe, readinessProbe=probe)
    with trio.fail_after(40):
        async with kubelet(api, sim_runtime()):
            await api.admin.create(PODS, pod("hung", "n1", hung, terminationGracePeriodSeconds=1))
            restarted = await wait_for_pod(
                api.admin,
                "hung",
                lambda p: any(
                    s["restartCount"] >= 1 and "running" in s["state"]
                    for s in (p.get("status") or {}).get("containerStatuses") or []
                ),
            )
    [app] = restarted["status"]["containerStatuses"]
    assert app["lastState"]["terminated"]["exitCode"] == 0


async def kubelet_events(api: APIHarness, pod_name: str, *reasons: str) -> list[Obj]:
    """The kubelet's Events about pod ``pod_name``, oldest first, once ``reasons`` are among
    them (they are written in the background)."""

    async def found() -> list[Obj]:
        listed = await api.admin.list("/api/v1/namespaces/default/events")
        mine = [
            e
            for e in listed["items"]
            if e["source"].get("component") == "kubelet" and e["involvedObject"]["name"] == pod_name
        ]
        mine.sort(key=lambda e: e["metadata"]["name"])
        return mine if set(reasons) <= {e["reason"] for e in mine} else []

    return await eventually(found, f"the kubelet's {', '.join(reasons)} events", timeout=20)


def described(events: list[Obj]) -> list[tuple[str, str, str, str]]:
    """What ``kubectl describe`` shows of each event, with the container it is about."""
    return [
        (e["type"], e["reason"], e["involvedObject"].get("fieldPath", ""), e["message"])
        for e in events
    ]


@pytest.mark.trio
async def test_events_tell_a_pods_containers_story(api: APIHarness) -> None:
    with trio.fail_after(60):
        async with kubelet(api, sim_runtime(), record_events=True):
            await api.admin.create(
                PODS,
                pod(
                    "web",
                    "n1",
                    container("app", "sim"),
                    initContainers=[container("setup", "finishes")],
                ),
            )
            created = await wait_for_pod(
                api.admin, "web", lambda p: condition(p, "Ready") == "True"
            )
            await api.admin.delete(f"{PODS}/web")
            await wait_for_pod(api.admin, "web", lambda p: p == {})
            events = await kubelet_events(api, "web", "Killing")
    setup, app = "spec.initContainers{setup}", "spec.containers{app}"
    assert described(events) == [
        ("Normal", "Pulled", setup, 'Container image "finishes" already present on machine'),
        ("Normal", "Created", setup, "Created container setup"),
        ("Normal", "Started", setup, "Started container setup"),
        ("Normal", "Pulled", app, 'Container image "sim" already present on machine'),
        ("Normal", "Created", app, "Created container app"),
        ("Normal", "Started", app, "Started container app"),
        ("Normal", "Killing", app, "Stopping container app"),
    ]
    for event in events:
        assert event["involvedObject"]["kind"] == "Pod"
        assert event["involvedObject"]["uid"] == created["metadata"]["uid"]
        assert event["source"] == {"component": "kubelet", "host": "n1"}


@pytest.mark.trio
async def test_a_crash_loop_and_a_failed_liveness_probe_are_events(api: APIHarness) -> None:
    probe = {"exec": {"command": ["check"]}, "periodSeconds": 5, "failureThreshold": 2}
    hung = container("app", "hangs", livenessProbe=probe)
    with trio.fail_after(60):
        async with kubelet(api, sim_runtime(), record_events=True):
            crashy = await api.admin.create(PODS, pod("crashy", "n1", container("app", "crash")))
            await api.admin.create(PODS, pod("hung", "n1", hung, terminationGracePeriodSeconds=1))
            restarted = await kubelet_events(api, "hung", "Killing")

            async def counted_back_off() -> list[Obj]:
                events = await kubelet_events(api, "crashy", "BackOff")
                back_off = [e for e in events if e["reason"] == "BackOff"]
                return events if back_off[0]["count"] >= 2 else []

            looping = await eventually(counted_back_off, "a BackOff event counted twice")
    uid = crashy["metadata"]["uid"]
    # The crash loop's repeated BackOff is one event counted, not an event per sync.
    assert [e for e in described(looping) if e[1] == "BackOff"] == [
        (
            "Warning",
            "BackOff",
            "spec.containers{app}",
            f"Back-off restarting failed container app in pod crashy_default({uid})",
        )
    ]
    [back_off] = [e for e in looping if e["reason"] == "BackOff"]
    assert back_off["lastTimestamp"] >= back_off["firstTimestamp"]
    # Each restart is a Started event of its own only when its message differs: they do not,
    # so the restarts are counted on the first Started event too.
    [started] = [e for e in looping if e["reason"] == "Started"]
    assert started["count"] >= 2
    assert (
        "Normal",
        "Killing",
        "spec.containers{app}",
        "Container app failed liveness probe, will be restarted",
    ) in described(restarted)
    # Each failed attempt is an Unhealthy warning quoting the probe's output (the simulated
    # runtime's exec says nothing).
    assert (
        "Warning",
        "Unhealthy",
        "spec.containers{app}",
        "Liveness probe failed: ",
    ) in described(restarted)


@pytest.mark.trio
async def test_a_kubelet_without_events_records_none(api: APIHarness) -> None:
    with trio.fail_after(30):
        async with kubelet(api, sim_runtime()):
            await api.admin.create(PODS, pod("quiet", "n1", container("app")))
            await wait_for_pod(api.admin, "quiet", lambda p: condition(p, "Ready") == "True")
            # Events go out in the background: a pod's whole life gives a recorder that should
            # not be there the time to show itself.
            await api.admin.delete(f"{PODS}/quiet")
            await wait_for_pod(api.admin, "quiet", lambda p: p == {})
            listed = await api.admin.list("/api/v1/namespaces/default/events")
    assert [e for e in listed["items"] if e["source"].get("component") == "kubelet"] == []
