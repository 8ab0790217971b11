"""The control plane in a simulated world: which hosts there are and what each runs.

:class:`ControlPlane` adds to a :class:`~raftkube_fuzz.world.world.World` (whose members are
the store) one API server, ``managers`` controller managers, ``schedulers`` schedulers and
``nodes`` kubelets, each a generic :class:`~raftkube_fuzz.world.host.Host`: crash, restart,
pause, partitions and clock faults apply to them as to the store's members. It also adds
``user``, the machine the suite's user actions come from (``kubectl`` as
``kubernetes-admin``), which no fault is aimed at.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import trio

from raftkube.kubeclient import KubeClient
from raftkube_fuzz.cluster.accounts import bearer_client
from raftkube_fuzz.cluster.ambiguous import AmbiguousCreates
from raftkube_fuzz.cluster.components import (
    API_HOST,
    API_PORT,
    APIServerProcess,
    ControllerManagerProcess,
    KubeletProcess,
    SchedulerProcess,
    client_for,
)
from raftkube_fuzz.cluster.lag import Lags
from raftkube_fuzz.cluster.leadership import SCHEDULER_LEASE_KEY, LeadershipLog
from raftkube_fuzz.cluster.pki import MAX_NODES, SimPKI, sim_pki
from raftkube_fuzz.world.host import Host, HostEnv, Process
from raftkube_fuzz.world.world import World


@attrs.frozen
class PlaneShape:
    managers: int = 2
    schedulers: int = 2
    nodes: int = 3

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.nodes <= MAX_NODES:
            raise ValueError(f"nodes must be between 1 and {MAX_NODES}, not {self.nodes}")
        if self.managers < 1 or self.schedulers < 1:
            raise ValueError("at least one controller manager and one scheduler")


@attrs.define(eq=False)
class UserProcess:
    """The user's machine: an admin client, open for the incarnation, and a client without a
    certificate that presents the tokens the user keeps (:mod:`.accounts`)."""

    env: HostEnv
    pki: SimPKI
    client: KubeClient | None = None
    prober: KubeClient | None = None

    async def run(self) -> None:
        kubeconfig = str(self.pki.plan.admin_kubeconfig)
        async with (
            client_for(self.env, kubeconfig, "kubectl") as client,
            bearer_client(self.env, kubeconfig) as prober,
        ):
            self.client, self.prober = client, prober
            await trio.sleep_forever()


class ControlPlane:
    """The control plane's hosts in ``world``, by role."""

    def __init__(
        self, world: World, shape: PlaneShape, current_revision: Callable[[], int] = lambda: 1
    ) -> None:
        self.world = world
        self.shape = shape
        self.pki = pki = sim_pki(API_HOST, API_PORT)
        self.lags = lags = Lags()
        """Each component's watch lag ceiling (:mod:`.lag`), set by the suite's faults."""
        self.leadership = leadership = LeadershipLog(current_revision)
        """Which controller managers may act at once; ``current_revision`` reads the store's
        latest revision (the suite's record of what it committed)."""
        endpoints = [world.client_endpoints[i] for i in sorted(world.client_endpoints)]
        self.apiserver = world.add_host(API_HOST, lambda env: APIServerProcess(env, pki, endpoints))
        self.ambiguous = ambiguous = AmbiguousCreates()
        """The controller managers' pod creates with an unknown outcome (:mod:`.ambiguous`)."""
        self.managers = [
            world.add_host(
                f"kcm-{i}",
                lambda env: ControllerManagerProcess(env, pki, leadership, lags, ambiguous),
            )
            for i in range(shape.managers)
        ]
        self.scheduling = scheduling = LeadershipLog(current_revision, SCHEDULER_LEASE_KEY)
        """Which schedulers may act at once."""
        self.schedulers = [
            world.add_host(f"sched-{i}", lambda env: SchedulerProcess(env, pki, scheduling, lags))
            for i in range(shape.schedulers)
        ]
        # The candidates' clocks, for judging how long each waited before a takeover.
        leadership.clocks = {host.name: host.clock.now for host in self.managers}
        scheduling.clocks = {host.name: host.clock.now for host in self.schedulers}
        self.kubelets = [
            world.add_host(node_address(i), _kubelet_boot(pki, i, lags)) for i in range(shape.nodes)
        ]
        self.user = world.add_host("user", lambda env: UserProcess(env, pki))

    @property
    def components(self) -> list[Host]:
        """Every host a fault may hit (the user's machine is not one)."""
        return [self.apiserver, *self.managers, *self.schedulers, *self.kubelets]

    @property
    def admin(self) -> KubeClient:
        process = self.user.process
        assert isinstance(process, UserProcess) and process.client is not None
        return process.client

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


def _kubelet_boot(pki: SimPKI, index: int, lags: Lags) -> Callable[[HostEnv], Process]:
    return lambda env: KubeletProcess(env, pki, index, lags)
