"""The control plane in a simulated world: which hosts there are and what each runs.

:class:`ControlPlane` adds to a :class:`~raftkube_fuzz.world.world.World` (whose members are
the store) one API server, ``managers`` controller managers, ``schedulers`` schedulers,
``nodes`` kubelets, the simulated cloud and two cloud-controller-managers (:mod:`.cloud`),
each a generic :class:`~raftkube_fuzz.world.host.Host`: crash, restart, pause, partitions
and clock faults apply to them as to the store's members. It also adds ``user``, the machine
the suite's user actions come from (``kubectl`` as ``kubernetes-admin``), which no fault is
aimed at.

With ``apiservers=2``, a second API server (an HA control plane: both over the same store
members, each with its own watch caches, both serving the one certificate that names them
both), and every component talks to one of them, fixed: ``kcm-i``, ``sched-i`` and node ``i``
to API server ``i mod 2``. That is upstream's shape: client-go talks to the one URL of its
kubeconfig and never fails over by itself; kubeadm points each control-plane node's
controller manager and scheduler at the API server on the same node, and a node's kubelet
reaches the servers through a load balancer, stood for here by the one server its
connections were pinned to (no load balancer steers them elsewhere when it fails). The user
has one client per API server and each user step names the one it goes through
(:mod:`.user_steps`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

import attrs
import trio

from raftkube.kubeclient import KubeClient
from raftkube_fuzz.cluster.accounts import bearer_client
from raftkube_fuzz.cluster.ambiguous import AmbiguousCreates
from raftkube_fuzz.cluster.cloud import (
    CCM_HOSTS,
    CLOUD_HOST,
    CloudControllerManagerProcess,
    CloudProcess,
    CloudSide,
)
from raftkube_fuzz.cluster.components import (
    API_HOSTS,
    API_PORT,
    APIServerProcess,
    ControllerManagerProcess,
    KubeletProcess,
    SchedulerProcess,
    api_server_url,
    client_for,
)
from raftkube_fuzz.cluster.conformance_monitor import ConformanceMonitor
from raftkube_fuzz.cluster.lag import Lags
from raftkube_fuzz.cluster.leadership import SCHEDULER_LEASE_KEY, LeadershipLog
from raftkube_fuzz.cluster.list_history import ListHistories
from raftkube_fuzz.cluster.object_history import ObjectHistories, tracer_of
from raftkube_fuzz.cluster.pki import MAX_NODES, SimPKI, sim_pki
from raftkube_fuzz.world.host import Host, HostEnv, Process
from raftkube_fuzz.world.world import World


@attrs.frozen
class PlaneShape:
    managers: int = 2
    schedulers: int = 2
    nodes: int = 3
    apiservers: int = 1
    compaction: float = 300.0
    """Every API server's ``--etcd-compaction-interval``, in seconds of its own clock (the
    suite's ``compaction`` setting; upstream's 5 min by default, 0 disables it)."""

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.apiservers <= len(API_HOSTS):
            raise ValueError(
                f"apiservers must be between 1 and {len(API_HOSTS)}, not {self.apiservers}"
            )
        if not 1 <= self.nodes <= MAX_NODES:
            raise ValueError(f"nodes must be between 1 and {MAX_NODES}, not {self.nodes}")
        if self.managers < 1 or self.schedulers < 1:
            raise ValueError("at least one controller manager and one scheduler")


@attrs.define(eq=False)
class UserProcess:
    """The user's machine: an admin client per API server (``kubectl --server``), open for
    the incarnation, and a client without a certificate that presents the tokens the user
    keeps (:mod:`.accounts`) to the first API server."""

    env: HostEnv
    pki: SimPKI
    servers: tuple[str, ...]
    """The API servers' URLs, in order."""
    clients: tuple[KubeClient, ...] = ()
    prober: KubeClient | None = None
    histories: ObjectHistories | None = None
    """Where its clients' requests are recorded (:mod:`.object_history`)."""

    @property
    def client(self) -> KubeClient | None:
        """The first API server's admin client."""
        return self.clients[0] if self.clients else None

    async def run(self) -> None:
        kubeconfig = str(self.pki.plan.admin_kubeconfig)
        async with contextlib.AsyncExitStack() as stack:
            clients = []
            for url in self.servers:
                client = client_for(
                    self.env,
                    kubeconfig,
                    "kubectl",
                    server=url,
                    tracer=tracer_of(self.histories, self.env.name),
                )
                clients.append(await stack.enter_async_context(client))
            self.prober = await stack.enter_async_context(bearer_client(self.env, kubeconfig))
            self.clients = tuple(clients)
            await trio.sleep_forever()


