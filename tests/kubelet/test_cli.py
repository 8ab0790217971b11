"""``raftkube kubelet``'s command line: flags to a running kubelet."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.kubeclient import KubeClient
from raftkube.kubelet.cli import build_kubelet, options_from, register
from raftkube.runtime import ProcessRuntime, SimulatedRuntime
from tests.helpers.api_server import APIHarness
from tests.helpers.kubelet import condition


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="raftkube")
    register(parser.add_subparsers())
    return parser.parse_args(["kubelet", *argv])


def test_flags_and_defaults(tmp_path: Path) -> None:
    args = parse("--kubeconfig", "k", "--node-name", "n1", "--pod-cidr", "127.1.0.0/24")
    options = options_from(args)
    assert (options.cpu, options.memory, options.max_pods) == ("4", "8Gi", 110)
    assert (options.runtime, options.port, options.address) == ("process", 10250, "127.0.0.1")
    with pytest.raises(SystemExit):
        parse("--kubeconfig", "k", "--node-name", "n1", "--pod-cidr", "127.1.0.1/24x")
    with pytest.raises(SystemExit):
        parse("--kubeconfig", "k", "--node-name", "n1", "--pod-cidr", "x", "--runtime", "docker")
    flags = ["--kubeconfig", "k", "--node-name", "n1", "--pod-cidr", "127.1.0.0/24"]
    root = parse(*flags, "--root-dir", str(tmp_path))
    kubelet = build_kubelet(options_from(root), KubeClient("https://127.0.0.1:1"), TrioClock())
    assert isinstance(kubelet.runtime, ProcessRuntime)
    assert kubelet.runtime.root == tmp_path / "n1"
    assert kubelet.serving is None


def test_lease_duration_flag_sets_the_renewal_interval(capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["--kubeconfig", "k", "--node-name", "n1", "--pod-cidr", "127.1.0.0/24"]
    default = build_kubelet(
        options_from(parse(*flags)), KubeClient("https://127.0.0.1:1"), TrioClock()
    )
    assert (default.config.lease_duration, default.config.renew_interval) == (40, 10.0)
    args = parse(*flags, "--runtime", "simulated", "--node-lease-duration-seconds", "4")
    kubelet = build_kubelet(options_from(args), KubeClient("https://127.0.0.1:1"), TrioClock())
    assert (kubelet.config.lease_duration, kubelet.config.renew_interval) == (4, 1.0)
    with pytest.raises(SystemExit):
        parse(*flags, "--node-lease-duration-seconds", "0")
    assert "invalid --node-lease-duration-seconds '0'" in capsys.readouterr().err


@pytest.mark.trio
async def test_a_simulated_node_from_flags_registers(api: APIHarness) -> None:
    client = api.client_for("system:node:sim-1", ("system:nodes",))
    args = parse(
        *f"--kubeconfig {api.tmp}/system:node:sim-1.kubeconfig --node-name sim-1".split(),
        *["--pod-cidr", "127.2.0.0/24", "--cpu", "8", "--memory", "16Gi", "--max-pods", "20"],
        *["--runtime", "simulated", "--port", "0"],
    )
    kubelet = build_kubelet(options_from(args), client, TrioClock())
    assert isinstance(kubelet.runtime, SimulatedRuntime)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(kubelet.run)
            while True:
                try:
                    node = await api.admin.get("/api/v1/nodes/sim-1")
                    break
                except Exception:
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    await client.aclose()
    assert node["status"]["capacity"] == {"cpu": "8", "memory": "16Gi", "pods": "20"}
    assert node["spec"]["podCIDR"] == "127.2.0.0/24"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"] == "sim://0.1.0"
    assert condition(node, "Ready") == "True"
