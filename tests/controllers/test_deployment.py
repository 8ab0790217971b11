"""The Deployment controller: its arithmetic as functions, and rollouts against a real API
server with the ReplicaSet controller and a kubelet stand-in, checked at every observed step."""

from __future__ import annotations

import shutil

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.controllers import deployment_progress as dp
from raftkube.controllers import deployment_util as du
from raftkube.controllers.deployment import DeploymentController
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.replicaset import ReplicaSetController
from raftkube.kubeclient import KubeClient
from tests.helpers.api_server import APIHarness
from tests.helpers.polling import eventually
from tests.helpers.workloads import (
    DEPLOYMENTS,
    PODS,
    REPLICA_SETS,
    ensure_default_account,
    kubelet_standin,
    pod_template,
    ready_value,
)

Obj = dict


def deployment(name: str, replicas: int, strategy: Obj, **spec: object) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template({"app": name}, image="web:1"),
            "strategy": strategy,
            **spec,
        },
    }


def rolling(surge: object, unavailable: object) -> Obj:
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge,
                                                        "maxUnavailable": unavailable}}  # fmt: skip


def test_fenceposts_round_as_upstream() -> None:
    assert du.resolve_fenceposts(deployment("d", 4, rolling("25%", "25%"))) == (1, 1)
    assert du.resolve_fenceposts(deployment("d", 10, rolling("25%", "25%"))) == (3, 2)
    assert du.resolve_fenceposts(deployment("d", 3, rolling(0, "10%"))) == (0, 1)
    assert du.max_unavailable(deployment("d", 2, rolling(0, 5))) == 2
    assert du.max_surge(deployment("d", 4, {"type": "Recreate"})) == 0


def rs(name: str, size: int, created: str, **annotations: str) -> Obj:
    return {"metadata": {"name": name, "uid": name, "creationTimestamp": created,
                         "annotations": annotations}, "spec": {"replicas": size}}  # fmt: skip


def test_new_replica_set_growth_and_proportional_scaling() -> None:
    d = deployment("d", 10, rolling(3, 2))
    old, new = rs("old", 8, "2026-01-01T00:00:00Z"), rs("new", 5, "2026-01-02T00:00:00Z")
    assert du.new_rs_new_replicas(d, [old, new], new) == 5  # 13 = 10 + 3: no room
    assert du.new_rs_new_replicas(d, [rs("old", 6, "x"), new], new) == 7
    # Resized to 15 mid-rollout: 5 more pods shared 8:5 by the sizes before (max 13).
    for obj in (old, new):
        obj["metadata"]["annotations"][du.MAX_REPLICAS] = "13"
    sizes = du.proportional_sizes(deployment("d", 15, rolling(3, 2)), new, [old])
    assert {r["metadata"]["name"]: n for r, n in sizes} == {"old": 11, "new": 7}


def test_hash_and_revision_annotations() -> None:
    template = pod_template({"app": "x"})
    first = du.compute_hash(template, None)
    assert first == du.compute_hash(template, None) != du.compute_hash(template, 1)
    assert set(first) <= set("bcdfghjklmnpqrstvwxz2456789")
    d = deployment("d", 2, rolling(1, 0))
    d["metadata"]["annotations"] = {"team": "a", du.LAST_APPLIED: "{}"}
    new = {"metadata": {"annotations": {du.REVISION: "1"}}}
    assert du.set_new_replica_set_annotations(d, new, 3, True)
    assert new["metadata"]["annotations"] == {du.REVISION: "3", du.REVISION_HISTORY: "1",
                                              "team": "a"}  # fmt: skip


