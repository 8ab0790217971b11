"""The cloud controllers end to end: a real API server and store, the simulated cloud over
HTTP, and ``run_cloud_controller_manager`` under its Lease (short periods, real time)."""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.cloud.manager import (
    LEASE_NAME,
    CloudControllerOptions,
    enabled_cloud_controllers,
    run_cloud_controller_manager,
)
from raftkube.cloud.nodes import TAINT_UNINITIALIZED, initialized_node, merged_addresses
from raftkube.cloud.routes import reconcile_routes
from raftkube.cloud.services import LB_FINALIZER, decide, load_balancer_name
from raftkube.controllers.resources import LEASES, resource
from raftkube.kubeclient import KubeClient
from tests.helpers.api_server import APIHarness
from tests.helpers.cloud import CloudHarness
from tests.helpers.controllers import get_or_none
from tests.helpers.polling import eventually

Obj = dict[str, Any]

NODES = resource("", "v1", "nodes")
SERVICES = resource("", "v1", "services")
EVENTS = resource("", "v1", "events")

OPTIONS = CloudControllerOptions(
    cluster_name="test",
    cluster_cidrs=("10.244.0.0/16",),
    node_monitor_period=0.2,
    node_status_update_frequency=0.5,
    route_reconciliation_period=0.2,
)


def test_decisions() -> None:
    node = {
        "metadata": {"name": "n", "labels": {"a": "b"}},
        "spec": {"taints": [{"key": TAINT_UNINITIALIZED, "effect": "NoSchedule"}]},
        "status": {"addresses": [{"type": "Hostname", "address": "n"}]},
    }
    instance = {
        "providerID": "raftkube://z/n",
        "zone": "z",
        "region": "r",
        "instanceType": "sim.small",
        "addresses": [{"type": "InternalIP", "address": "127.0.10.1"}],
    }
    done = initialized_node(node, instance)
    assert done["spec"] == {"providerID": "raftkube://z/n", "taints": []}
    assert done["metadata"]["labels"]["topology.kubernetes.io/zone"] == "z"
    assert done["metadata"]["labels"]["failure-domain.beta.kubernetes.io/region"] == "r"
    assert merged_addresses(node, instance) == [
        {"type": "InternalIP", "address": "127.0.10.1"},
        {"type": "Hostname", "address": "n"},
    ]
    done["status"]["addresses"] = merged_addresses(node, instance)
    assert merged_addresses(done, instance) is None

    nodes = [{"metadata": {"name": "n"}, "spec": {"podCIDRs": ["10.244.1.0/24"]}}]
    stale = {"name": "r1", "targetNode": "n", "destinationCIDR": "10.244.9.0/24"}
    foreign = {"name": "r2", "targetNode": "x", "destinationCIDR": "192.168.0.0/24"}
    plan = reconcile_routes(nodes, [stale, foreign], ["10.244.0.0/16"])
    assert [(n["metadata"]["name"], c) for n, c in plan.create] == [("n", "10.244.1.0/24")]
    assert plan.delete == [stale]  # the route outside the cluster CIDR is not ours

    def with_ready(name: str, status: str) -> Obj:
        return {
            "metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": status}]},
        }

    ready, lost = with_ready("r", "True"), with_ready("l", "Unknown")
    excluded, going = with_ready("x", "True"), with_ready("g", "True")
    excluded["metadata"]["labels"] = {"node.kubernetes.io/exclude-from-external-load-balancers": ""}
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    svc = {"metadata": {"name": "s", "uid": "1234-5678"}, "spec": {"type": "LoadBalancer"}}
    # Upstream 1.32's stable node set: readiness is the load balancer's health check's to judge.
    assert decide(svc, [ready, lost, excluded, going]).nodes == ["l", "r"]
    assert load_balancer_name(svc) == "a12345678"
    cleanup = {**svc, "metadata": {**svc["metadata"], "finalizers": [LB_FINALIZER]}}
    cleanup["spec"] = {"type": "ClusterIP"}
    assert decide(cleanup, []).action == "cleanup"
    assert enabled_cloud_controllers(["*", "-route"]) == [
        "cloud-node",
        "cloud-node-lifecycle",
        "service",
    ]


async def make_node(
    client: KubeClient, name: str, ready: str, *, cidr: str = "", uninitialized: bool = False
) -> Obj:
    spec: Obj = {}
    if cidr:
        spec["podCIDRs"] = [cidr]
    if uninitialized:
        spec["taints"] = [{"key": TAINT_UNINITIALIZED, "value": "true", "effect": "NoSchedule"}]
    node = await client.create(
        NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": spec}
    )
    node["status"] = {
        "conditions": [{"type": "Ready", "status": ready}],
        "addresses": [{"type": "Hostname", "address": name}],
    }
    result: Obj = await client.update(NODES, node, subresource="status")
    return result


