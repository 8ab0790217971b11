"""``raftkube cloud-provider`` and ``raftkube cloud-controller-manager``: flags, and both as
processes (real processes: real time)."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from raftkube.cloud import cli
from raftkube.cloud.client import CloudClient, CloudError
from raftkube.cloud.manager import LEASE_NAME
from raftkube.controllers.resources import LEASES
from raftkube.kubeclient import KubeAPIError
from tests.helpers.api_server import APIHarness
from tests.helpers.cloud import CloudHarness

Obj = dict[str, Any]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_flags() -> None:
    args = parse(
        "cloud-controller-manager",
        "--kubeconfig",
        "k.conf",
        "--cloud-provider-url",
        "http://127.0.0.1:10260",
        "--controllers",
        "*,-route",
        "--cluster-cidr",
        "10.244.0.0/16",
        "--configure-cloud-routes=false",
        "--route-reconciliation-period",
        "30s",
    )
    options = cli.options_from_args(args)
    assert options.controllers == ("*", "-route")
    assert options.cluster_cidrs == ("10.244.0.0/16",)
    assert not options.configure_cloud_routes
    assert options.route_reconciliation_period == 30.0
    assert options.node_monitor_period == 5.0 and options.cluster_name == "kubernetes"
    with pytest.raises(SystemExit):
        parse("cloud-controller-manager", "--kubeconfig", "k", "--cloud-provider-url", "u",
              "--controllers", "bogus")  # fmt: skip
    provider = parse("cloud-provider")
    assert (provider.bind_address, provider.port) == ("127.0.0.1", 10260)


def test_provider_refuses_a_range_outside_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("cloud-provider", "--load-balancer-range", "10.0.0.0/24")
    assert args.handler(args) == 2
    assert "not inside 127.0.0.0/8" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def stop(process: trio.Process) -> None:
    process.send_signal(signal.SIGTERM)
    code = await process.wait()
    assert process.stderr is not None
    err = await process.stderr.receive_some(100000)
    assert code == 0, err.decode()[-3000:]


@pytest.mark.trio
async def test_provider_process(tmp_path: Path) -> None:
    instances = tmp_path / "instances.json"
    instances.write_text(json.dumps({"instances": {"n1": {"zone": "z1"}}}))
    port = free_port()
    argv = [sys.executable, "-m", "raftkube.cloud.cli", "cloud-provider", "--port", str(port),
            "--instances", str(instances)]  # fmt: skip
    with trio.fail_after(60):
        process = await trio.lowlevel.open_process(argv, stderr=subprocess.PIPE)
        try:
            async with CloudClient(f"http://127.0.0.1:{port}", timeout=2.0) as client:
                while True:
                    try:
                        listed = await client.instances()
                        break
                    except CloudError:
                        await trio.sleep(0.1)
                assert [i["providerID"] for i in listed] == ["raftkube://z1/n1"]
        finally:
            await stop(process)


@pytest.mark.trio
async def test_manager_process(api: APIHarness, cloud: CloudHarness) -> None:
    argv = [sys.executable, "-m", "raftkube.cloud.cli", "cloud-controller-manager",
            "--kubeconfig", str(api.kubeconfig), "--cloud-provider-url", cloud.url,
            "--controllers", "service"]  # fmt: skip
    with trio.fail_after(60):
        process = await trio.lowlevel.open_process(argv, stderr=subprocess.PIPE)
        try:
            while True:  # the process holds the Lease once it leads
                try:
                    lease: Obj = await api.admin.get(LEASES, LEASE_NAME, namespace="kube-system")
                    if lease["spec"].get("holderIdentity"):
                        break
                except KubeAPIError as exc:
                    if exc.code != 404:  # not created yet
                        raise
                await trio.sleep(0.1)
        finally:
            await stop(process)
