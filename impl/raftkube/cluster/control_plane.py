"""The control plane's part of a local cluster: the PKI, the kubeconfigs, the command lines of
the API server, controller manager and scheduler, and how a launcher knows the API server is
ready.

Layout under the cluster's data directory:

- ``pki/``: the Kubernetes CA, the API server's serving certificate, the service-account key
  pair and one client certificate per component (:func:`raftkube.apiserver.auth.pki.ensure_pki`).
  It is created on the first start and never regenerated, so kubeconfigs handed out stay valid
  across restarts. It is separate from the store's ``tls/`` (``up --tls``): the store trusts the
  API server as one of its clients, Kubernetes clients trust only the API server.
- ``admin.kubeconfig`` (``kubernetes-admin`` in ``system:masters``, as kubeadm's
  ``admin.conf``), ``scheduler.kubeconfig`` and ``controller-manager.kubeconfig`` (the
  ``system:kube-scheduler`` and ``system:kube-controller-manager`` users the default RBAC
  bindings name): self-contained (certificates embedded) and mode 0600. They are rewritten on
  every start, from the same certificates, so they always name the port in use.

Service-account tokens are signed and verified with ``pki/sa.key`` alone (the server verifies
with its signing key's public half), so ``--service-account-key-file`` is not passed.

The API server runs as ``python -m raftkube.cluster apiserver``, kube-apiserver's flags plus
``--stop-on-stdin-eof``, which this module adds (the launcher's pipe closing is delivered as
the SIGTERM the server already stops on).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from raftkube.apiserver import cli as apiserver_cli
from raftkube.apiserver.auth.pki import (
    ADMIN_USER,
    KUBE_CONTROLLER_MANAGER,
    KUBE_PROXY,
    KUBE_SCHEDULER,
    ClusterPKI,
    ensure_pki,
    issue_client_cert,
    node_user,
    write_kubeconfig,
)
from raftkube.apiserver.auth.user import MASTERS
from raftkube.apiserver.config import APIServerConfig
from raftkube.controllers import cli as controllers_cli
from raftkube.kubeclient import KubeClient, KubeConnectionError
from raftkube.kubelet import cli as kubelet_cli
from raftkube.kubelet.simnodes import SimNode, plan_sim_nodes
from raftkube.proxy import cli as proxy_cli
from raftkube.scheduler import cli as scheduler_cli
from raftkube.tls import CertPair, ClusterCerts, issue_cert

DEFAULT_PORT = 6443
"""kube-apiserver's ``--secure-port`` default, so kubectl users see the port they know."""


def _default_service_range() -> ipaddress.IPv4Network:
    default = attrs.fields(APIServerConfig).service_cluster_ip_range.default
    if not isinstance(default, ipaddress.IPv4Network):
        raise TypeError("APIServerConfig.service_cluster_ip_range has no plain default")
    return default


SERVICE_CLUSTER_IP_RANGE = _default_service_range()
"""The API server's own default; its first address (the ``kubernetes`` Service's ClusterIP)
is in the serving certificate, so the range is passed explicitly to keep the two in step."""

KUBECONFIG_CONTEXT = "raftkube"

SIM_NODE_PREFIX = "sim-"
"""Simulated node ``i`` of ``up --sim-nodes`` is ``sim-{i}`` (real nodes are ``node-{i}``)."""

READY_PROBE_TIMEOUT = 1.0
"""Seconds one ``/readyz`` probe may take; the launcher retries until its own deadline."""


@attrs.frozen
class NodePlan:
    """One kubelet of the local cluster: node ``node-{i}``, pods in ``127.{i+1}.0.0/24``."""

    name: str
    pod_cidr: str
    port: int
    kubeconfig: Path
    serving: CertPair
    root_dir: Path


