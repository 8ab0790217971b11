"""The endpoints controller: its decisions as functions, and the controller against a real API
server with pods whose readiness the test sets."""

from __future__ import annotations

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.controllers.endpoints import (
    ENDPOINTS,
    SERVICES,
    EndpointsController,
    desired_endpoints,
    desired_subsets,
    truncate_endpoints,
)
from raftkube.kubeclient import KubeClient
from tests.helpers.api_server import APIHarness
from tests.helpers.controllers import get_or_none
from tests.helpers.polling import eventually, wait_for
from tests.helpers.workloads import (
    PODS,
    LaggingFactory,
    bare_pod,
    ensure_default_account,
    set_pod_ready,
)

Obj = dict


def service(name: str = "web", **spec: object) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "labels": {"tier": "front"}},
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            **spec,
        },
    }


def pod(name: str, ip: str, ready: bool, **extra: object) -> Obj:
    obj = bare_pod(name, {"app": "web"})
    obj["metadata"]["uid"] = f"uid-{name}"
    obj["status"] = {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        **extra,
    }
    return obj


def test_subsets_split_ready_and_not_ready_in_a_stable_order() -> None:
    svc = {**service(), "spec": {**service()["spec"], "clusterIP": "127.96.0.9"}}
    unselected = {**pod("other", "10.0.0.9", True), "metadata": {"name": "x", "labels": {}}}
    pods = [pod("b", "10.0.0.20", True), pod("a", "10.0.0.3", True), pod("c", "10.0.0.7", False),
            pod("done", "10.0.0.8", True, phase="Succeeded"), pod("no-ip", "", True),
            unselected]  # fmt: skip
    subsets = desired_subsets(svc, pods)
    assert subsets == [
        {
            "addresses": [
                {"ip": "10.0.0.3", "nodeName": "", "targetRef": {"kind": "Pod",
                 "namespace": "default", "name": "a", "uid": "uid-a"}},
                {"ip": "10.0.0.20", "nodeName": "", "targetRef": {"kind": "Pod",
                 "namespace": "default", "name": "b", "uid": "uid-b"}},
            ],
            "notReadyAddresses": [
                {"ip": "10.0.0.7", "nodeName": "", "targetRef": {"kind": "Pod",
                 "namespace": "default", "name": "c", "uid": "uid-c"}},
            ],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }
    ]  # fmt: skip
    assert desired_subsets(svc, list(reversed(pods))) == subsets
    endpoints = desired_endpoints(svc, None, subsets)
    assert endpoints is not None
    assert endpoints["metadata"] == {"name": "web", "namespace": "default",
                                     "labels": {"tier": "front"}}  # fmt: skip
    written = {**endpoints, "metadata": {**endpoints["metadata"], "resourceVersion": "5"}}
    assert desired_endpoints(svc, written, subsets) is None
    assert desired_endpoints(svc, written, desired_subsets(svc, pods[:1])) is not None
    # A port no pod resolves leaves it out; publishNotReadyAddresses puts every pod in addresses.
    publish = {**svc, "spec": {**svc["spec"], "publishNotReadyAddresses": True}}
    assert len(desired_subsets(publish, pods)[0]["addresses"]) == 3
    headless = {**service(), "spec": {**service()["spec"], "clusterIP": "None", "ports": []}}
    assert desired_subsets(headless, pods)[0].keys() == {"addresses", "notReadyAddresses"}
    headless_endpoints = desired_endpoints(headless, None, [])
    assert headless_endpoints is not None
    assert headless_endpoints["metadata"]["labels"]["service.kubernetes.io/headless"] == ""


def test_truncation_drops_not_ready_first() -> None:
    endpoints = {
        "subsets": [
            {"addresses": [{"ip": f"10.0.{i // 250}.{i % 250}"} for i in range(900)],
             "notReadyAddresses": [{"ip": f"10.9.{i // 250}.{i % 250}"} for i in range(300)]}
        ]
    }  # fmt: skip
    assert truncate_endpoints(endpoints)
    subset = endpoints["subsets"][0]
    assert len(subset["addresses"]) == 900 and len(subset["notReadyAddresses"]) == 100


async def _make_pod(client: KubeClient, name: str) -> Obj:
    created: Obj = await client.create(PODS, bare_pod(name, {"app": "web"}))
    created.setdefault("kind", "Pod")
    created.setdefault("apiVersion", "v1")
    return created