class ControlPlane:
    """The control plane's hosts in ``world``, by role."""

    def __init__(
        self, world: World, shape: PlaneShape, current_revision: Callable[[], int] = lambda: 1
    ) -> None:
        self.world = world
        self.shape = shape
        self.pki = pki = sim_pki(API_HOSTS, API_PORT)
        self.lags = lags = Lags()
        """Each component's watch lag ceiling (:mod:`.lag`), set by the suite's faults."""
        self.leadership = leadership = LeadershipLog(current_revision)
        """Which controller managers may act at once; ``current_revision`` reads the store's
        latest revision (the suite's record of what it committed)."""
        endpoints = [world.client_endpoints[i] for i in sorted(world.client_endpoints)]
        self.apiservers = [
            world.add_host(
                host, lambda env: APIServerProcess(env, pki, endpoints, shape.compaction)
            )
            for host in API_HOSTS[: shape.apiservers]
        ]
        """The API servers, each a host of its own."""
        urls = [api_server_url(host.name) for host in self.apiservers]
        self.histories = histories = ObjectHistories()
        """Every client's single-object requests (:mod:`.object_history`)."""
        self.ambiguous = ambiguous = AmbiguousCreates()
        """The controller managers' pod creates with an unknown outcome (:mod:`.ambiguous`)."""
        self.conformance = conformance = ConformanceMonitor(ambiguous)
        """The views and requests of the judged loops (:mod:`.conformance_monitor`)."""
        self.lists = histories.lists = ListHistories(lambda: conformance.history.revision)
        """Every client's lists (:mod:`.list_history`), recorded through the same tracer; the
        store's revision an answer came at is read from the conformance monitor's history."""
        self.managers = [
            world.add_host(
                f"kcm-{i}",
                functools.partial(
                    ControllerManagerProcess,
                    pki=pki,
                    leadership=leadership,
                    lags=lags,
                    ambiguous=ambiguous,
                    server=urls[i % len(urls)],
                    conformance=conformance,
                    histories=histories,
                ),
            )
            for i in range(shape.managers)
        ]
        self.scheduling = scheduling = LeadershipLog(current_revision, SCHEDULER_LEASE_KEY)
        """Which schedulers may act at once."""
        self.schedulers = [
            world.add_host(
                f"sched-{i}",
                functools.partial(
                    SchedulerProcess,
                    pki=pki,
                    leadership=scheduling,
                    lags=lags,
                    server=urls[i % len(urls)],
                    conformance=conformance,
                    histories=histories,
                ),
            )
            for i in range(shape.schedulers)
        ]
        # The candidates' clocks, for judging how long each waited before a takeover.
        leadership.clocks = {host.name: host.clock.now for host in self.managers}
        scheduling.clocks = {host.name: host.clock.now for host in self.schedulers}
        self.kubelets = [
            world.add_host(
                node_address(i),
                _kubelet_boot(pki, i, lags, urls[i % len(urls)], histories, conformance),
            )
            for i in range(shape.nodes)
        ]
        self.user = world.add_host(
            "user", lambda env: UserProcess(env, pki, tuple(urls), histories=histories)
        )
        self.cloud_side = side = CloudSide()
        """The cloud's state and faults, and the CCM's token (:mod:`.cloud`)."""
        for i, node in enumerate(pki.plan.sim_nodes[: shape.nodes]):
            side.add_instance(node.name, node_address(i))
        self.cloud = world.add_host(CLOUD_HOST, lambda env: CloudProcess(env, side))
        self.ccms = [
            world.add_host(
                name,
                functools.partial(
                    CloudControllerManagerProcess,
                    pki=pki,
                    side=side,
                    lags=lags,
                    server=urls[i % len(urls)],
                    histories=histories,
                    conformance=conformance,
                ),
            )
            for i, name in enumerate(CCM_HOSTS)
        ]

    @property
    def apiserver(self) -> Host:
        """The first API server: the one the user's token probes go to."""
        return self.apiservers[0]

    @property
    def components(self) -> list[Host]:
        """Every host a fault may hit (the user's machine is not one)."""
        return [
            *self.apiservers,
            *self.managers,
            *self.schedulers,
            *self.kubelets,
            self.cloud,
            *self.ccms,
        ]

    @property
    def admin(self) -> KubeClient:
        """The user's admin client of the first API server."""
        return self.admin_via(0)

    def admin_via(self, index: int) -> KubeClient:
        """The user's admin client of API server ``index``."""
        process = self.user.process
        assert isinstance(process, UserProcess) and process.clients
        return process.clients[index]

    def runtimes(self) -> dict[str, KubeletProcess]:
        """The up kubelets' processes by node name."""
        found = {}
        for host in self.kubelets:
            if isinstance(host.process, KubeletProcess):
                found[host.process.node_name] = host.process
        return found


def node_address(index: int) -> str:
    """Simulated node ``index``'s machine: its host name on the stream network is its address
    (the kubelet reports it as the node's and its pods' host IP, which must be an address)."""
    return f"192.168.1.{10 + index}"


def _kubelet_boot(
    pki: SimPKI,
    index: int,
    lags: Lags,
    server: str,
    histories: ObjectHistories | None = None,
    conformance: ConformanceMonitor | None = None,
) -> Callable[[HostEnv], Process]:
    return lambda env: KubeletProcess(
        env, pki, index, lags, server, histories=histories, conformance=conformance
    )
