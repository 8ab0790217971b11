"""The cloud controllers need no more than their default roles: each runs with the
credentials of its own ``kube-system`` service account, the informers with the
cloud-controller-manager's, and each still does its job."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.cloud.manager import CloudControllerOptions, run_cloud_controller_manager
from raftkube.cloud.nodes import TAINT_UNINITIALIZED, CloudNodeController
from raftkube.cloud.routes import RouteController
from raftkube.cloud.services import ServiceController
from raftkube.controllers.events import EventRecorder
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.resources import resource
from raftkube.kubeclient import KubeClient
from tests.helpers.api_server import APIHarness
from tests.helpers.cloud import CloudHarness
from tests.helpers.polling import eventually

Obj = dict[str, Any]

NODES = resource("", "v1", "nodes")
SERVICES = resource("", "v1", "services")
EVENTS = resource("", "v1", "events")
SERVICE_ACCOUNTS = resource("", "v1", "serviceaccounts")


def account_client(api: APIHarness, name: str) -> KubeClient:
    """A client authenticating as the service account ``kube-system/{name}``."""
    return api.client_for(
        f"system:serviceaccount:kube-system:{name}",
        ("system:serviceaccounts", "system:serviceaccounts:kube-system"),
    )


@pytest.mark.trio
async def test_each_controller_works_with_its_own_role(
    api: APIHarness, cloud: CloudHarness
) -> None:
    admin, clock = api.admin, TrioClock()
    await cloud.client.put_instance("n1", {"zone": "z1", "region": "r1"})
    node = await admin.create(
        NODES,
        {
            "metadata": {"name": "n1"},
            "spec": {
                "podCIDRs": ["10.244.1.0/24"],
                "taints": [{"key": TAINT_UNINITIALIZED, "value": "true", "effect": "NoSchedule"}],
            },
        },
    )
    node["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    await admin.update(NODES, node, subresource="status")
    await admin.create(
        SERVICES,
        {
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
        },
    )
    clients = {
        name: account_client(api, name)
        for name in (
            "cloud-controller-manager",
            "cloud-node-controller",
            "route-controller",
            "service-controller",
        )
    }
    try:
        factory = SharedInformerFactory(
            clients["cloud-controller-manager"], clock=clock, rng=random.Random(4)
        )

        def recorder(name: str) -> EventRecorder:
            return EventRecorder(clients[name], name)

        node_controller = CloudNodeController(
            clients["cloud-node-controller"],
            factory,
            clock,
            cloud.client,
            recorder("cloud-node-controller"),
        )
        routes = RouteController(
            clients["route-controller"],
            factory,
            clock,
            cloud.client,
            recorder("route-controller"),
            cluster_name="test",
            period=0.2,
        )
        services = ServiceController(
            clients["service-controller"],
            factory,
            clock,
            cloud.client,
            recorder("service-controller"),
        )
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                factory.start(nursery)
                nursery.start_soon(node_controller.run)
                nursery.start_soon(routes.run)
                nursery.start_soon(services.run)

                async def done() -> bool:
                    n = await admin.get(NODES, "n1")
                    s = await admin.get(SERVICES, "web", namespace="default")
                    network = [
                        c for c in n["status"]["conditions"] if c["type"] == "NetworkUnavailable"
                    ]
                    return bool(
                        n["spec"].get("providerID") == "raftkube://z1/n1"
                        and network
                        and network[0]["status"] == "False"
                        and (s["status"].get("loadBalancer") or {}).get("ingress")
                    )

                await eventually(done, "every controller's work, each with its own role")
                nursery.cancel_scope.cancel()
    finally:
        for client in clients.values():
            await client.aclose()


@pytest.mark.trio
async def test_manager_with_service_account_credentials(
    api: APIHarness, cloud: CloudHarness
) -> None:
    """``--use-service-account-credentials``: the manager makes each controller's account and
    token, and the controllers work with them."""
    admin = api.admin
    await cloud.client.put_instance("n1", {"zone": "z1"})
    taint = {"key": TAINT_UNINITIALIZED, "value": "true", "effect": "NoSchedule"}
    await admin.create(NODES, {"metadata": {"name": "n1"}, "spec": {"taints": [taint]}})
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: run_cloud_controller_manager(
                    admin,
                    cloud_provider_url=cloud.url,
                    clock=TrioClock(),
                    identity="ccm",
                    options=CloudControllerOptions(controllers=("cloud-node",)),
                    leader_elect=False,
                    use_service_account_credentials=True,
                    server_ca=api.pki.ca.cert.read_bytes(),
                )
            )

            async def initialized() -> bool:
                node = await admin.get(NODES, "n1")
                return bool(node["spec"].get("providerID") == "raftkube://z1/n1")

            await eventually(initialized, "n1 initialized by the cloud-node-controller account")
            events = await admin.list(EVENTS, namespace="default")
            synced = [e for e in events["items"] if e["reason"] == "Synced"]
            assert synced and synced[0]["source"]["component"] == "cloud-node-controller"
            account = await admin.get(
                SERVICE_ACCOUNTS, "cloud-node-controller", namespace="kube-system"
            )
            assert account["metadata"]["name"] == "cloud-node-controller"
            nursery.cancel_scope.cancel()
