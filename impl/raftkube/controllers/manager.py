"""kube-controller-manager: the enabled controllers, sharing one informer factory, run while
this process holds the ``kube-system/kube-controller-manager`` Lease.

Controllers are named as upstream's ``--controllers`` names them, and chosen the same way: a
list of names, ``-name`` to disable one, ``*`` for every controller that is on by default
(upstream's ``IsControllerEnabled``). With leader election, losing the Lease ends the run with
:class:`LeaderElectionLost` (upstream exits with "leaderelection lost"), so a restarted
process starts again from a fresh cache instead of acting on one that another leader has
since made stale.

The informers read with the manager's own client; each controller writes with the client
:mod:`~raftkube.controllers.credentials` gives it: the manager's own, or with
``use_service_account_credentials`` its own service account's (upstream's
``--use-service-account-credentials``, which kubeadm turns on).
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import attrs
import trio

from raftkube.clock import Clock
from raftkube.controllers.credentials import (
    ControllerClientBuilder,
    ServiceAccountClientBuilder,
    SimpleControllerClientBuilder,
)
from raftkube.controllers.deployment import DeploymentController
from raftkube.controllers.endpoints import EndpointsController
from raftkube.controllers.events import EventRecorder
from raftkube.controllers.garbagecollector import GarbageCollector
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.leaderelection import run_while_leading
from raftkube.controllers.namespace import NamespaceController
from raftkube.controllers.nodelifecycle import NodeLifecycleConfig, NodeLifecycleController
from raftkube.controllers.podgc import PodGarbageCollector
from raftkube.controllers.replicaset import ReplicaSetController
from raftkube.controllers.replication import replication_manager
from raftkube.controllers.rootcacert import RootCACertPublisher
from raftkube.controllers.serviceaccount import ServiceAccountsController
from raftkube.controllers.tainteviction import TaintEvictionController
from raftkube.controllers.tokens import TokensController
from raftkube.kubeclient import KubeClient, load_kubeconfig

logger = logging.getLogger("raftkube.controllers.manager")

LEASE_NAMESPACE = "kube-system"
LEASE_NAME = "kube-controller-manager"

KNOWN_CONTROLLERS = (
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
)
DISABLED_BY_DEFAULT: frozenset[str] = frozenset()

CONTROLLER_ACCOUNTS = {
    "deployment": "deployment-controller",
    "endpoint": "endpoint-controller",
    "garbagecollector": "generic-garbage-collector",
    "replicaset": "replicaset-controller",
    "replicationcontroller": "replication-controller",
    "namespace": "namespace-controller",
    "root-ca-cert-publisher": "root-ca-cert-publisher",
    "serviceaccount": "service-account-controller",
    "nodelifecycle": "node-controller",
    "podgc": "pod-garbage-collector",
    "taint-eviction-controller": "node-controller",  # upstream reuses node-controller's role
}
"""The service account each controller acts as with service-account credentials (upstream's
``ClientOrDie`` names). The token controller is not here: it always acts with the manager's
own credentials, as upstream's does (it must read every Secret)."""

DEFAULT_WORKERS = {
    "deployment": 5,  # --concurrent-deployment-syncs
    "endpoint": 5,  # --concurrent-endpoint-syncs
    "garbagecollector": 20,  # --concurrent-gc-syncs
    "replicaset": 5,  # --concurrent-replicaset-syncs
    "replicationcontroller": 5,  # --concurrent-rc-syncs
    "namespace": 10,  # --concurrent-namespace-syncs
    "serviceaccount": 1,  # --concurrent-serviceaccount-syncs
    "root-ca-cert-publisher": 1,
    "nodelifecycle": 8,  # scheduler.UpdateWorkerSize, for the NoSchedule tainting queue
    "podgc": 1,  # one periodic pass, no work queue
    "serviceaccount-token": 5,  # --concurrent-serviceaccount-token-syncs
    "taint-eviction-controller": 8,  # its UpdateWorkerSize
}


def is_controller_enabled(name: str, controllers: Sequence[str]) -> bool:
    """upstream's ``IsControllerEnabled``: an explicit name or ``-name`` decides; otherwise
    ``*`` enables every controller not disabled by default."""
    star = False
    for entry in controllers:
        if entry == name:
            return True
        if entry == f"-{name}":
            return False
        if entry == "*":
            star = True
    return star and name not in DISABLED_BY_DEFAULT


def enabled_controllers(controllers: Sequence[str]) -> list[str]:
    """The known controllers ``controllers`` enables; an unknown name is an error, worded as
    upstream's flag validation."""
    for entry in controllers:
        name = entry.removeprefix("-")
        if entry != "*" and name not in KNOWN_CONTROLLERS:
            raise ValueError(f"{name!r} is not in the list of known controllers")
    return [name for name in KNOWN_CONTROLLERS if is_controller_enabled(name, controllers)]


@attrs.frozen
class ControllerContext:
    """What the controllers are built from."""

    clients: ControllerClientBuilder
    factory: SharedInformerFactory
    clock: Clock
    wall: Callable[[], float]
    root_ca: bytes | None
    manager_client: KubeClient | None = None
    service_account_private_key: bytes | None = None
    node_lifecycle: NodeLifecycleConfig = attrs.field(factory=NodeLifecycleConfig)


