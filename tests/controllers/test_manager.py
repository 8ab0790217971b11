"""The controller manager: controller selection as upstream, the controllers running under
the kube-controller-manager Lease, failover to a second manager, and the command line."""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.controllers import cli
from raftkube.controllers.events import EVENTS
from raftkube.controllers.leaderelection import LeaderElectionLost
from raftkube.controllers.manager import (
    LEASE_NAME,
    LEASE_NAMESPACE,
    enabled_controllers,
    is_controller_enabled,
    run_controller_manager,
)
from raftkube.controllers.resources import CONFIG_MAPS, LEASES, NAMESPACES, SERVICE_ACCOUNTS
from raftkube.controllers.rootcacert import ROOT_CA_CERT_CONFIG_MAP_NAME
from raftkube.kubeclient import KubeAPIError
from tests.helpers.api_server import APIHarness
from tests.helpers.controllers import get_or_none
from tests.helpers.polling import eventually

ALL = [
    "deployment",
    "endpoint",
    "garbagecollector",
    "namespace",
    "nodelifecycle",
    "podgc",
    "replicaset",
    "replicationcontroller",
    "root-ca-cert-publisher",
    "serviceaccount",
    "serviceaccount-token",
    "taint-eviction-controller",
]

FAST = {"lease_duration": 2.0, "renew_deadline": 1.5, "retry_period": 0.25}


def test_controller_selection() -> None:
    assert enabled_controllers(["*"]) == ALL
    assert enabled_controllers(["*", "-namespace"]) == [n for n in ALL if n != "namespace"]
    assert enabled_controllers(["serviceaccount"]) == ["serviceaccount"]
    assert enabled_controllers([]) == []
    assert not is_controller_enabled("namespace", ["-namespace", "*", "namespace"])
    with pytest.raises(ValueError, match="'bogus' is not in the list of known controllers"):
        enabled_controllers(["*", "-bogus"])


def test_command_line_flags() -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "controller-manager",
            "--kubeconfig",
            "k.conf",
            "--controllers",
            "*,-namespace",
            "--leader-elect=false",
            "--leader-elect-lease-duration",
            "30s",
            "--leader-elect-retry-period",
            "500ms",
            "--root-ca-file",
            "ca.crt",
            "--use-service-account-credentials",
        ]
    )
    assert args.use_service_account_credentials is True
    assert args.controllers == ["*", "-namespace"]
    assert args.leader_elect is False
    assert (args.leader_elect_lease_duration, args.leader_elect_retry_period) == (30.0, 0.5)
    assert args.leader_elect_renew_deadline == 10.0
    assert str(args.root_ca_file) == "ca.crt" and args.handler is cli.run_command
    defaults = parser.parse_args(["controller-manager", "--kubeconfig", "k"])
    assert defaults.leader_elect is True and defaults.use_service_account_credentials is False
    with pytest.raises(SystemExit):
        parser.parse_args(["controller-manager", "--kubeconfig", "k", "--controllers", "nope"])


