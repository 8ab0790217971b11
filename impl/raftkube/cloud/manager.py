"""cloud-controller-manager: the cloud controllers, sharing one informer factory and one
client of the simulated cloud, run while this process holds the
``kube-system/cloud-controller-manager`` Lease.

Controllers are chosen with ``--controllers`` as kube-controller-manager's are (names as
upstream's aliases: ``cloud-node``, ``cloud-node-lifecycle``, ``route``, ``service``); the
route controller runs only with ``--configure-cloud-routes`` (default true, as upstream), and
losing the Lease ends the run with
:class:`~raftkube.controllers.leaderelection.LeaderElectionLost`. The informers read with the
manager's own client; each controller writes with it too, or with
``--use-service-account-credentials`` as its own ``kube-system`` service account (upstream's
``ClientOrDie`` names: ``cloud-node-controller``, ``node-controller`` for the node lifecycle,
``route-controller``, ``service-controller``), as kube-controller-manager's controllers do.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import attrs
import trio

from raftkube.clock import Clock
from raftkube.cloud.client import CloudClient
from raftkube.cloud.nodes import CloudNodeController, CloudNodeLifecycleController
from raftkube.cloud.routes import RouteController
from raftkube.cloud.services import ServiceController
from raftkube.controllers.credentials import (
    ControllerClientBuilder,
    ServiceAccountClientBuilder,
    SimpleControllerClientBuilder,
)
from raftkube.controllers.events import EventRecorder
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.leaderelection import run_while_leading
from raftkube.controllers.manager import is_controller_enabled
from raftkube.kubeclient import Dial, KubeClient, RequestTracer, load_kubeconfig

logger = logging.getLogger("raftkube.cloud.manager")

LEASE_NAMESPACE = "kube-system"
LEASE_NAME = "cloud-controller-manager"
KNOWN_CONTROLLERS = ("cloud-node", "cloud-node-lifecycle", "route", "service")
CONTROLLER_ACCOUNTS = {
    "cloud-node": "cloud-node-controller",
    "cloud-node-lifecycle": "node-controller",
    "route": "route-controller",
    "service": "service-controller",
}
"""The service account each controller acts as with service-account credentials."""


def enabled_cloud_controllers(controllers: Sequence[str]) -> list[str]:
    """The known controllers ``controllers`` enables (``*``, ``name``, ``-name``)."""
    for entry in controllers:
        name = entry.removeprefix("-")
        if entry != "*" and name not in KNOWN_CONTROLLERS:
            raise ValueError(f"{name!r} is not in the list of known controllers")
    return [name for name in KNOWN_CONTROLLERS if is_controller_enabled(name, controllers)]


@attrs.frozen
class CloudControllerOptions:
    """The cloud-controller-manager's flags, with upstream's defaults."""

    controllers: tuple[str, ...] = ("*",)
    cluster_name: str = "kubernetes"  # --cluster-name
    cluster_cidrs: tuple[str, ...] = ()  # --cluster-cidr
    configure_cloud_routes: bool = True  # --configure-cloud-routes
    node_monitor_period: float = 5.0  # --node-monitor-period
    node_status_update_frequency: float = 300.0  # --node-status-update-frequency
    route_reconciliation_period: float = 10.0  # --route-reconciliation-period
    concurrent_service_syncs: int = 1  # --concurrent-service-syncs


async def _build(
    name: str,
    clients: ControllerClientBuilder,
    factory: SharedInformerFactory,
    clock: Clock,
    cloud: CloudClient,
    options: CloudControllerOptions,
    wall: Callable[[], float],
) -> Callable[[int], Awaitable[None]]:
    client = await clients.client_for(CONTROLLER_ACCOUNTS[name])
    if name == "cloud-node":
        recorder = EventRecorder(client, "cloud-node-controller", wall=wall)
        return CloudNodeController(
            client,
            factory,
            clock,
            cloud,
            recorder,
            node_status_update_frequency=options.node_status_update_frequency,
        ).run
    if name == "cloud-node-lifecycle":
        recorder = EventRecorder(client, "cloud-node-lifecycle-controller", wall=wall)
        return CloudNodeLifecycleController(
            client,
            factory,
            clock,
            cloud,
            recorder,
            node_monitor_period=options.node_monitor_period,
        ).run
    if name == "route":
        recorder = EventRecorder(client, "route_controller", wall=wall)
        return RouteController(
            client,
            factory,
            clock,
            cloud,
            recorder,
            cluster_name=options.cluster_name,
            cluster_cidrs=options.cluster_cidrs,
            period=options.route_reconciliation_period,
            wall=wall,
        ).run
    recorder = EventRecorder(client, "service-controller", wall=wall)
    return ServiceController(
        client, factory, clock, cloud, recorder, cluster_name=options.cluster_name
    ).run


async def run_cloud_controllers(
    client: KubeClient,
    clients: ControllerClientBuilder,
    cloud: CloudClient,
    clock: Clock,
    options: CloudControllerOptions,
    *,
    wall: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> None:
    """Build the enabled controllers (each writing with ``clients``' client for it), start
    their informers (reading with ``client``), run them until cancelled."""
    names = enabled_cloud_controllers(options.controllers)
    if not options.configure_cloud_routes and "route" in names:
        logger.info("will not configure cloud provider routes (--configure-cloud-routes=false)")
        names.remove("route")
    factory = SharedInformerFactory(client, clock=clock, rng=rng or random.Random())
    workers = {"service": options.concurrent_service_syncs}
    async with trio.open_nursery() as nursery:
        if isinstance(clients, ServiceAccountClientBuilder):
            nursery.start_soon(clients.run, name="controller token renewal")
        runs = [(n, await _build(n, clients, factory, clock, cloud, options, wall)) for n in names]
        factory.start(nursery)
        for name, run in runs:
            logger.info("starting controller %s", name)
            nursery.start_soon(run, workers.get(name, 1), name=name)


async def run_cloud_controller_manager(
    kubeconfig_or_client: KubeClient | Path | str,
    *,
    cloud_provider_url: str,
    clock: Clock,
    identity: str,
    options: CloudControllerOptions | None = None,
    leader_elect: bool = True,
    wall: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    lease_duration: float = 15.0,
    renew_deadline: float = 10.0,
    retry_period: float = 2.0,
    use_service_account_credentials: bool = False,
    server_ca: bytes | None = None,
    cloud_dial: Dial | None = None,
    cloud_tracer: RequestTracer | None = None,
) -> None:
    """Run the cloud controllers (under leader election unless ``leader_elect`` is false)
    until cancelled; raises :class:`LeaderElectionLost` if the Lease is lost. With
    ``use_service_account_credentials``, ``server_ca`` (default: the kubeconfig's CA)
    verifies the server for the service accounts' clients, which connect as the manager's
    own client does. ``cloud_dial`` is how the cloud is reached (Trio's TCP by default);
    ``cloud_tracer`` is told each cloud request (:class:`CloudClient`'s ``tracer``)."""
    options = options or CloudControllerOptions()
    enabled_cloud_controllers(options.controllers)  # refuse unknown names before connecting
    rng = rng or random.Random()
    async with AsyncExitStack() as stack:
        if isinstance(kubeconfig_or_client, KubeClient):
            client = kubeconfig_or_client
        else:
            if server_ca is None:
                server_ca = load_kubeconfig(kubeconfig_or_client).certificate_authority
            client = await stack.enter_async_context(
                KubeClient.from_kubeconfig(
                    kubeconfig_or_client, clock=clock, user_agent="cloud-controller-manager"
                )
            )
        cloud = await stack.enter_async_context(
            CloudClient(
                cloud_provider_url,
                clock=clock,
                dial=cloud_dial or trio.open_tcp_stream,
                tracer=cloud_tracer,
            )
        )
        clients: ControllerClientBuilder = SimpleControllerClientBuilder(client)
        if use_service_account_credentials:
            if server_ca is None:
                raise ValueError("service account credentials need the server's CA")
            context = ssl.create_default_context(cadata=server_ca.decode("ascii"))
            builder = ServiceAccountClientBuilder(client, context, clock, wall, dial=client.dial)
            stack.push_async_callback(builder.aclose)
            clients = builder

        async def lead() -> None:
            await run_cloud_controllers(
                client, clients, cloud, clock, options, wall=wall, rng=random.Random(rng.random())
            )

        if not leader_elect:
            await lead()
            return
        await run_while_leading(
            client,
            lead,
            component="cloud-controller-manager",
            namespace=LEASE_NAMESPACE,
            name=LEASE_NAME,
            identity=identity,
            clock=clock,
            wall=wall,
            rng=rng,
            lease_duration=lease_duration,
            renew_deadline=renew_deadline,
            retry_period=retry_period,
        )