def addresses(endpoints: Obj | None, field: str = "addresses") -> list[str]:
    if endpoints is None:
        return []
    return sorted(
        a["targetRef"]["name"] for s in endpoints.get("subsets") or [] for a in s.get(field) or []
    )


@pytest.mark.trio
async def test_endpoints_follow_readiness_and_are_restored_over_a_stale_cache(
    api: APIHarness,
) -> None:
    client = api.admin
    clock = TrioClock()
    # The Endpoints informer lags: a cached copy must never decide whether to write.
    factory = LaggingFactory(client, clock=clock, lagging=(ENDPOINTS,), delay=1.5)
    controller = EndpointsController(client, factory, clock)
    await ensure_default_account(client)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            factory.start(nursery)
            nursery.start_soon(controller.run)
            pods = {n: await _make_pod(client, n) for n in ("p1", "p2", "p3")}
            for name, ready in (("p1", True), ("p2", True), ("p3", False)):
                updated = await set_pod_ready(client, pods[name], ready)
                assert updated is not None
                pods[name] = updated
            await client.create(SERVICES, service())

            async def shows(ready: list[str], not_ready: list[str]) -> bool:
                got = await get_or_none(client, ENDPOINTS, "web", "default")
                return addresses(got) == ready and addresses(got, "notReadyAddresses") == not_ready

            await eventually(lambda: shows(["p1", "p2"], ["p3"]), "p1, p2 ready; p3 not")
            got = await client.get(ENDPOINTS, "web", namespace="default")
            assert got["subsets"][0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
            assert got["metadata"]["labels"] == {"tier": "front"}

            pods["p3"] = await set_pod_ready(client, {**pods["p3"], "kind": "Pod"}, True) or {}
            pods["p1"] = await set_pod_ready(client, {**pods["p1"], "kind": "Pod"}, False) or {}
            await eventually(lambda: shows(["p2", "p3"], ["p1"]), "readiness followed")

            # Once the cache holds the controller's write, someone clobbers the Endpoints; the
            # next pod change (one that changes nothing the Endpoints show) makes the controller
            # compare with the API's copy, not its cache (which still shows the right subsets,
            # and whose late news of the clobber triggers no sync), and restore it.
            got = await client.get(ENDPOINTS, "web", namespace="default")
            cached = factory.lister(ENDPOINTS)

            def cache_has_the_write() -> bool:
                copy = cached.get("web", "default")
                rv = got["metadata"]["resourceVersion"]
                return copy is not None and copy["metadata"]["resourceVersion"] == rv

            await wait_for(cache_has_the_write, "the lagging cache to hold the controller's write")
            await client.update(ENDPOINTS, {**got, "subsets": []}, namespace="default")
            poke = {"metadata": {"annotations": {"poked": "yes"}}}
            await client.patch(PODS, "p2", poke, namespace="default")
            await eventually(lambda: shows(["p2", "p3"], ["p1"]), "restored", timeout=4)

            await client.delete(PODS, "p2", namespace="default")
            await eventually(lambda: shows(["p3"], ["p1"]), "p2 gone")

            await client.delete(SERVICES, "web", namespace="default")

            async def gone() -> bool:
                return await get_or_none(client, ENDPOINTS, "web", "default") is None

            await eventually(gone, "the Endpoints deleted with the Service")
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_service_missing_from_a_lagging_cache_keeps_its_endpoints(
    api: APIHarness,
) -> None:
    client = api.admin
    clock = TrioClock()
    factory = LaggingFactory(client, clock=clock, lagging=(SERVICES,), delay=30.0)
    controller = EndpointsController(client, factory, clock)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            factory.start(nursery)
            await factory.wait_for_cache_sync()
            await factory.informer_for(SERVICES).wait_for_sync()
            await client.create(SERVICES, service("late"))
            manual = {"apiVersion": "v1", "kind": "Endpoints",
                      "metadata": {"name": "late", "namespace": "default"}}  # fmt: skip
            await client.create(ENDPOINTS, manual)
            assert controller.services.get("late", "default") is None
            await controller.sync_service("default/late")
            assert await get_or_none(client, ENDPOINTS, "late", "default") is not None
            nursery.cancel_scope.cancel()
