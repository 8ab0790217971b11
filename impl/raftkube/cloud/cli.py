"""``raftkube cloud-controller-manager`` and ``raftkube cloud-provider``.

``cloud-controller-manager`` keeps upstream's flag names and defaults (``--kubeconfig``,
``--controllers``, ``--cluster-name``, ``--cluster-cidr``, ``--configure-cloud-routes``,
``--node-monitor-period``, ``--node-status-update-frequency``,
``--route-reconciliation-period``, ``--concurrent-service-syncs``,
``--use-service-account-credentials``, the ``--leader-elect*`` flags) and adds
``--cloud-provider-url``, where the simulated cloud answers. It exits 1 with "leaderelection
lost" when it loses its Lease.

``cloud-provider`` serves the simulated cloud on ``--bind-address:--port`` (127.0.0.1:10260)
with load balancer addresses from ``--load-balancer-range`` (127.240.0.0/24), and can start
with instances from a JSON file (``{"instances": {"name": {zone, region, ...}}}``).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from pathlib import Path
from typing import Any

import trio

from raftkube.clock import TrioClock
from raftkube.cloud.manager import (
    KNOWN_CONTROLLERS,
    CloudControllerOptions,
    enabled_cloud_controllers,
    run_cloud_controller_manager,
)
from raftkube.cloud.provider import DEFAULT_LB_RANGE, CloudAPIError, SimulatedCloud
from raftkube.cloud.server import CloudService, serve_cloud
from raftkube.componentbase import (
    add_leader_election_flags,
    add_service_account_credentials_flag,
    identity,
    parse_bool,
    parse_duration,
    run_until_signal,
)

_BAD = (ValueError, OSError, CloudAPIError)
"""What a bad flag, an unusable address or a bad instances file raises: one line, status 2."""


def parse_controllers(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    try:
        enabled_cloud_controllers(names)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return names


def register(commands: Any) -> None:
    """Add ``raftkube cloud-controller-manager`` and ``raftkube cloud-provider``."""
    p = commands.add_parser(
        "cloud-controller-manager",
        help="run the cloud controllers against an API server and the simulated cloud",
        description="Run the cloud control loops (" + ", ".join(KNOWN_CONTROLLERS) + ") "
        "while holding the kube-system/cloud-controller-manager Lease.",
    )
    p.add_argument("--kubeconfig", type=Path, required=True, help="server, CA and credentials")
    p.add_argument(
        "--cloud-provider-url", required=True, help="the simulated cloud, http://host:port"
    )
    p.add_argument("--controllers", type=parse_controllers, default=["*"])
    p.add_argument("--cluster-name", default="kubernetes")
    p.add_argument("--cluster-cidr", default="", help="comma-separated pod CIDRs of the cluster")
    p.add_argument("--configure-cloud-routes", type=parse_bool, nargs="?", const=True, default=True)
    p.add_argument("--node-monitor-period", type=parse_duration, default=5.0)
    p.add_argument("--node-status-update-frequency", type=parse_duration, default=300.0)
    p.add_argument("--route-reconciliation-period", type=parse_duration, default=10.0)
    p.add_argument("--concurrent-service-syncs", type=int, default=1)
    add_service_account_credentials_flag(p)
    add_leader_election_flags(p)
    p.set_defaults(handler=run_manager_command)

    c = commands.add_parser(
        "cloud-provider",
        help="serve the simulated cloud (instances, routes, load balancers) over HTTP",
    )
    c.add_argument("--bind-address", default="127.0.0.1")
    c.add_argument("--port", type=int, default=10260)
    c.add_argument("--load-balancer-range", default=DEFAULT_LB_RANGE)
    c.add_argument("--instances", type=Path, help="JSON file of instances to start with")
    c.add_argument("--seed", type=int, default=0, help="seed of the injected failures")
    c.set_defaults(handler=run_provider_command)


def options_from_args(args: argparse.Namespace) -> CloudControllerOptions:
    cidrs = tuple(c.strip() for c in args.cluster_cidr.split(",") if c.strip())
    return CloudControllerOptions(
        controllers=tuple(args.controllers),
        cluster_name=args.cluster_name,
        cluster_cidrs=cidrs,
        configure_cloud_routes=args.configure_cloud_routes,
        node_monitor_period=args.node_monitor_period,
        node_status_update_frequency=args.node_status_update_frequency,
        route_reconciliation_period=args.route_reconciliation_period,
        concurrent_service_syncs=args.concurrent_service_syncs,
    )


async def run_manager_from_args(args: argparse.Namespace) -> None:
    await run_cloud_controller_manager(
        args.kubeconfig,
        cloud_provider_url=args.cloud_provider_url,
        clock=TrioClock(),
        identity=identity(),
        options=options_from_args(args),
        leader_elect=args.leader_elect,
        lease_duration=args.leader_elect_lease_duration,
        renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period,
        use_service_account_credentials=args.use_service_account_credentials,
    )


def load_cloud(args: argparse.Namespace) -> SimulatedCloud:
    """The cloud the provider command starts with."""
    cloud = SimulatedCloud(args.load_balancer_range)
    if args.instances:
        data = json.loads(args.instances.read_text())
        for name, spec in (data.get("instances") or {}).items():
            cloud.put_instance(name, spec)
    return cloud


async def run_provider_from_args(args: argparse.Namespace) -> None:
    service = CloudService(load_cloud(args), TrioClock(), random.Random(args.seed))
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_cloud, service, args.bind_address, args.port)
        logging.getLogger("raftkube.cloud").info(
            "serving the simulated cloud on http://%s:%d", args.bind_address, port
        )


def run_manager_command(args: argparse.Namespace) -> int:
    """Until SIGTERM or SIGINT (0); 1 when the Lease is lost; 2 for a bad configuration."""
    return run_until_signal(
        "cloud-controller-manager", lambda: run_manager_from_args(args), bad_configuration=_BAD
    )


def run_provider_command(args: argparse.Namespace) -> int:
    """Until SIGTERM or SIGINT (0); 2 when it cannot listen or its instances are bad."""
    try:
        load_cloud(args)
    except _BAD as exc:
        print(f"raftkube cloud-provider: {exc}", file=sys.stderr)
        return 2
    return run_until_signal(
        "cloud-provider", lambda: run_provider_from_args(args), bad_configuration=_BAD
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m raftkube.cloud.cli COMMAND [flags]``: the two commands without the
    ``raftkube`` front end."""
    parser = argparse.ArgumentParser(prog="raftkube-cloud")
    commands = parser.add_subparsers(dest="command", required=True)
    register(commands)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