@pytest.mark.trio
async def test_cloud_controllers_end_to_end(api: APIHarness, cloud: CloudHarness) -> None:
    client = api.admin
    for name, zone in (("n1", "z1"), ("n2", "z1"), ("n3", "z2")):
        number = name[-1]
        await cloud.client.put_instance(
            name,
            {
                "zone": zone,
                "region": "r1",
                "addresses": [{"type": "InternalIP", "address": f"127.0.10.{number}"}],
            },
        )
    await make_node(client, "n1", "True", cidr="10.244.1.0/24", uninitialized=True)
    await make_node(client, "n2", "True", cidr="10.244.2.0/24")
    await make_node(client, "n3", "False", cidr="10.244.3.0/24")
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: run_cloud_controller_manager(
                    client,
                    cloud_provider_url=cloud.url,
                    clock=TrioClock(),
                    identity="ccm-1",
                    options=OPTIONS,
                    rng=random.Random(2),
                    lease_duration=2.0,
                    renew_deadline=1.5,
                    retry_period=0.25,
                )
            )

            # cloud-node: n1 initialized from its instance.
            async def initialized() -> Obj | None:
                n = await client.get(NODES, "n1")
                taints = [t["key"] for t in n["spec"].get("taints") or []]
                return n if TAINT_UNINITIALIZED not in taints else None

            n1 = await eventually(initialized, "n1 initialized")
            assert n1["spec"]["providerID"] == "raftkube://z1/n1"
            assert n1["metadata"]["labels"]["topology.kubernetes.io/zone"] == "z1"
            assert n1["metadata"]["labels"]["node.kubernetes.io/instance-type"] == "sim.small"

            async def addressed() -> bool:
                n = await client.get(NODES, "n1")
                return {"type": "InternalIP", "address": "127.0.10.1"} in n["status"]["addresses"]

            await eventually(addressed, "n1's cloud addresses")

            # route: one route per pod CIDR, and the nodes' network is up.
            async def routed() -> bool:
                have = {
                    (r["targetNode"], r["destinationCIDR"]) for r in cloud.state.routes.values()
                }
                return have == {
                    ("n1", "10.244.1.0/24"),
                    ("n2", "10.244.2.0/24"),
                    ("n3", "10.244.3.0/24"),
                }

            await eventually(routed, "a route per node")

            async def network_up() -> bool:
                n = await client.get(NODES, "n2")
                c = [x for x in n["status"]["conditions"] if x["type"] == "NetworkUnavailable"]
                return bool(c) and c[0]["status"] == "False" and c[0]["reason"] == "RouteCreated"

            await eventually(network_up, "NetworkUnavailable=False on n2")

            # service: a load balancer with every node (upstream 1.32's stable node set: n3,
            # not Ready, too), its address in the status; the cloud fails the first attempts.
            await cloud.client.set_faults(fail_next=2, path_prefix="/v1/loadbalancers")
            await client.create(
                SERVICES,
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "web", "namespace": "default"},
                    "spec": {
                        "type": "LoadBalancer",
                        "selector": {"app": "web"},
                        "ports": [{"port": 80, "protocol": "TCP"}],
                    },
                },
            )

            async def balanced() -> Obj | None:
                svc = await client.get(SERVICES, "web", namespace="default")
                ingress = (svc["status"].get("loadBalancer") or {}).get("ingress")
                return svc if ingress else None

            svc = await eventually(balanced, "the Service's load balancer address")
            ip = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
            assert ipaddress.ip_address(ip) in ipaddress.ip_network("127.240.0.0/29")
            assert LB_FINALIZER in svc["metadata"]["finalizers"]
            lb = cloud.state.load_balancers[load_balancer_name(svc)]
            assert lb["ip"] == ip and lb["nodes"] == ["n1", "n2", "n3"]
            assert lb["ports"][0]["port"] == 80 and lb["ports"][0]["nodePort"] > 0
            events = await client.list(EVENTS, namespace="default")
            reasons = {e["reason"] for e in events["items"] if e["involvedObject"]["name"] == "web"}
            assert {"SyncLoadBalancerFailed", "EnsuredLoadBalancer"} <= reasons

            # A node labelled for exclusion leaves the targets.
            exclude = {"node.kubernetes.io/exclude-from-external-load-balancers": "true"}
            await client.patch(NODES, "n3", {"metadata": {"labels": exclude}}, patch_type="merge")

            async def two_targets() -> bool:
                return lb["name"] in cloud.state.load_balancers and cloud.state.load_balancers[
                    lb["name"]
                ]["nodes"] == ["n1", "n2"]

            await eventually(two_targets, "n3 taken out of the load balancer")

            # cloud-node-lifecycle: n2 stops being Ready and its instance goes: the Node goes,
            # and so does its route.
            n2 = await client.get(NODES, "n2")
            for c in n2["status"]["conditions"]:
                if c["type"] == "Ready":
                    c["status"] = "Unknown"
            await client.update(NODES, n2, subresource="status")
            await cloud.client.delete_instance("n2")

            async def n2_gone() -> bool:
                return await get_or_none(client, NODES, "n2") is None

            await eventually(n2_gone, "the Node of a vanished instance deleted")

            async def route_gone() -> bool:
                return all(r["targetNode"] != "n2" for r in cloud.state.routes.values())

            await eventually(route_gone, "n2's route deleted")

            # Deleting the Service deletes the load balancer, then the Service.
            await client.delete(SERVICES, "web", namespace="default")

            async def svc_gone() -> bool:
                return await get_or_none(client, SERVICES, "web", "default") is None

            await eventually(svc_gone, "the Service deleted after its load balancer")
            assert lb["name"] not in cloud.state.load_balancers

            lease = await client.get(LEASES, LEASE_NAME, namespace="kube-system")
            assert lease["spec"]["holderIdentity"] == "ccm-1"
            nursery.cancel_scope.cancel()