def test_progress_conditions() -> None:
    d = deployment("d", 2, rolling(1, 0), progressDeadlineSeconds=30)
    d["metadata"]["generation"] = 1
    new = {"metadata": {"name": "d-abc"}, "spec": {"replicas": 2},
           "status": {"replicas": 2, "availableReplicas": 2, "readyReplicas": 2}}  # fmt: skip
    status = dp.rollout_status(d, [new], new, 1000.0)
    progressing = dp.get_condition(status, dp.PROGRESSING)
    assert progressing is not None and progressing["reason"] == "NewReplicaSetAvailable"
    assert progressing["message"] == 'ReplicaSet "d-abc" has successfully progressed.'
    stuck = {**new, "status": {"replicas": 2}}
    d["status"] = {"replicas": 2, "updatedReplicas": 2, "conditions": [dp.new_condition(
        dp.PROGRESSING, "True", dp.REPLICA_SET_UPDATED, "x", 1000.0)]}  # fmt: skip
    assert (
        dp.get_condition(dp.rollout_status(d, [stuck], stuck, 1010.0), dp.PROGRESSING)["reason"]
        == "ReplicaSetUpdated"
    )
    timed_out = dp.get_condition(dp.rollout_status(d, [stuck], stuck, 1031.0), dp.PROGRESSING)
    assert timed_out is not None and timed_out["reason"] == "ProgressDeadlineExceeded"
    assert timed_out["status"] == "False"


async def kubectl(api: APIHarness, *args: str) -> tuple[int, str, str]:
    result = await trio.run_process(
        ["kubectl", "--kubeconfig", str(api.kubeconfig), *args],
        capture_stdout=True, capture_stderr=True, check=False,
    )  # fmt: skip
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def snapshot(client: KubeClient, app: str) -> tuple[list[Obj], list[Obj]]:
    rss = (await client.list(REPLICA_SETS, namespace="default"))["items"]
    pods = (await client.list(PODS, namespace="default"))["items"]
    mine = [r for r in rss if r["metadata"]["name"].startswith(f"{app}-")]
    live = [p for p in pods if p["metadata"].get("labels", {}).get("app") == app
            and not p["metadata"].get("deletionTimestamp")]  # fmt: skip
    return mine, live


def _start(client: KubeClient, nursery: trio.Nursery) -> None:
    clock = TrioClock()
    factory = SharedInformerFactory(client, clock=clock)
    replicasets = ReplicaSetController(client, factory, clock)
    deployments = DeploymentController(client, factory, clock)
    factory.start(nursery)
    nursery.start_soon(replicasets.run)
    nursery.start_soon(deployments.run)


async def complete(client: KubeClient, name: str) -> bool:
    d = await client.get(DEPLOYMENTS, name, namespace="default")
    status = d.get("status") or {}
    want = d["spec"]["replicas"]
    return (
        status.get("observedGeneration") == d["metadata"]["generation"]
        and status.get("updatedReplicas") == want
        and status.get("replicas") == want
        and status.get("availableReplicas") == want
    )


