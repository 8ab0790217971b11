"""Simulated nodes: many kubelets over simulated runtimes in one Trio run, each with its own
node credentials, against a real API server."""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path

import pytest
import trio

from raftkube.apiserver.auth.pki import node_user, write_kubeconfig
from raftkube.apiserver.config import DEFAULT_SERVICE_RANGE
from raftkube.apiserver.resources import lookup
from raftkube.clock import TrioClock
from raftkube.cluster import control_plane
from raftkube.cluster.control_plane import plan_control_plane
from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConfigError
from raftkube.kubeclient.kubeconfig import load_kubeconfig
from raftkube.kubelet.cli import register_sim_nodes
from raftkube.kubelet.simnodes import (
    SIM_POD_CIDRS,
    SimNode,
    SimNodeResources,
    plan_sim_nodes,
    run_sim_nodes,
    sim_pod_cidr,
)
from tests.helpers.api_server import APIHarness
from tests.helpers.kubelet import (
    PODS,
    condition,
    container,
    ensure_default_service_account,
    pod,
    wait_for_pod,
)

Obj = dict[str, object]
NODES = lookup("", "v1", "nodes")
assert NODES is not None


def test_pod_ranges_are_consecutive_slash_24s_of_the_pool() -> None:
    assert sim_pod_cidr(0) == "127.128.0.0/24"
    assert sim_pod_cidr(1) == "127.128.1.0/24"
    assert sim_pod_cidr(256) == "127.129.0.0/24"
    assert sim_pod_cidr(32767) == "127.255.255.0/24"
    with pytest.raises(ValueError, match="room for 32768 nodes"):
        sim_pod_cidr(32768)
    with pytest.raises(ValueError):
        sim_pod_cidr(-1)
    with pytest.raises(ValueError, match="smaller than one /24"):
        sim_pod_cidr(0, ipaddress.IPv4Network("10.0.0.0/25"))


def test_pod_ranges_miss_real_nodes_and_services() -> None:
    assert not SIM_POD_CIDRS.overlaps(DEFAULT_SERVICE_RANGE)
    for i in range(94):  # the real nodes of `raftkube up`: 127.{i+1}.0.0/24
        assert not SIM_POD_CIDRS.overlaps(ipaddress.IPv4Network(f"127.{i + 1}.0.0/24"))


def test_plan_names_nodes_and_their_kubeconfigs(tmp_path: Path) -> None:
    nodes = plan_sim_nodes(tmp_path, 3, prefix="kwok-")
    assert nodes == (
        SimNode("kwok-0", "127.128.0.0/24", tmp_path / "kwok-0.kubeconfig"),
        SimNode("kwok-1", "127.128.1.0/24", tmp_path / "kwok-1.kubeconfig"),
        SimNode("kwok-2", "127.128.2.0/24", tmp_path / "kwok-2.kubeconfig"),
    )


def _write_kubeconfigs(api: APIHarness, nodes: tuple[SimNode, ...]) -> None:
    for node in nodes:
        pair = api.pki.node(node.name)
        write_kubeconfig(
            node.kubeconfig, api.url, api.pki.ca.cert, pair.cert, pair.key, node_user(node.name)
        )


async def _wait_all_ready(admin: KubeClient, names: set[str]) -> list[Obj]:
    while True:
        listed = await admin.get("/api/v1/nodes")
        ready = [
            n
            for n in listed["items"]
            if n["metadata"]["name"] in names and condition(n, "Ready") == "True"
        ]
        if len(ready) == len(names):
            return ready
        await trio.sleep(0.05)