async def _build(name: str, ctx: ControllerContext) -> Callable[[int], Awaitable[None]]:
    if name == "root-ca-cert-publisher" and ctx.root_ca is None:
        raise ValueError("root-ca-cert-publisher needs a root CA (--root-ca-file)")
    if name == "serviceaccount-token":
        assert ctx.manager_client is not None
        return TokensController(
            ctx.manager_client,
            ctx.factory,
            ctx.clock,
            root_ca=ctx.root_ca or b"",
            private_key_pem=ctx.service_account_private_key,
        ).run
    client = await ctx.clients.client_for(CONTROLLER_ACCOUNTS[name])
    if name == "nodelifecycle":
        recorder = EventRecorder(client, "node-controller", wall=ctx.wall)
        return NodeLifecycleController(
            client, ctx.factory, ctx.clock, recorder, config=ctx.node_lifecycle, wall=ctx.wall
        ).run
    if name == "taint-eviction-controller":
        recorder = EventRecorder(client, "taint-eviction-controller", wall=ctx.wall)
        return TaintEvictionController(client, ctx.factory, ctx.clock, recorder).run
    if name == "serviceaccount":
        return ServiceAccountsController(client, ctx.factory, ctx.clock).run
    if name == "replicaset":
        return ReplicaSetController(client, ctx.factory, ctx.clock, wall=ctx.wall).run
    if name == "replicationcontroller":
        return replication_manager(client, ctx.factory, ctx.clock, wall=ctx.wall).run
    if name == "deployment":
        return DeploymentController(client, ctx.factory, ctx.clock, wall=ctx.wall).run
    if name == "endpoint":
        return EndpointsController(client, ctx.factory, ctx.clock).run
    if name == "garbagecollector":
        return GarbageCollector(client, ctx.factory, ctx.clock).run
    if name == "podgc":
        return PodGarbageCollector(client, ctx.factory, ctx.clock).run
    if name == "namespace":
        return NamespaceController(client, ctx.factory, ctx.clock, wall=ctx.wall).run
    assert ctx.root_ca is not None
    return RootCACertPublisher(client, ctx.factory, ctx.clock, ctx.root_ca).run


async def run_controllers(
    ctx: ControllerContext, names: Sequence[str], workers: Mapping[str, int]
) -> None:
    """Build ``names``, start the informers they asked for, run them until cancelled."""
    async with trio.open_nursery() as nursery:
        if isinstance(ctx.clients, ServiceAccountClientBuilder):
            nursery.start_soon(ctx.clients.run, name="controller token renewal")
        if "serviceaccount-token" in names and ctx.service_account_private_key is None:
            # upstream: "Controller is disabled because there is no private key"
            logger.warning("serviceaccount-token is disabled: no service account private key")
            names = [n for n in names if n != "serviceaccount-token"]
        runs = [(name, await _build(name, ctx)) for name in names]
        ctx.factory.start(nursery)
        for name, run in runs:
            logger.info("starting controller %s", name)
            nursery.start_soon(run, workers.get(name, DEFAULT_WORKERS[name]), name=name)


async def run_controller_manager(
    kubeconfig_or_client: KubeClient | Path | str,
    *,
    controllers: Sequence[str] = ("*",),
    clock: Clock,
    leader_elect: bool = True,
    identity: str,
    root_ca: bytes | None = None,
    wall: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    workers: Mapping[str, int] | None = None,
    lease_duration: float = 15.0,
    renew_deadline: float = 10.0,
    retry_period: float = 2.0,
    use_service_account_credentials: bool = False,
    server_ca: bytes | None = None,
    service_account_private_key: bytes | None = None,
    node_lifecycle: NodeLifecycleConfig | None = None,
) -> None:
    """Run the enabled controllers (under leader election unless ``leader_elect`` is false)
    until cancelled; raises :class:`LeaderElectionLost` if the Lease is lost. A kubeconfig
    path gets its own client (closed on the way out), and its CA is the published root CA
    unless ``root_ca`` is given, as upstream falls back to the client config's CA data.
    ``server_ca`` verifies the server for the service accounts' clients (default: the
    kubeconfig's CA, else ``root_ca``). ``service_account_private_key`` (PEM) signs legacy
    token Secrets (upstream's ``--service-account-private-key-file``; without it the token
    controller is off); ``node_lifecycle`` holds the node lifecycle controller's flags."""
    names = enabled_controllers(controllers)
    rng = rng or random.Random()
    async with AsyncExitStack() as stack:
        if isinstance(kubeconfig_or_client, KubeClient):
            client = kubeconfig_or_client
        else:
            path = Path(kubeconfig_or_client)
            kubeconfig_ca = load_kubeconfig(path).certificate_authority
            root_ca = root_ca if root_ca is not None else kubeconfig_ca
            server_ca = server_ca if server_ca is not None else kubeconfig_ca
            client = await stack.enter_async_context(
                KubeClient.from_kubeconfig(path, clock=clock, user_agent="kube-controller-manager")
            )
        factory = SharedInformerFactory(client, clock=clock, rng=random.Random(rng.random()))
        clients: ControllerClientBuilder = SimpleControllerClientBuilder(client)
        if use_service_account_credentials:
            ca = server_ca if server_ca is not None else root_ca
            if ca is None:
                raise ValueError("service account credentials need the server's CA")
            context = ssl.create_default_context(cadata=ca.decode("ascii"))
            builder = ServiceAccountClientBuilder(client, context, clock, wall, dial=client.dial)
            stack.push_async_callback(builder.aclose)
            clients = builder
        ctx = ControllerContext(
            clients,
            factory,
            clock,
            wall,
            root_ca,
            manager_client=client,
            service_account_private_key=service_account_private_key,
            node_lifecycle=node_lifecycle or NodeLifecycleConfig(),
        )
        if "root-ca-cert-publisher" in names and root_ca is None:
            raise ValueError("root-ca-cert-publisher needs a root CA (--root-ca-file)")

        async def lead() -> None:
            await run_controllers(ctx, names, workers or {})

        if not leader_elect:
            await lead()
            return
        await run_while_leading(
            client,
            lead,
            component="kube-controller-manager",
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