@pytest.mark.trio
async def test_rolling_update_stays_within_surge_and_unavailability(api: APIHarness) -> None:
    client = api.admin
    await ensure_default_account(client)
    spec = deployment("web", 4, rolling(1, 1), revisionHistoryLimit=1)
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            _start(client, nursery)
            nursery.start_soon(kubelet_standin, client)
            await client.create(DEPLOYMENTS, spec)
            await eventually(lambda: complete(client, "web"), "the first rollout", timeout=30)
            for image in ("web:2", "web:3"):
                patch = {"spec": {"template": {"spec": {"containers": [
                    {"name": "c", "image": image}]}}}}  # fmt: skip
                await client.patch(DEPLOYMENTS, "web", patch, namespace="default")
                steps = 0
                while not await complete(client, "web"):
                    rss, pods = await snapshot(client, "web")
                    # Upstream's promise: the ReplicaSets never ask for more than
                    # replicas + maxSurge pods, and never fewer than replicas - maxUnavailable
                    # of the pods are ready.
                    assert sum(r["spec"]["replicas"] for r in rss) <= 5
                    assert sum(1 for p in pods if ready_value(p) == "True") >= 3
                    steps += 1
                    await trio.sleep(0.02)
                assert steps > 1

            async def cleaned_up() -> bool:
                return len((await snapshot(client, "web"))[0]) == 2

            # The sync after the one that saw the rollout complete deletes old ReplicaSets.
            await eventually(cleaned_up, "old ReplicaSets beyond revisionHistoryLimit deleted")
            rss, pods = await snapshot(client, "web")
            d = await client.get(DEPLOYMENTS, "web", namespace="default")
            assert d["metadata"]["annotations"][du.REVISION] == "3"
            # revisionHistoryLimit 1: the new ReplicaSet and one old one are left.
            by_revision = {r["metadata"]["annotations"][du.REVISION]: r for r in rss}
            assert sorted(by_revision) == ["2", "3"]
            new = by_revision["3"]
            pod_hash = new["metadata"]["labels"][du.POD_TEMPLATE_HASH]
            assert new["metadata"]["name"] == f"web-{pod_hash}"
            selector = new["spec"]["selector"]["matchLabels"]
            assert selector == {"app": "web", du.POD_TEMPLATE_HASH: pod_hash}
            assert new["spec"]["template"]["spec"]["containers"][0]["image"] == "web:3"
            assert (new["spec"]["replicas"], by_revision["2"]["spec"]["replicas"]) == (4, 0)
            assert len(pods) == 4
            conditions = {c["type"]: c for c in d["status"]["conditions"]}
            assert conditions["Available"]["status"] == "True"
            assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"
            if shutil.which("kubectl"):
                code, out, err = await kubectl(api, "rollout", "status", "deployment/web",
                                               "--timeout=20s")  # fmt: skip
                assert code == 0, err
                assert out.strip().endswith('deployment "web" successfully rolled out')
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_recreate_never_runs_old_and_new_together(api: APIHarness) -> None:
    client = api.admin
    await ensure_default_account(client)
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            _start(client, nursery)
            nursery.start_soon(kubelet_standin, client)
            await client.create(DEPLOYMENTS, deployment("batch", 3, {"type": "Recreate"}))
            await eventually(lambda: complete(client, "batch"), "the first rollout", timeout=30)
            patch = {"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "web:2"}]}}}}  # fmt: skip
            await client.patch(DEPLOYMENTS, "batch", patch, namespace="default")
            while not await complete(client, "batch"):
                _, pods = await snapshot(client, "batch")
                images = {p["spec"]["containers"][0]["image"] for p in pods}
                assert len(images) <= 1, images
                await trio.sleep(0.02)
            _, pods = await snapshot(client, "batch")
            assert {p["spec"]["containers"][0]["image"] for p in pods} == {"web:2"}
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_progress_deadline_exceeded_when_pods_never_become_ready(api: APIHarness) -> None:
    client = api.admin
    await ensure_default_account(client)
    spec = deployment("stuck", 2, rolling(1, 0), progressDeadlineSeconds=2)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            _start(client, nursery)
            nursery.start_soon(lambda: kubelet_standin(client, ready=lambda p: False))
            await client.create(DEPLOYMENTS, spec)

            async def timed_out() -> bool:
                d = await client.get(DEPLOYMENTS, "stuck", namespace="default")
                condition = dp.get_condition(d.get("status") or {}, dp.PROGRESSING)
                return condition is not None and condition["reason"] == dp.TIMED_OUT

            await eventually(timed_out, "ProgressDeadlineExceeded", timeout=20)
            if shutil.which("kubectl"):
                code, _, err = await kubectl(api, "rollout", "status", "deployment/stuck",
                                             "--timeout=10s")  # fmt: skip
                assert code != 0
                assert 'deployment "stuck" exceeded its progress deadline' in err
            nursery.cancel_scope.cancel()


def test_unhealthy_cleanup_never_scales_up_on_a_lagging_status() -> None:
    healthy = {**rs("a", 3, "2026-01-01T00:00:00Z"), "status": {"availableReplicas": 3}}
    sick = {**rs("b", 3, "2026-01-02T00:00:00Z"), "status": {"availableReplicas": 1}}
    plan = du.cleanup_unhealthy_plan([sick, healthy], 5)
    assert [(r["metadata"]["name"], n) for r, n in plan] == [("b", 1)]
    lagging = {**rs("c", 2, "2026-01-01T00:00:00Z"), "status": {"availableReplicas": 3}}
    with pytest.raises(ValueError, match="invalid request to scale down"):
        du.cleanup_unhealthy_plan([lagging], 5)


@pytest.mark.trio
async def test_paused_deployment_scales_but_does_not_roll_until_resumed(api: APIHarness) -> None:
    client = api.admin
    await ensure_default_account(client)

    async def observed() -> Obj | None:
        d = await client.get(DEPLOYMENTS, "calm", namespace="default")
        seen = (d.get("status") or {}).get("observedGeneration")
        return d if seen == d["metadata"]["generation"] else None

    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            _start(client, nursery)
            nursery.start_soon(kubelet_standin, client)
            await client.create(DEPLOYMENTS, deployment("calm", 2, rolling("25%", "25%")))
            await eventually(lambda: complete(client, "calm"), "the first rollout", timeout=30)
            await client.patch(DEPLOYMENTS, "calm", {"spec": {"paused": True}}, namespace="default")
            patch = {"spec": {"template": {"spec": {"containers": [
                {"name": "c", "image": "web:2"}]}}}}  # fmt: skip
            await client.patch(DEPLOYMENTS, "calm", patch, namespace="default")
            d = await eventually(observed, "the paused change observed")
            progressing = dp.get_condition(d["status"], dp.PROGRESSING)
            assert progressing is not None and progressing["reason"] == "DeploymentPaused"
            await client.patch(DEPLOYMENTS, "calm", {"spec": {"replicas": 3}}, namespace="default")
            await eventually(observed, "the resize observed")

            async def one_rs_of(size: int) -> bool:
                rss, _ = await snapshot(client, "calm")
                return len(rss) == 1 and rss[0]["spec"]["replicas"] == size

            await eventually(lambda: one_rs_of(3), "the one ReplicaSet resized, none created")
            await client.patch(DEPLOYMENTS, "calm", {"spec": {"paused": False}},
                               namespace="default")  # fmt: skip
            await eventually(lambda: complete(client, "calm"), "the resumed rollout", timeout=30)
            _, pods = await snapshot(client, "calm")
            assert sorted(p["spec"]["containers"][0]["image"] for p in pods) == ["web:2"] * 3
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_stale_desired_replicas_annotation_does_not_block_the_next_rollout(
    api: APIHarness,
) -> None:
    """The one active ReplicaSet already has the Deployment's size but a desired-replicas
    annotation left from an older size (as rapid scale and template changes leave it): a
    controller that only resizes on a size difference sees a scaling event on every sync and
    never rolls out (kubernetes #138036; found by the cluster suite)."""
    client = api.admin
    await ensure_default_account(client)
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            _start(client, nursery)
            nursery.start_soon(kubelet_standin, client)
            await client.create(DEPLOYMENTS, deployment("stale", 1, rolling("25%", "25%")))
            await eventually(lambda: complete(client, "stale"), "the first rollout", timeout=30)
            nursery.cancel_scope.cancel()
        (rs,), _ = await snapshot(client, "stale")
        stale = {"metadata": {"annotations": {"deployment.kubernetes.io/desired-replicas": "3"}}}
        await client.patch(REPLICA_SETS, rs["metadata"]["name"], stale, namespace="default")
        patch = {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "web:2"}]}}}}  # fmt: skip
        await client.patch(DEPLOYMENTS, "stale", patch, namespace="default")
        async with trio.open_nursery() as nursery:
            _start(client, nursery)
            nursery.start_soon(kubelet_standin, client)
            await eventually(lambda: complete(client, "stale"), "the second rollout", timeout=30)
            _, pods = await snapshot(client, "stale")
            assert [p["spec"]["containers"][0]["image"] for p in pods] == ["web:2"]
            nursery.cancel_scope.cancel()