@attrs.frozen
class ControlPlanePlan:
    """Where the API server listens, which files it uses, and the kubeconfigs for its clients."""

    host: str
    port: int
    pki: ClusterPKI
    admin_kubeconfig: Path
    scheduler_kubeconfig: Path
    controller_manager_kubeconfig: Path
    proxy_kubeconfig: Path
    store_certs: ClusterCerts | None = None
    """The store's TLS files (``up --tls``); None for a plaintext store."""
    kubelet_client: CertPair | None = None
    """The certificate the API server presents to kubelets (``pods/log``)."""
    nodes: tuple[NodePlan, ...] = ()
    sim_nodes: tuple[SimNode, ...] = ()
    """Simulated nodes (``up --sim-nodes``), all served by one ``sim-nodes`` process."""
    sim_node_dir: Path | None = None
    """Where the simulated nodes' kubeconfigs are (``DATA_DIR/sim-nodes``)."""
    etcd_compaction_interval: str = "5m"
    """The API server's ``--etcd-compaction-interval`` (a Go duration; ``0`` disables it)."""

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.port}"

    def argv(self, store_endpoints: Sequence[str]) -> list[str]:
        """The API server's command line, for the store at ``store_endpoints`` (every member's
        client endpoint: the store's client follows the leader among them)."""
        pki = self.pki
        argv = [
            sys.executable,
            "-m",
            "raftkube.cluster",
            "apiserver",
            "--etcd-servers",
            ",".join(store_endpoints),
            "--bind-address",
            self.host,
            "--secure-port",
            str(self.port),
            "--tls-cert-file",
            str(pki.apiserver.cert),
            "--tls-private-key-file",
            str(pki.apiserver.key),
            "--client-ca-file",
            str(pki.ca.cert),
            "--service-account-signing-key-file",
            str(pki.sa_private_key),
            "--service-cluster-ip-range",
            str(SERVICE_CLUSTER_IP_RANGE),
            "--etcd-compaction-interval",
            self.etcd_compaction_interval,
            "--stop-on-stdin-eof",
        ]
        if self.kubelet_client is not None:
            argv += ["--kubelet-client-certificate", str(self.kubelet_client.cert)]
            argv += ["--kubelet-client-key", str(self.kubelet_client.key)]
            argv += ["--kubelet-certificate-authority", str(self.pki.ca.cert)]
        if self.store_certs is not None:
            c = self.store_certs
            argv += ["--etcd-cafile", str(c.ca.cert)]
            argv += ["--etcd-certfile", str(c.client.cert), "--etcd-keyfile", str(c.client.key)]
        return argv

    def controller_manager_argv(self) -> list[str]:
        """``raftkube controller-manager`` as kube-controller-manager runs under kubeadm: its
        own kubeconfig, the cluster CA to publish, and each controller acting as its own
        service account (so each holds only its ``system:controller:*`` role)."""
        return [
            sys.executable,
            "-m",
            "raftkube.cluster",
            "controller-manager",
            "--kubeconfig",
            str(self.controller_manager_kubeconfig),
            "--root-ca-file",
            str(self.pki.ca.cert),
            "--service-account-private-key-file",
            str(self.pki.sa_private_key),
            "--use-service-account-credentials",
            "--stop-on-stdin-eof",
        ]

    def scheduler_argv(self) -> list[str]:
        """``raftkube scheduler`` with its own kubeconfig (``system:kube-scheduler``)."""
        return [
            sys.executable,
            "-m",
            "raftkube.cluster",
            "scheduler",
            "--kubeconfig",
            str(self.scheduler_kubeconfig),
            "--stop-on-stdin-eof",
        ]

    def proxy_argv(self) -> list[str]:
        """``raftkube proxy`` for the machine (every node's pods share its loopback), as
        ``system:kube-proxy``."""
        return [
            sys.executable,
            "-m",
            "raftkube.cluster",
            "proxy",
            "--kubeconfig",
            str(self.proxy_kubeconfig),
            "--bind-address",
            self.host,
            "--stop-on-stdin-eof",
        ]

    def kubelet_argv(self, node: NodePlan) -> list[str]:
        """``raftkube kubelet`` for ``node``: its own credentials (``system:node:NAME``), its
        own pod range and log port, the process runtime."""
        return [
            sys.executable,
            "-m",
            "raftkube.cluster",
            "kubelet",
            "--kubeconfig",
            str(node.kubeconfig),
            "--node-name",
            node.name,
            "--pod-cidr",
            node.pod_cidr,
            "--root-dir",
            str(node.root_dir),
            "--address",
            self.host,
            "--port",
            str(node.port),
            "--tls-cert-file",
            str(node.serving.cert),
            "--tls-private-key-file",
            str(node.serving.key),
            "--client-ca-file",
            str(self.pki.ca.cert),
            "--stop-pods-on-exit",
            "--stop-on-stdin-eof",
        ]

    def sim_nodes_argv(self) -> list[str]:
        """``raftkube sim-nodes`` for every simulated node: one process, each node acting with
        its own kubeconfig, pods in 127.128.0.0/9 (clear of the real nodes' ranges)."""
        assert self.sim_node_dir is not None, "a plan with simulated nodes names their directory"
        return [
            sys.executable,
            "-m",
            "raftkube.cluster",
            "sim-nodes",
            "--kubeconfig-dir",
            str(self.sim_node_dir),
            "--count",
            str(len(self.sim_nodes)),
            "--name-prefix",
            SIM_NODE_PREFIX,
            "--address",
            self.host,
            "--stop-on-stdin-eof",
        ]

    def admin_client(self, timeout: float = READY_PROBE_TIMEOUT) -> KubeClient:
        """A client of this API server as ``kubernetes-admin``, through the admin kubeconfig
        (so a probe also proves the kubeconfig users get is right)."""
        return KubeClient.from_kubeconfig(self.admin_kubeconfig, timeout=timeout)


