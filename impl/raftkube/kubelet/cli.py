"""``raftkube kubelet``: one node's kubelet as a process.

Flags: ``--kubeconfig`` (the node's own credentials: user ``system:node:{name}`` in
``system:nodes``), ``--node-name`` (upstream's ``--hostname-override``), ``--pod-cidr`` (the
node's pod addresses, e.g. ``127.1.0.0/24``; every node of a machine needs its own),
``--cpu``, ``--memory``, ``--max-pods`` (capacity and allocatable), ``--runtime``
(``process``: local processes, see :mod:`raftkube.runtime.process`; ``simulated``: nothing
runs, containers run forever and pass every probe at once), ``--root-dir`` (under
``{root-dir}/{node-name}``: the process runtime's pod directories, records, logs and the pod
volumes), ``--address`` (the node's InternalIP and where logs are served, 127.0.0.1),
``--port`` (10250; 0 takes a free one), and upstream's ``--tls-cert-file``,
``--tls-private-key-file`` and ``--client-ca-file`` for the log endpoint, which is served only
when all three are given. ``--node-lease-duration-seconds`` is upstream's
``nodeLeaseDurationSeconds`` (a kubelet configuration-file field; kwok names its flag so):
the Lease is renewed every quarter of it.

``raftkube sim-nodes`` runs many simulated nodes in one process (:mod:`.simnodes`): node ``i``
is ``{--name-prefix}{i}``, acts with ``{--kubeconfig-dir}/{name}.kubeconfig`` and takes the
``i``-th /24 of ``--pod-cidr-pool`` (default 127.128.0.0/9, clear of the real nodes' ranges).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from raftkube.clock import Clock, TrioClock
from raftkube.kubeclient import KubeClient, KubeConfigError
from raftkube.kubelet.kubelet import Kubelet
from raftkube.kubelet.node import LEASE_DURATION, NodeConfig
from raftkube.kubelet.probes import RuntimeProber
from raftkube.kubelet.simnodes import (
    SIM_POD_CIDRS,
    SimNodeResources,
    plan_sim_nodes,
    run_sim_nodes,
)
from raftkube.runtime.interface import ContainerState, RuntimeService
from raftkube.runtime.process import ProcessRuntime
from raftkube.runtime.simulated import SimulatedRuntime
from raftkube.tls import server_context


@attrs.frozen
class KubeletOptions:
    kubeconfig: Path
    node_name: str
    pod_cidr: str
    cpu: str = "4"
    memory: str = "8Gi"
    max_pods: int = 110
    runtime: str = "process"
    root_dir: Path = Path(".raftkube/kubelet")
    address: str = "127.0.0.1"
    port: int = 10250
    tls_cert_file: Path | None = None
    tls_private_key_file: Path | None = None
    client_ca_file: Path | None = None
    lease_duration: int = LEASE_DURATION


def _cidr(text: str) -> str:
    try:
        network = ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"invalid --pod-cidr {text!r}: {exc}") from None
    return str(network)


def register(commands: Any) -> None:
    p = commands.add_parser(
        "kubelet",
        help="run a node's kubelet against an API server",
        description="The node agent: registers its Node and runs the pods bound to it.",
    )
    p.add_argument("--kubeconfig", type=Path, required=True, help="the node's kubeconfig")
    p.add_argument("--node-name", required=True, help="the Node's name")
    p.add_argument("--pod-cidr", type=_cidr, required=True, help="e.g. 127.1.0.0/24")
    p.add_argument("--cpu", default="4", help="CPU capacity (a quantity: 4, 500m)")
    p.add_argument("--memory", default="8Gi", help="memory capacity (a quantity)")
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--runtime", choices=("process", "simulated"), default="process")
    p.add_argument("--root-dir", type=Path, default=Path(".raftkube/kubelet"))
    p.add_argument(
        "--stop-pods-on-exit",
        action="store_true",
        help="stop every pod's processes when the kubelet stops (raftkube up: Ctrl-C stops all; "
        "without it, as upstream, pods outlive the kubelet and are adopted when it restarts)",
    )
    p.add_argument("--address", default="127.0.0.1", help="node IP and log endpoint address")
    p.add_argument("--port", type=int, default=10250, help="log endpoint port (0: any)")
    p.add_argument("--tls-cert-file", type=Path)
    p.add_argument("--tls-private-key-file", type=Path)
    p.add_argument("--client-ca-file", type=Path)
    _lease_flag(p)
    p.set_defaults(handler=run_cli)


def _lease_seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"invalid --node-lease-duration-seconds {text!r}: a whole number of seconds, at least 1"
        )
    return value


def _lease_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--node-lease-duration-seconds",
        type=_lease_seconds,
        default=LEASE_DURATION,
        help=f"the node Lease's duration; it is renewed every quarter of it (default "
        f"{LEASE_DURATION}, upstream's nodeLeaseDurationSeconds)",
    )


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid --count {text!r}: a whole number, at least 1")
    return value


def _pool(text: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"invalid --pod-cidr-pool {text!r}: {exc}") from None


def register_sim_nodes(commands: Any) -> None:
    """Add ``sim-nodes``: many simulated nodes' kubelets in one process."""
    p = commands.add_parser(
        "sim-nodes",
        help="run many simulated nodes (kubelets over the simulated runtime) in one process",
        description="Simulated nodes, as kwok serves them: each runs the kubelet over the "
        "simulated runtime with its own node credentials.",
    )
    p.add_argument(
        "--kubeconfig-dir",
        type=Path,
        required=True,
        help="holds NAME.kubeconfig for every node (its own system:node:NAME credentials)",
    )
    p.add_argument("--count", type=_count, required=True, help="how many nodes")
    p.add_argument("--name-prefix", default="sim-", help="node i is PREFIX+i (default sim-)")
    p.add_argument(
        "--pod-cidr-pool",
        type=_pool,
        default=SIM_POD_CIDRS,
        help=f"node i's pods get the i-th /24 of this range (default {SIM_POD_CIDRS})",
    )
    p.add_argument("--cpu", default="4", help="each node's CPU capacity")
    p.add_argument("--memory", default="8Gi", help="each node's memory capacity")
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--address", default="127.0.0.1", help="the nodes' InternalIP")
    _lease_flag(p)
    p.set_defaults(handler=run_sim_nodes_cli)


