"""``raftkube proxy``: kube-proxy's command line, userspace mode.

``--kubeconfig`` names the server and the proxy's credentials (``system:kube-proxy``, bound to
the ``system:node-proxier`` ClusterRole); ``--bind-address`` is the node address NodePorts are
served on (default ``127.0.0.1`` here, where upstream listens on every address: this cluster's
nodes share one machine's loopback). ClusterIPs are listened on as they are, which needs no
root for the loopback Service range 127.96.0.0/12 (ports below 1024 still do).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from pathlib import Path
from typing import Any

from raftkube.clock import TrioClock
from raftkube.componentbase import parse_duration, run_until_signal
from raftkube.kubeclient import KubeConfigError
from raftkube.net.streams import TcpNetwork
from raftkube.proxy.proxier import run_proxy


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid IP address {text!r}") from None


def register(commands: Any) -> None:
    """Add ``raftkube proxy`` to the ``raftkube`` command."""
    p = commands.add_parser(
        "proxy",
        help="run kube-proxy (userspace TCP) against an API server",
        description="Listen on every Service's ClusterIP ports (and NodePorts on the bind "
        "address) and relay each connection to a ready endpoint, round-robin.",
    )
    p.add_argument("--kubeconfig", type=Path, required=True, help="server, CA and credentials")
    p.add_argument(
        "--bind-address",
        type=_ip,
        default="127.0.0.1",
        help="address NodePorts are served on (default 127.0.0.1)",
    )
    p.add_argument(
        "--sync-period",
        type=parse_duration,
        default=30.0,
        help="how often listeners are checked even without changes, e.g. to retry a busy "
        "port (default 30s; upstream's userspace mode took it from --iptables-sync-period)",
    )
    p.set_defaults(handler=run_command)


async def run_from_args(args: argparse.Namespace) -> None:
    """The command's work in a Trio run (tests call this directly)."""
    await run_proxy(
        args.kubeconfig,
        network=TcpNetwork(),
        clock=TrioClock(),
        bind_address=args.bind_address,
        sync_period=args.sync_period,
    )


def run_command(args: argparse.Namespace) -> int:
    """Run until SIGTERM or SIGINT (status 0); 2 for a bad kubeconfig."""
    return run_until_signal(
        "proxy",
        lambda: run_from_args(args),
        bad_configuration=(KubeConfigError,),
        stop_logger=logging.getLogger("raftkube.proxy"),
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m raftkube.proxy.cli [flags]``: the command without the ``raftkube`` front
    end (the same flags as ``raftkube proxy``)."""
    parser = argparse.ArgumentParser(prog="raftkube-proxy")
    commands = parser.add_subparsers(dest="command", required=True)
    register(commands)
    args = parser.parse_args(["proxy", *(sys.argv[1:] if argv is None else argv)])
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