def plan_control_plane(
    data_dir: Path,
    host: str,
    port: int,
    store_certs: ClusterCerts | None = None,
    *,
    nodes: int = 0,
    kubelet_ports: Sequence[int] = (),
    sim_nodes: int = 0,
    extra_sans: Sequence[str] = (),
    etcd_compaction_interval: str = "5m",
) -> ControlPlanePlan:
    """Create what is missing of ``DATA_DIR/pki`` and (re)write the kubeconfigs for
    ``https://host:port``; with ``nodes``, the kubelets' certificates and kubeconfigs too
    (kubelet ``i`` serves its logs on ``kubelet_ports[i]``); with ``sim_nodes``, a client
    certificate and kubeconfig for each simulated node ``sim-{i}`` in ``DATA_DIR/sim-nodes``.
    ``extra_sans`` are further names or addresses the API server's serving certificate
    covers, as kubeadm's ``--apiserver-cert-extra-sans``: the other API servers of an HA
    control plane, which serve the same certificate (only a certificate this call creates
    gets them; an existing one is kept as it is). ``etcd_compaction_interval`` is passed to
    the API server as is."""
    first_service_ip = next(SERVICE_CLUSTER_IP_RANGE.hosts())
    pki = ensure_pki(data_dir / "pki", service_ip=str(first_service_ip), hosts=(host, *extra_sans))
    kubelet_client = CertPair(pki.root / "apiserver-kubelet-client.crt",
                              pki.root / "apiserver-kubelet-client.key")  # fmt: skip
    if not (kubelet_client.cert.is_file() and kubelet_client.key.is_file()):
        issue_client_cert(pki.ca, kubelet_client, "kube-apiserver-kubelet-client", (MASTERS,))
    node_plans = []
    for i in range(nodes):
        name = f"node-{i}"
        serving = CertPair(pki.root / f"kubelet-{name}.crt", pki.root / f"kubelet-{name}.key")
        if not (serving.cert.is_file() and serving.key.is_file()):
            issue_cert(pki.ca, serving, node_user(name), hosts=(host,), server=True, client=False)
        kubeconfig = (data_dir / f"{name}.kubeconfig").absolute()
        pair = pki.node(name)
        write_kubeconfig(
            kubeconfig, f"https://{host}:{port}", pki.ca.cert, pair.cert, pair.key,
            node_user(name), KUBECONFIG_CONTEXT,
        )  # fmt: skip
        node_plans.append(
            NodePlan(name, f"127.{i + 1}.0.0/24", kubelet_ports[i], kubeconfig, serving,
                     (data_dir / "kubelet" / name).absolute())
        )  # fmt: skip
    sim_node_dir = (data_dir / "sim-nodes").absolute()
    sim_plans = plan_sim_nodes(sim_node_dir, sim_nodes, SIM_NODE_PREFIX)
    if sim_plans:
        sim_node_dir.mkdir(exist_ok=True)
    for sim in sim_plans:
        pair = pki.node(sim.name)
        write_kubeconfig(
            sim.kubeconfig, f"https://{host}:{port}", pki.ca.cert, pair.cert, pair.key,
            node_user(sim.name), KUBECONFIG_CONTEXT,
        )  # fmt: skip
    plan = ControlPlanePlan(
        host=host,
        port=port,
        pki=pki,
        admin_kubeconfig=(data_dir / "admin.kubeconfig").absolute(),
        scheduler_kubeconfig=(data_dir / "scheduler.kubeconfig").absolute(),
        controller_manager_kubeconfig=(data_dir / "controller-manager.kubeconfig").absolute(),
        proxy_kubeconfig=(data_dir / "proxy.kubeconfig").absolute(),
        store_certs=store_certs,
        kubelet_client=kubelet_client,
        nodes=tuple(node_plans),
        sim_nodes=sim_plans,
        sim_node_dir=sim_node_dir if sim_plans else None,
        etcd_compaction_interval=etcd_compaction_interval,
    )
    for path, pair, user in (
        (plan.admin_kubeconfig, pki.admin, ADMIN_USER),
        (plan.scheduler_kubeconfig, pki.scheduler, KUBE_SCHEDULER),
        (plan.controller_manager_kubeconfig, pki.controller_manager, KUBE_CONTROLLER_MANAGER),
        (plan.proxy_kubeconfig, pki.proxy, KUBE_PROXY),
    ):
        write_kubeconfig(
            path, plan.server, pki.ca.cert, pair.cert, pair.key, user, KUBECONFIG_CONTEXT
        )
    return plan


