"""``raftkube controller-manager``: kube-controller-manager's command line.

Flags keep upstream's names and defaults (``--kubeconfig``, ``--controllers``,
``--leader-elect``, ``--leader-elect-lease-duration``, ``--leader-elect-renew-deadline``,
``--leader-elect-retry-period``, ``--root-ca-file``, ``--use-service-account-credentials``,
``--concurrent-namespace-syncs``, ``--concurrent-serviceaccount-syncs``). The process exits
1 with "leaderelection lost" when it loses the Lease, as upstream does, for its supervisor to
restart it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from raftkube.clock import TrioClock
from raftkube.componentbase import (
    add_leader_election_flags,
    add_service_account_credentials_flag,
    identity,
    parse_duration,
    run_until_signal,
)
from raftkube.controllers.manager import (
    KNOWN_CONTROLLERS,
    enabled_controllers,
    run_controller_manager,
)
from raftkube.controllers.nodehealth import DisruptionConfig
from raftkube.controllers.nodelifecycle import NodeLifecycleConfig


def parse_controllers(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    try:
        enabled_controllers(names)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return names


def register(commands: Any) -> None:
    """Add ``raftkube controller-manager`` to the ``raftkube`` command."""
    p = commands.add_parser(
        "controller-manager",
        help="run the Kubernetes controllers against an API server",
        description="Run the control loops (" + ", ".join(KNOWN_CONTROLLERS) + ") while "
        "holding the kube-system/kube-controller-manager Lease.",
    )
    p.add_argument("--kubeconfig", type=Path, required=True, help="server, CA and credentials")
    p.add_argument(
        "--controllers",
        type=parse_controllers,
        default=["*"],
        help="comma-separated controllers to enable; '*' all on by default, 'foo' enables "
        "foo, '-foo' disables it (default '*')",
    )
    add_leader_election_flags(p)
    p.add_argument(
        "--root-ca-file",
        type=Path,
        help="CA bundle published as kube-root-ca.crt (default: the kubeconfig's CA)",
    )
    add_service_account_credentials_flag(p)
    p.add_argument(
        "--service-account-private-key-file",
        type=Path,
        help="PEM key that signs legacy service-account token Secrets (the serviceaccount-token "
        "controller is off without it)",
    )
    p.add_argument("--node-monitor-period", type=parse_duration, default=5.0)
    p.add_argument("--node-monitor-grace-period", type=parse_duration, default=40.0)
    p.add_argument("--node-startup-grace-period", type=parse_duration, default=60.0)
    p.add_argument("--node-eviction-rate", type=float, default=0.1)
    p.add_argument("--secondary-node-eviction-rate", type=float, default=0.01)
    p.add_argument("--unhealthy-zone-threshold", type=float, default=0.55)
    p.add_argument("--large-cluster-size-threshold", type=int, default=50)
    p.add_argument("--concurrent-namespace-syncs", type=int, default=10)
    p.add_argument("--concurrent-serviceaccount-syncs", type=int, default=1)
    p.set_defaults(handler=run_command)


async def run_from_args(args: argparse.Namespace) -> None:
    """The command's work in a Trio run (tests call this directly)."""
    root_ca = args.root_ca_file.read_bytes() if args.root_ca_file else None
    key_file = args.service_account_private_key_file
    node_lifecycle = NodeLifecycleConfig(
        node_monitor_period=args.node_monitor_period,
        node_monitor_grace_period=args.node_monitor_grace_period,
        node_startup_grace_period=args.node_startup_grace_period,
        disruption=DisruptionConfig(
            eviction_rate=args.node_eviction_rate,
            secondary_eviction_rate=args.secondary_node_eviction_rate,
            unhealthy_zone_threshold=args.unhealthy_zone_threshold,
            large_cluster_threshold=args.large_cluster_size_threshold,
        ),
    )
    await run_controller_manager(
        args.kubeconfig,
        controllers=args.controllers,
        clock=TrioClock(),
        leader_elect=args.leader_elect,
        identity=identity(),
        root_ca=root_ca,
        workers={
            "namespace": args.concurrent_namespace_syncs,
            "serviceaccount": args.concurrent_serviceaccount_syncs,
        },
        lease_duration=args.leader_elect_lease_duration,
        renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period,
        use_service_account_credentials=args.use_service_account_credentials,
        service_account_private_key=key_file.read_bytes() if key_file else None,
        node_lifecycle=node_lifecycle,
    )


def run_command(args: argparse.Namespace) -> int:
    """Run until SIGTERM or SIGINT (status 0); 1 when the Lease is lost, 2 for a bad
    configuration."""
    return run_until_signal(
        "controller-manager",
        lambda: run_from_args(args),
        stop_logger=logging.getLogger("raftkube.controllers"),
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m raftkube.controllers.cli [flags]``: the command without the ``raftkube``
    front end (the same flags as ``raftkube controller-manager``)."""
    parser = argparse.ArgumentParser(prog="raftkube-controller-manager")
    commands = parser.add_subparsers(dest="command", required=True)
    register(commands)
    args = parser.parse_args(["controller-manager", *(sys.argv[1:] if argv is None else argv)])
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
