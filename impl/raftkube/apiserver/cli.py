"""``raftkube apiserver``: the API server as an operating-system process.

The flags are kube-apiserver's, by the same names, for the ones this server has (a Kubernetes
operator should not have to learn new spellings): ``--etcd-servers`` names the raftkube store's
client endpoints. It logs one line per event an operator cares about to stderr and stops
cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from raftkube.apiserver.config import APIServerConfig, ConfigError
from raftkube.cluster.common import describe, expected_error, port_number
from raftkube.server.compactor import parse_go_duration
from raftkube.tuning import tune_gc

logger = logging.getLogger("raftkube.apiserver")


def _cidr(text: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not isinstance(net, ipaddress.IPv4Network) or net.num_addresses < 4:
        raise argparse.ArgumentTypeError(f"{text}: an IPv4 range of at least 4 addresses is needed")
    return net


def _port_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    try:
        lo, hi = int(low), int(high)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: expected LOW-HIGH, e.g. 30000-32767") from None
    if not sep or not 1 <= lo <= hi <= 65535:
        raise argparse.ArgumentTypeError(f"{text}: expected LOW-HIGH within 1-65535")
    return lo, hi


def go_duration(text: str) -> float:
    """A Go duration (``5m``, ``1h30m``, ``0``) in seconds, as pflag's ``DurationVar`` reads it."""
    try:
        seconds = parse_go_duration(text.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"{text}: must not be negative")
    return seconds


def register(commands: Any) -> None:
    """Add ``raftkube apiserver`` to the ``raftkube`` command."""
    p = commands.add_parser(
        "apiserver",
        help="run a Kubernetes API server on the raftkube store",
        description="Serve the Kubernetes API over HTTPS, storing objects in a raftkube store.",
    )
    p.add_argument(
        "--etcd-servers",
        required=True,
        help="comma-separated client endpoints of the raftkube store (host:port,...)",
    )
    p.add_argument("--etcd-cafile", type=Path, help="CA bundle for the store's TLS")
    p.add_argument("--etcd-certfile", type=Path, help="client certificate for the store")
    p.add_argument("--etcd-keyfile", type=Path, help="client key for the store")
    p.add_argument(
        "--etcd-compaction-interval",
        type=go_duration,
        default="5m",
        help="The interval of compaction requests. If 0, the compaction request from "
        "apiserver is disabled. (default 5m)",
    )
    p.add_argument("--bind-address", default="127.0.0.1", help="address to serve on")
    p.add_argument("--secure-port", type=port_number, default=6443, help="HTTPS port (6443)")
    p.add_argument("--tls-cert-file", type=Path, required=True, help="serving certificate")
    p.add_argument("--tls-private-key-file", type=Path, required=True, help="serving key")
    p.add_argument(
        "--client-ca-file",
        type=Path,
        help="CA that signs client certificates (CN is the user, O the groups)",
    )
    p.add_argument(
        "--token-auth-file",
        type=Path,
        help='static bearer tokens, CSV: token,user,uid,"group1,group2"',
    )
    p.add_argument(
        "--service-account-key-file",
        type=Path,
        action="append",
        default=[],
        help="PEM key(s) that verify service-account tokens (repeatable)",
    )
    p.add_argument(
        "--service-account-signing-key-file",
        type=Path,
        required=True,
        help="PEM private key that signs service-account tokens",
    )
    p.add_argument(
        "--service-account-issuer",
        default="https://kubernetes.default.svc.cluster.local",
        help="the iss claim of issued tokens",
    )
    p.add_argument(
        "--api-audiences",
        default="",
        help="comma-separated audiences tokens must carry (default: the issuer)",
    )
    p.add_argument(
        "--service-cluster-ip-range",
        type=_cidr,
        default=_cidr("127.96.0.0/12"),
        help="Service cluster IPs are allocated here (default 127.96.0.0/12: loopback, so "
        "proxies need no root)",
    )
    p.add_argument(
        "--service-node-port-range",
        type=_port_range,
        default=(30000, 32767),
        help="NodePorts are allocated here (default 30000-32767)",
    )
    p.add_argument(
        "--anonymous-auth",
        choices=("true", "false"),
        default="false",
        help="serve requests without credentials as system:anonymous (default false)",
    )
    p.add_argument(
        "--authorization-mode",
        default="Node,RBAC",
        help="comma-separated authorizers, from AlwaysAllow, Node, RBAC (default Node,RBAC)",
    )
    p.add_argument(
        "--min-request-timeout",
        type=int,
        default=1800,
        help="seconds: a watch without timeoutSeconds ends after a random time in [T, 2T)",
    )
    p.add_argument(
        "--kubelet-client-certificate",
        type=Path,
        help="client certificate the server presents to kubelets (pods/log)",
    )
    p.add_argument("--kubelet-client-key", type=Path, help="its key")
    p.add_argument(
        "--kubelet-certificate-authority",
        type=Path,
        help="CA that signs the kubelets' serving certificates (default: --client-ca-file)",
    )
    p.set_defaults(handler=run_apiserver)


def config_from_args(args: argparse.Namespace) -> APIServerConfig:
    modes = tuple(m.strip() for m in args.authorization_mode.split(",") if m.strip())
    audiences = tuple(a.strip() for a in args.api_audiences.split(",") if a.strip())
    return APIServerConfig(
        etcd_servers=tuple(s.strip() for s in args.etcd_servers.split(",") if s.strip()),
        etcd_cafile=args.etcd_cafile,
        etcd_certfile=args.etcd_certfile,
        etcd_keyfile=args.etcd_keyfile,
        etcd_compaction_interval=args.etcd_compaction_interval,
        bind_address=args.bind_address,
        secure_port=args.secure_port,
        tls_cert_file=args.tls_cert_file,
        tls_private_key_file=args.tls_private_key_file,
        client_ca_file=args.client_ca_file,
        token_auth_file=args.token_auth_file,
        service_account_key_files=tuple(args.service_account_key_file),
        service_account_signing_key_file=args.service_account_signing_key_file,
        service_account_issuer=args.service_account_issuer,
        api_audiences=audiences or (args.service_account_issuer,),
        service_cluster_ip_range=args.service_cluster_ip_range,
        service_node_port_range=args.service_node_port_range,
        anonymous_auth=args.anonymous_auth == "true",
        authorization_modes=modes,
        min_request_timeout=float(args.min_request_timeout),
        kubelet_client_certificate=args.kubelet_client_certificate,
        kubelet_client_key=args.kubelet_client_key,
        kubelet_certificate_authority=args.kubelet_certificate_authority,
    )


def run_apiserver(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s apiserver %(message)s", stream=sys.stderr
    )
    from raftkube.apiserver.assemble import run_api_server

    try:
        config = config_from_args(args)
        config.check()
    except ConfigError as exc:
        print(f"raftkube apiserver: {exc}", file=sys.stderr)
        return 2

    tune_gc()

    async def main() -> None:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                    async for _ in signals:
                        logger.info("stopping")
                        nursery.cancel_scope.cancel()
                        return

            nursery.start_soon(stop_on_signal)
            await run_api_server(config)
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    except Exception as exc:  # one line for what an operator can fix, a traceback otherwise
        if expected_error(exc) is None:
            raise
        print(f"raftkube apiserver: {describe(exc)}", file=sys.stderr)
        return 1
    return 0