@pytest.mark.trio
async def test_command_runs_every_controller_under_the_lease(api: APIHarness) -> None:
    """The command's own path: the kubeconfig's client and CA, '*' controllers, the Lease."""
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["controller-manager", "--kubeconfig", str(api.kubeconfig)])
    client = api.admin
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cli.run_from_args, args)
            await client.create(NAMESPACES, {"metadata": {"name": "team"}})
            await eventually(
                lambda: get_or_none(client, SERVICE_ACCOUNTS, "default", "team"), "the account"
            )
            cm = await eventually(
                lambda: get_or_none(client, CONFIG_MAPS, ROOT_CA_CERT_CONFIG_MAP_NAME, "team"),
                "the root CA",
            )
            assert cm["data"]["ca.crt"] == api.pki.ca.cert.read_text()
            lease = await client.get(LEASES, LEASE_NAME, namespace=LEASE_NAMESPACE)
            assert lease["spec"]["holderIdentity"]
            assert lease["spec"]["leaseDurationSeconds"] == 15
            await client.delete(NAMESPACES, "team")

            async def namespace_gone() -> bool:
                return await get_or_none(client, NAMESPACES, "team") is None

            # Upstream's 5 s grace period before the namespace controller looks.
            await eventually(namespace_gone, "the namespace removed", timeout=30)
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_second_manager_takes_over_when_the_first_stops(api: APIHarness) -> None:
    client = api.admin
    root_ca = api.pki.ca.cert.read_bytes()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            first = trio.CancelScope()

            async def run_first() -> None:
                with first:
                    await run_controller_manager(
                        client,
                        controllers=["serviceaccount"],
                        clock=TrioClock(),
                        identity="first",
                        root_ca=root_ca,
                        rng=random.Random(11),
                        **FAST,
                    )

            async def holder() -> str:
                lease = await get_or_none(client, LEASES, LEASE_NAME, LEASE_NAMESPACE)
                return lease["spec"]["holderIdentity"] if lease else ""

            nursery.start_soon(run_first)
            assert await eventually(holder, "a leader") == "first"
            nursery.start_soon(
                lambda: run_controller_manager(
                    client,
                    controllers=["serviceaccount"],
                    clock=TrioClock(),
                    identity="second",
                    root_ca=root_ca,
                    rng=random.Random(12),
                    **FAST,
                )
            )
            await trio.sleep(1.0)
            assert await holder() == "first"
            first.cancel()  # the first manager dies without giving the Lease up

            async def second_leads() -> bool:
                return await holder() == "second"

            await eventually(second_leads, "the second to lead", timeout=10)

            # The "became leader" Event is written beside the leader's work, as upstream's
            # recorder sends it in the background: it may land after the Lease changed hands.
            async def election_events() -> list[dict]:
                events = await client.list(EVENTS, namespace=LEASE_NAMESPACE)
                election = [e for e in events["items"] if e["reason"] == "LeaderElection"]
                messages = {e["message"] for e in election}
                return election if "second became leader" in messages else []

            election = await eventually(election_events, "the second's LeaderElection Event")
            assert {e["message"] for e in election} >= {
                "first became leader",
                "second became leader",
            }
            assert {e["involvedObject"]["kind"] for e in election} == {"Lease"}
            assert {e["source"]["component"] for e in election} == {"kube-controller-manager"}
            await client.create(NAMESPACES, {"metadata": {"name": "later"}})
            await eventually(
                lambda: get_or_none(client, SERVICE_ACCOUNTS, "default", "later"),
                "the second manager's service account controller at work",
            )
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_losing_the_lease_stops_the_manager(api: APIHarness) -> None:
    """Someone else writes the Lease over ours: renewals fail, and the manager raises."""
    client = api.admin
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            lost = trio.Event()

            async def run() -> None:
                with pytest.raises(LeaderElectionLost):
                    await run_controller_manager(
                        client,
                        controllers=["serviceaccount"],
                        clock=TrioClock(),
                        identity="me",
                        rng=random.Random(13),
                        **FAST,
                    )
                lost.set()

            nursery.start_soon(run)

            async def usurp() -> bool:
                found = await get_or_none(client, LEASES, LEASE_NAME, LEASE_NAMESPACE)
                if not found or found["spec"]["holderIdentity"] != "me":
                    return False
                found["spec"]["holderIdentity"] = "usurper"
                found["spec"]["leaseDurationSeconds"] = 3600
                try:
                    await client.update(LEASES, found)
                except KubeAPIError as exc:  # a renewal got in first: try again
                    assert exc.code == 409
                    return False
                return True

            await eventually(usurp, "the Lease taken")
            await lost.wait()
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_as_a_process(api: APIHarness) -> None:
    """The command as its own process: it works against the server, and SIGINT ends it with
    status 0."""
    client = api.admin
    argv = [
        sys.executable,
        "-m",
        "raftkube.controllers.cli",
        "--kubeconfig",
        str(api.kubeconfig),
        "--controllers",
        "serviceaccount",
        "--leader-elect=false",
    ]
    with trio.fail_after(60):
        process = await trio.lowlevel.open_process(argv, stderr=subprocess.PIPE)
        try:
            await client.create(NAMESPACES, {"metadata": {"name": "by-process"}})
            await eventually(
                lambda: get_or_none(client, SERVICE_ACCOUNTS, "default", "by-process"),
                "the process's service account controller at work",
                timeout=30,
            )
            # Only the controllers asked for: no root CA published by this process.
            assert (
                await get_or_none(client, CONFIG_MAPS, ROOT_CA_CERT_CONFIG_MAP_NAME, "by-process")
                is None
            )
            assert await get_or_none(client, LEASES, LEASE_NAME, LEASE_NAMESPACE) is None
        finally:
            process.send_signal(signal.SIGINT)
            code = await process.wait()
            assert process.stderr is not None
            err = await process.stderr.receive_some(100000)
            assert code == 0, err.decode()[-3000:]