def options_from(args: argparse.Namespace) -> KubeletOptions:
    return KubeletOptions(
        kubeconfig=args.kubeconfig,
        node_name=args.node_name,
        pod_cidr=args.pod_cidr,
        cpu=args.cpu,
        memory=args.memory,
        max_pods=args.max_pods,
        runtime=args.runtime,
        root_dir=args.root_dir,
        address=args.address,
        port=args.port,
        tls_cert_file=args.tls_cert_file,
        tls_private_key_file=args.tls_private_key_file,
        client_ca_file=args.client_ca_file,
        lease_duration=args.node_lease_duration_seconds,
    )


def build_kubelet(options: KubeletOptions, client: KubeClient, clock: Clock) -> Kubelet:
    runtime: RuntimeService
    if options.runtime == "process":
        runtime = ProcessRuntime(clock, options.root_dir / options.node_name, options.pod_cidr)
    else:
        runtime = SimulatedRuntime(clock, options.pod_cidr)
    config = NodeConfig(
        options.node_name,
        options.pod_cidr,
        cpu=options.cpu,
        memory=options.memory,
        max_pods=options.max_pods,
        address=options.address,
        port=options.port,
        runtime_name="sim" if options.runtime == "simulated" else "process",
        lease_duration=options.lease_duration,
    )
    serving = None
    tls = (options.tls_cert_file, options.tls_private_key_file, options.client_ca_file)
    if all(tls):
        cert, key, ca = tls
        assert cert is not None and key is not None and ca is not None
        serving = server_context(cert, key, ca, client_cert_auth=True)
    volume_root: Path | None = options.root_dir / options.node_name / "volumes"
    if options.runtime != "process":
        volume_root = None
    prober = RuntimeProber(runtime) if options.runtime == "simulated" else None
    return Kubelet(
        client,
        runtime,
        config,
        clock,
        prober=prober,
        volume_root=volume_root,
        serving=serving,
        record_events=True,
    )


STOP_GRACE = 5.0
"""Seconds each container gets between SIGTERM and SIGKILL when the kubelet stops its pods."""


async def stop_every_pod(runtime: RuntimeService, grace: float) -> None:
    """Stop every running container (SIGTERM, ``grace``, SIGKILL) and its sandbox. The pods
    stay bound to the node: a kubelet started again on it runs them again. All pods at once, so
    the whole stop takes one grace period (``raftkube up`` waits 10 s before SIGKILL)."""

    async def stop(sandbox_id: str) -> None:
        for container in await runtime.list_containers(sandbox_id):
            if container.state is ContainerState.RUNNING:
                await runtime.stop_container(container.id, grace)
        await runtime.stop_pod_sandbox(sandbox_id)

    async with trio.open_nursery() as nursery:
        for sandbox in await runtime.list_pod_sandboxes():
            nursery.start_soon(stop, sandbox.id)


def run_cli(args: argparse.Namespace) -> int:
    """The ``raftkube kubelet`` handler."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    options = options_from(args)

    async def main() -> int:
        clock = TrioClock()
        async with KubeClient.from_kubeconfig(options.kubeconfig, clock=clock) as client:
            kubelet = build_kubelet(options, client, clock)
            async with trio.open_nursery() as nursery:

                async def stop_on_signal() -> None:
                    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                        async for _ in signals:
                            nursery.cancel_scope.cancel()
                            return

                nursery.start_soon(stop_on_signal)
                await kubelet.run()
            if args.stop_pods_on_exit:
                await stop_every_pod(kubelet.runtime, STOP_GRACE)
        return 0

    try:
        return trio.run(main)
    except KubeConfigError as exc:
        sys.stderr.write(f"raftkube kubelet: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 0


async def _until_signal(run: Callable[[], Awaitable[None]]) -> None:
    """Run ``run()`` until SIGTERM or SIGINT, which end it as an orderly cancel."""
    async with trio.open_nursery() as nursery:

        async def stop_on_signal() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    return

        nursery.start_soon(stop_on_signal)
        await run()
        nursery.cancel_scope.cancel()


def run_sim_nodes_cli(args: argparse.Namespace) -> int:
    """The ``raftkube sim-nodes`` handler."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    resources = SimNodeResources(
        cpu=args.cpu,
        memory=args.memory,
        max_pods=args.max_pods,
        lease_duration=args.node_lease_duration_seconds,
    )
    try:
        nodes = plan_sim_nodes(
            args.kubeconfig_dir, args.count, args.name_prefix, args.pod_cidr_pool
        )
    except ValueError as exc:
        sys.stderr.write(f"raftkube sim-nodes: {exc}\n")
        return 2

    failed: list[KubeConfigError] = []

    async def main() -> None:
        try:
            await _until_signal(lambda: run_sim_nodes(nodes, TrioClock(), resources, args.address))
        except* KubeConfigError as group:
            failed.extend(e for e in group.exceptions if isinstance(e, KubeConfigError))

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main)
    for error in failed:
        sys.stderr.write(f"raftkube sim-nodes: {error}\n")
    return 1 if failed else 0
