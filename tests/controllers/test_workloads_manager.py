"""The workload controllers run by the controller manager as ``system:kube-controller-manager``
with service-account credentials, so each acts under its own upstream RBAC role: a Deployment
rolls out, its Service's Endpoints list its pods, and deleting it takes its ReplicaSet and pods
with it (the garbage collector)."""

from __future__ import annotations

import random

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.controllers.manager import run_controller_manager
from raftkube.controllers.resources import resource
from raftkube.kubeclient import KubeClient
from tests.helpers.api_server import APIHarness
from tests.helpers.controllers import get_or_none
from tests.helpers.polling import eventually
from tests.helpers.workloads import DEPLOYMENTS, PODS, REPLICA_SETS, kubelet_standin, pod_template

SERVICES = resource("", "v1", "services")
ENDPOINTS = resource("", "v1", "endpoints")
EVENTS = resource("", "v1", "events")
WORKLOADS = ["deployment", "replicaset", "endpoint", "garbagecollector", "serviceaccount"]


@pytest.mark.trio
async def test_workload_controllers_under_their_own_roles(api: APIHarness) -> None:
    client = api.admin
    app = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "shop", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "shop"}},
                 "template": pod_template({"app": "shop"})},
    }  # fmt: skip
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "shop", "namespace": "default"},
        "spec": {"selector": {"app": "shop"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }
    async with api.client_for("system:kube-controller-manager") as kcm:
        with trio.fail_after(90):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    lambda: run_controller_manager(
                        kcm,
                        controllers=WORKLOADS,
                        clock=TrioClock(),
                        identity="kcm",
                        rng=random.Random(21),
                        use_service_account_credentials=True,
                        server_ca=api.pki.ca.cert.read_bytes(),
                        lease_duration=2.0,
                        renew_deadline=1.5,
                        retry_period=0.25,
                    )
                )
                nursery.start_soon(kubelet_standin, client)
                await eventually(
                    lambda: get_or_none(client, resource("", "v1", "serviceaccounts"), "default",
                                        "default"),
                    "the default service account",
                )  # fmt: skip
                await client.create(DEPLOYMENTS, app)
                await client.create(SERVICES, service)

                async def rolled_out() -> bool:
                    d = await client.get(DEPLOYMENTS, "shop", namespace="default")
                    return (d.get("status") or {}).get("availableReplicas") == 2

                await eventually(rolled_out, "two available replicas", timeout=40)

                async def two_endpoints() -> bool:
                    got = await get_or_none(client, ENDPOINTS, "shop", "default")
                    subsets = (got or {}).get("subsets") or []
                    return sum(len(s.get("addresses") or []) for s in subsets) == 2

                await eventually(two_endpoints, "both pods in the Endpoints")
                events = await client.list(EVENTS, namespace="default")
                sources = {e["source"]["component"] for e in events["items"]}
                assert {"deployment-controller", "replicaset-controller"} <= sources

                await client.delete(DEPLOYMENTS, "shop", namespace="default")

                async def collected() -> bool:
                    rss = (await client.list(REPLICA_SETS, namespace="default"))["items"]
                    pods = (await client.list(PODS, namespace="default"))["items"]
                    return not rss and not pods

                await eventually(collected, "the ReplicaSet and pods collected", timeout=30)
                await eventually(lambda: _no_addresses(client), "the Endpoints emptied")
                nursery.cancel_scope.cancel()


async def _no_addresses(client: KubeClient) -> bool:
    got = await get_or_none(client, ENDPOINTS, "shop", "default")
    return got is not None and not got.get("subsets")