async def probe_ready(client: KubeClient) -> bool:
    """One authenticated ``GET /readyz``: True if the server answers 200 (it serves and its
    storage is reachable), False if it answers otherwise or not at all (yet)."""
    try:
        status, _headers, _body = await client.request("GET", "/readyz")
    except KubeConnectionError:
        return False
    return status == 200


def register(commands: Any) -> None:
    """Add the control plane's commands to ``python -m raftkube.cluster``: ``apiserver``,
    ``controller-manager`` and ``scheduler``, each with its own parser and handler plus
    ``--stop-on-stdin-eof``."""
    for name, register_command in (
        ("apiserver", apiserver_cli.register),
        ("controller-manager", controllers_cli.register),
        ("scheduler", scheduler_cli.register),
        ("kubelet", kubelet_cli.register),
        ("sim-nodes", kubelet_cli.register_sim_nodes),
        ("proxy", proxy_cli.register),
    ):
        register_command(commands)
        _stop_on_stdin_eof(commands.choices[name])


def _stop_on_stdin_eof(parser: argparse.ArgumentParser) -> None:
    inner = parser.get_default("handler")
    parser.add_argument(
        "--stop-on-stdin-eof",
        action="store_true",
        help="also stop when stdin closes (used by `raftkube up`, so no component outlives it)",
    )

    def handler(args: argparse.Namespace) -> int:
        if args.stop_on_stdin_eof:
            threading.Thread(target=_terminate_on_stdin_eof, name="stdin-eof", daemon=True).start()
        result: int = inner(args)
        return result

    parser.set_defaults(handler=handler)


def _terminate_on_stdin_eof() -> None:
    """Block on stdin in a thread of our own (the server's Trio run is not ours to extend) and
    turn its end into SIGTERM, which the server handles as an orderly stop."""
    with contextlib.suppress(OSError):
        while os.read(sys.stdin.fileno(), 4096):
            pass
    os.kill(os.getpid(), signal.SIGTERM)


__all__ = [
    "DEFAULT_PORT",
    "SERVICE_CLUSTER_IP_RANGE",
    "ControlPlanePlan",
    "plan_control_plane",
    "probe_ready",
    "register",
]