@pytest.mark.trio
async def test_five_simulated_nodes_register_and_run_their_pods(
    api: APIHarness, tmp_path: Path
) -> None:
    await ensure_default_service_account(api.admin)
    nodes = plan_sim_nodes(tmp_path / "sim", 5)
    (tmp_path / "sim").mkdir()
    _write_kubeconfigs(api, nodes)
    resources = SimNodeResources(cpu="2", memory="4Gi", max_pods=20)
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_sim_nodes, nodes, TrioClock(), resources)
            ready = await _wait_all_ready(api.admin, {n.name for n in nodes})
            for node in nodes:
                await api.admin.create(PODS, pod(f"p-{node.name}", node.name, container("c")))
            running = [
                await wait_for_pod(
                    api.admin,
                    f"p-{node.name}",
                    lambda p: (p.get("status") or {}).get("phase") == "Running",
                )
                for node in nodes
            ]
            for node in nodes:
                lease = await api.admin.get(
                    f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node.name}"
                )
                assert lease["spec"]["holderIdentity"] == node.name
            nursery.cancel_scope.cancel()
    by_name = {n["metadata"]["name"]: n for n in ready}
    for node, p in zip(nodes, running, strict=True):
        registered = by_name[node.name]
        assert registered["spec"]["podCIDR"] == node.pod_cidr
        assert registered["status"]["allocatable"] == {"cpu": "2", "memory": "4Gi", "pods": "20"}
        # No log endpoint: port 0 tells the API server there is no kubelet to ask.
        assert registered["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 0}}
        assert ipaddress.IPv4Address(p["status"]["podIP"]) in ipaddress.IPv4Network(node.pod_cidr)
        assert condition(p, "Ready") == "True"


@pytest.mark.trio
async def test_each_node_acts_with_its_own_credentials(api: APIHarness, tmp_path: Path) -> None:
    """The Node authorizer lets sim-0 write only its own Node: its kubeconfig is its own."""
    nodes = plan_sim_nodes(tmp_path, 2)
    _write_kubeconfigs(api, nodes)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_sim_nodes, nodes, TrioClock())
            await _wait_all_ready(api.admin, {n.name for n in nodes})
            nursery.cancel_scope.cancel()
        async with KubeClient.from_kubeconfig(nodes[0].kubeconfig) as as_sim0:
            assert (await as_sim0.get("/api/v1/nodes/sim-0"))["metadata"]["name"] == "sim-0"
            with pytest.raises(KubeAPIError) as denied:
                await as_sim0.patch(
                    NODES, "sim-1", {"metadata": {"labels": {"x": "y"}}}, subresource="status"
                )
    assert denied.value.code == 403


@pytest.mark.trio
async def test_a_missing_kubeconfig_fails_before_any_node_starts(tmp_path: Path) -> None:
    nodes = plan_sim_nodes(tmp_path, 2)
    with pytest.raises(KubeConfigError, match=r"sim-0\.kubeconfig"):
        await run_sim_nodes(nodes, TrioClock())


def test_the_command_reports_a_missing_kubeconfig(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    register_sim_nodes(parser.add_subparsers())
    args = parser.parse_args(
        ["sim-nodes", "--kubeconfig-dir", str(tmp_path), "--count", "3", "--name-prefix", "k-"]
    )
    assert args.handler(args) == 1
    assert f"cannot read kubeconfig {tmp_path / 'k-0.kubeconfig'}" in capsys.readouterr().err


def test_the_command_refuses_a_pool_too_small(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    register_sim_nodes(parser.add_subparsers())
    argv = ["sim-nodes", "--kubeconfig-dir", str(tmp_path), "--count", "3"]
    args = parser.parse_args([*argv, "--pod-cidr-pool", "10.0.0.0/23"])
    assert args.handler(args) == 2
    assert "has room for 2 nodes, not node 2" in capsys.readouterr().err


def test_up_plans_one_process_with_a_kubeconfig_per_simulated_node(tmp_path: Path) -> None:
    plan = plan_control_plane(
        tmp_path, "127.0.0.1", 16443, nodes=1, kubelet_ports=[10250], sim_nodes=3
    )
    assert [n.name for n in plan.sim_nodes] == ["sim-0", "sim-1", "sim-2"]
    assert plan.nodes[0].pod_cidr == "127.1.0.0/24"
    for sim in plan.sim_nodes:
        config = load_kubeconfig(sim.kubeconfig)
        assert config.server == "https://127.0.0.1:16443"
        assert not ipaddress.IPv4Network(sim.pod_cidr).overlaps(
            ipaddress.IPv4Network(plan.nodes[0].pod_cidr)
        )
    parser = argparse.ArgumentParser()
    control_plane.register(parser.add_subparsers())
    args = parser.parse_args(plan.sim_nodes_argv()[3:])
    assert plan_sim_nodes(args.kubeconfig_dir, args.count, args.name_prefix) == plan.sim_nodes
    assert args.stop_on_stdin_eof
    assert plan_control_plane(tmp_path, "127.0.0.1", 16443).sim_nodes == ()
