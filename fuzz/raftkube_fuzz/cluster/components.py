"""The control plane's programs as simulated hosts: the production code, unmodified.

Each class here is one :class:`~raftkube_fuzz.world.host.Process` (what a host's ``boot``
returns for one incarnation): the API server (:func:`~raftkube.apiserver.assemble.open_api_server`),
the controller manager (:func:`~raftkube.controllers.manager.run_controller_manager`), the
scheduler (:func:`~raftkube.scheduler.cli.serve`) and a node's machine: its kubelet on the
simulated runtime (:class:`~raftkube.kubelet.Kubelet` over
:class:`~raftkube.runtime.SimulatedRuntime`) beside its kube-proxy
(:class:`~raftkube.proxy.proxier.Proxier`). Every
one of them takes its clock, its network, its wall clock and its randomness from the host's
:class:`~raftkube_fuzz.world.host.HostEnv`, and nothing else from outside: that is what makes a
run a function of its seed.

Credentials are the ones ``raftkube up`` gives each component (:mod:`.pki`): the controller
manager acts as ``system:kube-controller-manager``, the scheduler as
``system:kube-scheduler``, each kubelet as ``system:node:NAME``, each kube-proxy as
``system:kube-proxy``, all over TLS with client
certificates, so the Node authorizer, NodeRestriction and RBAC judge every request as in a
real cluster.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from raftkube.apiserver.assemble import RunningAPIServer, open_api_server
from raftkube.apiserver.config import APIServerConfig
from raftkube.cluster.control_plane import SERVICE_CLUSTER_IP_RANGE
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.leaderelection import LeaderElectionLost
from raftkube.controllers.manager import run_controller_manager
from raftkube.controllers.nodehealth import DisruptionConfig
from raftkube.controllers.nodelifecycle import NodeLifecycleConfig
from raftkube.kubeclient import KubeClient, RequestObserver, RequestTracer, load_kubeconfig
from raftkube.kubelet import Kubelet, NodeConfig, RuntimeProber
from raftkube.proxy.proxier import Proxier
from raftkube.runtime import ContainerScript, SimulatedRuntime
from raftkube.scheduler.cli import SchedulerOptions, serve
from raftkube_fuzz.cluster.actions import (
    SLOW_READY_AFTER,
    SLOW_READY_IMAGE,
    SLOW_STOP_AFTER,
    SLOW_STOP_IMAGE,
)
from raftkube_fuzz.cluster.ambiguous import AmbiguousCreates
from raftkube_fuzz.cluster.conformance_monitor import ConformanceMonitor
from raftkube_fuzz.cluster.lag import Dial, LaggingWatchClient, Lags, lagging_dial
from raftkube_fuzz.cluster.leadership import LeadershipLog
from raftkube_fuzz.cluster.object_history import ObjectHistories, tracer_of
from raftkube_fuzz.cluster.pki import SimPKI
from raftkube_fuzz.world.clock import SimClock
from raftkube_fuzz.world.host import HostEnv

API_HOSTS = ("192.168.0.2", "192.168.0.3")
"""The API servers' host names on the stream network (the suite's ``apiservers`` setting says
how many run): addresses, because a server advertises its own in the ``kubernetes`` Endpoints.
Every one is in the one serving certificate they all present (:mod:`.pki`)."""
API_HOST = API_HOSTS[0]
"""The first API server's: the one every client's kubeconfig names."""
API_PORT = 6443

EPOCH = 1_767_225_600.0
"""The wall clock (Unix seconds: 2026-01-01T00:00:00Z) every simulated host reads when its
own clock reads 0; a host's wall clock is ``EPOCH + clock.wall()``: it drifts and jumps with
the host's clock, and is also stepped on its own (``host_wall_offset``, as NTP steps system
time) while the monotonic clock that timeouts and leases are judged by is not."""

CONTROLLERS = (
    "replicaset",
    "deployment",
    "endpoint",
    "garbagecollector",
    "nodelifecycle",
    "taint-eviction-controller",
    "serviceaccount",
    "serviceaccount-token",  # legacy token Secrets: filled in, and deleted with their account
    "root-ca-cert-publisher",
    "namespace",
    "podgc",
)
"""The controllers the simulated manager runs: the workload loops the suite's checks are
about, plus what pods need to be admitted (a ``default`` ServiceAccount and the root CA
ConfigMap its token volume projects), what a lost node needs (node lifecycle, eviction), what
a deleted namespace needs (the namespace controller empties and finalizes it) and what a
deleted node's pods need (the pod garbage collector force-deletes them)."""

NODE_LIFECYCLE = NodeLifecycleConfig(
    node_monitor_period=1.0,
    node_monitor_grace_period=20.0,
    node_startup_grace_period=20.0,
    eviction_period=0.1,
    disruption=DisruptionConfig(),
)
"""Shorter than upstream's 40 s grace so that an example reaches a node's eviction in tens
of virtual seconds; still twice the kubelet's 10 s Lease renewal, which is the margin upstream
asks for."""

LEADER_LEASE = 15.0
LEADER_RENEW = 10.0
LEADER_RETRY = 2.0
"""Leader election for the controller manager and the scheduler: upstream's defaults."""


SCRIPTS = {
    SLOW_READY_IMAGE: ContainerScript(ready_after=SLOW_READY_AFTER),
    SLOW_STOP_IMAGE: ContainerScript(stop_takes=SLOW_STOP_AFTER),
}
"""What the simulated runtimes run, by image (any other image: ready at once)."""


def wall_clock(clock: SimClock) -> Callable[[], float]:
    """The host's wall clock: :data:`EPOCH` plus its own clock's wall reading."""
    return lambda: EPOCH + clock.wall()


def elected(env: HostEnv) -> dict[str, Any]:
    """The leader-election arguments a controller manager (kube's or the cloud's) on ``env``
    runs with: upstream's durations, the host's own clocks and randomness, its name as
    identity."""
    return {
        "clock": env.clock,
        "identity": env.name,
        "leader_elect": True,
        "wall": wall_clock(env.clock),
        "rng": env.rng,
        "lease_duration": LEADER_LEASE,
        "renew_deadline": LEADER_RENEW,
        "retry_period": LEADER_RETRY,
    }


def api_server_url(host: str) -> str:
    """The URL of the API server on ``host``."""
    return f"https://{host}:{API_PORT}"


def client_for(
    env: HostEnv,
    kubeconfig: str,
    user_agent: str,
    lags: Lags | None = None,
    observer: RequestObserver | None = None,
    server: str | None = None,
    tracer: RequestTracer | None = None,
) -> KubeClient:
    """A client from ``kubeconfig`` that dials through the host's network on its clock (each
    connection, and each watch, lagging as ``lags`` says for this host: :mod:`.lag`), telling
    ``observer`` each request's outcome. ``server`` (a URL) overrides the kubeconfig's, as
    the components' ``--master`` flag does: the credentials and CA stay the kubeconfig's.
    ``tracer`` is told each request and its answer (:mod:`.object_history`)."""
    config = load_kubeconfig(kubeconfig)
    options: dict[str, Any] = {
        "ssl_context": config.ssl_context(),
        "token": config.token,
        "tls_server_name": config.tls_server_name,
        "clock": env.clock,
        "user_agent": user_agent,
        "timeout": 10.0,
        "observer": observer,
        "tracer": tracer,
    }
    url = server if server is not None else config.server
    dial: Dial = env.network.open_stream
    if lags is None:
        return KubeClient(url, dial=dial, **options)
    dial = lagging_dial(dial, env.clock, env.rng, lambda: lags.of(env.name))
    return LaggingWatchClient(
        url,
        dial=dial,
        watch_ceiling=lambda resource: lags.watches_of(env.name, resource),
        rng=env.rng,
        **options,
    )


@attrs.define(eq=False)
class APIServerProcess:
    """kube-apiserver over the store members at ``store_endpoints``, serving on its host's
    own address (one of :data:`API_HOSTS`)."""

    env: HostEnv
    pki: SimPKI
    store_endpoints: Sequence[str]
    compaction: float = 300.0
    """Its ``--etcd-compaction-interval`` (seconds; 0 disables it)."""
    running: RunningAPIServer | None = None
    """This incarnation's server once it serves (its watch caches are read by the checks)."""

    async def run(self) -> None:
        plan = self.pki.plan
        config = APIServerConfig(
            etcd_servers=tuple(self.store_endpoints),
            bind_address=self.env.name,
            secure_port=API_PORT,
            tls_cert_file=plan.pki.apiserver.cert,
            tls_private_key_file=plan.pki.apiserver.key,
            client_ca_file=plan.pki.ca.cert,
            service_account_signing_key_file=plan.pki.sa_private_key,
            service_cluster_ip_range=SERVICE_CLUSTER_IP_RANGE,
            etcd_compaction_interval=self.compaction,
        )
        async with open_api_server(
            config,
            clock=self.env.clock,
            wall=wall_clock(self.env.clock),
            rng=self.env.rng,
            network=self.env.network,
            hostname=self.env.name,
        ) as running:
            self.running = running
            await trio.sleep_forever()


@attrs.define(eq=False)
class ControllerManagerProcess:
    """kube-controller-manager (leader-elected) with :data:`CONTROLLERS`."""

    env: HostEnv
    pki: SimPKI
    leadership: LeadershipLog | None = None
    """Told when an incarnation ends, for the checks (:mod:`.leadership`)."""
    lags: Lags | None = None
    ambiguous: AmbiguousCreates | None = None
    """Told of its pod creates with an unknown outcome, for NoOverCreation
    (:mod:`.ambiguous`)."""
    server: str | None = None
    """The API server's URL (``--master``), if not the kubeconfig's."""
    conformance: ConformanceMonitor | None = None
    """Judges its loops' requests against their views (:mod:`.conformance_monitor`)."""
    histories: ObjectHistories | None = None
    """Where its clients' requests are recorded (:mod:`.object_history`)."""

    async def run(self) -> None:
        plan = self.pki.plan
        observer: RequestObserver | None = self.ambiguous
        tracer = tracer_of(self.histories, self.env.name)
        if self.conformance is not None:
            observer = self.conformance.watch(self.env.name, observer)
            tracer = self.conformance.tracer(tracer)
        async with client_for(
            self.env,
            str(plan.controller_manager_kubeconfig),
            "kube-controller-manager",
            self.lags,
            observer,
            self.server,
            tracer=tracer,
        ) as client:
            while True:
                try:
                    await self._run_once(client)
                except LeaderElectionLost:
                    # Upstream exits ("leaderelection lost") and its supervisor starts it
                    # again; a fresh manager on the same machine is the same thing here.
                    if self.leadership is not None:
                        self.leadership.ended(self.env.name)
                    continue

    async def _run_once(self, client: KubeClient) -> None:
        plan = self.pki.plan
        await run_controller_manager(
            client,
            controllers=CONTROLLERS,
            root_ca=plan.pki.ca.cert.read_bytes(),
            service_account_private_key=plan.pki.sa_private_key.read_bytes(),
            use_service_account_credentials=True,
            server_ca=plan.pki.ca.cert.read_bytes(),
            node_lifecycle=NODE_LIFECYCLE,
            **elected(self.env),
        )


@attrs.define(eq=False)
class SchedulerProcess:
    """kube-scheduler (leader-elected)."""

    env: HostEnv
    pki: SimPKI
    leadership: LeadershipLog | None = None
    """Told when an incarnation ends, for the checks (:mod:`.leadership`)."""
    lags: Lags | None = None
    server: str | None = None
    """The API server's URL (``--master``), if not the kubeconfig's."""
    conformance: ConformanceMonitor | None = None
    """Judges its bindings against its views (:mod:`.conformance_monitor`)."""
    histories: ObjectHistories | None = None
    """Where its clients' requests are recorded (:mod:`.object_history`)."""

    async def run(self) -> None:
        plan = self.pki.plan
        observer: RequestObserver | None = None
        tracer = tracer_of(self.histories, self.env.name)
        if self.conformance is not None:
            observer = self.conformance.watch(self.env.name)
            tracer = self.conformance.tracer(tracer)
        options = SchedulerOptions(
            kubeconfig=plan.scheduler_kubeconfig,
            leader_elect=True,
            lease_duration=LEADER_LEASE,
            renew_deadline=LEADER_RENEW,
            retry_period=LEADER_RETRY,
            identity=self.env.name,
        )
        async with client_for(
            self.env,
            str(plan.scheduler_kubeconfig),
            "kube-scheduler",
            self.lags,
            observer,
            self.server,
            tracer=tracer,
        ) as client:
            # serve returns once leadership is lost (upstream exits and is restarted).
            while True:
                await serve(
                    options,
                    client,
                    self.env.clock,
                    rng=self.env.rng,
                    wall=wall_clock(self.env.clock),
                )
                if self.leadership is not None:
                    self.leadership.ended(self.env.name)


@attrs.define(eq=False)
class ProxyProcess:
    """kube-proxy on the node whose machine is ``env`` (NodePorts on the node's address).

    It runs inside the node's machine (:class:`KubeletProcess` starts it), so it crashes,
    restarts, pauses, loses its links and drifts with its node, as two programs of one real
    machine do; its watches lag as the node's do, and it draws from a generator of its own,
    seeded from the host's, so its draws do not shift the kubelet's.

    What it cannot do here is serve: the simulated stream network binds only a host's own
    name and nothing plays iptables' part of steering a ClusterIP's packets to the local
    proxier, so every ClusterIP listener fails to bind (the proxier logs it and retries at
    each sync, as for any unbindable address), and the simulated pods listen on nothing. The
    checks judge its routing table (:meth:`~raftkube.proxy.proxier.Proxier.routes`, which
    every sync computes whether a listener is open or not) instead of connections."""

    env: HostEnv
    pki: SimPKI
    lags: Lags | None = None
    server: str | None = None
    """The API server's URL (``--master``), if not the kubeconfig's: its node's."""
    rng: random.Random = attrs.field(init=False)
    proxier: Proxier | None = attrs.field(default=None, init=False)
    """This incarnation's proxier, once its client is open (read by the checks)."""
    histories: ObjectHistories | None = None
    """Where its clients' requests are recorded (:mod:`.object_history`)."""

    def __attrs_post_init__(self) -> None:
        self.rng = random.Random(self.env.rng.random())

    async def run(self) -> None:
        kubeconfig = str(self.pki.plan.proxy_kubeconfig)
        async with client_for(
            self.env,
            kubeconfig,
            "kube-proxy",
            self.lags,
            None,
            self.server,
            tracer=tracer_of(self.histories, self.env.name),
        ) as client:
            factory = SharedInformerFactory(
                client, clock=self.env.clock, rng=random.Random(self.rng.random())
            )
            self.proxier = Proxier(
                factory,
                network=self.env.network,
                clock=self.env.clock,
                bind_address=self.env.name,
                rng=self.rng,
            )
            await self.proxier.run()


@attrs.define(eq=False)
class KubeletProcess:
    """Simulated node ``index``'s machine: its kubelet over a fresh simulated runtime (a crash
    loses the runtime's containers, as a rebooted machine does) and its kube-proxy."""

    env: HostEnv
    pki: SimPKI
    index: int
    lags: Lags | None = None
    server: str | None = None
    """The API server's URL, if not the kubeconfig's: upstream's kubelet takes it from its
    kubeconfig alone; this stands for a kubeconfig naming one server of several."""
    runtime: SimulatedRuntime = attrs.field(init=False)
    """What the machine runs (read by the checks)."""
    proxy: ProxyProcess = attrs.field(init=False)
    """The node's kube-proxy (read by the checks)."""
    histories: ObjectHistories | None = None
    """Where its clients' requests are recorded (:mod:`.object_history`)."""
    conformance: ConformanceMonitor | None = None
    """Judges its final deletes and status writes (:mod:`.kubelet_monitor`)."""

    def __attrs_post_init__(self) -> None:
        node = self.pki.plan.sim_nodes[self.index]
        self.runtime = SimulatedRuntime(self.env.clock, node.pod_cidr, scripts=SCRIPTS)
        self.proxy = ProxyProcess(
            self.env, self.pki, self.lags, self.server, histories=self.histories
        )

    @property
    def node_name(self) -> str:
        return self.pki.plan.sim_nodes[self.index].name

    async def run(self) -> None:
        node = self.pki.plan.sim_nodes[self.index]
        runtime = self.runtime
        config = NodeConfig(
            node.name,
            node.pod_cidr,
            cpu="4",
            memory="8Gi",
            max_pods=110,
            address=self.env.name,
            port=0,
            runtime_name="sim",
        )
        tracer = tracer_of(self.histories, self.env.name)
        if self.conformance is not None:
            tracer = self.conformance.kubelets.tracer(self.env.name, node.name, runtime, tracer)
        async with (
            client_for(
                self.env,
                str(node.kubeconfig),
                "kubelet",
                self.lags,
                None,
                self.server,
                tracer=tracer,
            ) as client,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(self.proxy.run)
            kubelet = Kubelet(
                client,
                runtime,
                config,
                self.env.clock,
                prober=RuntimeProber(runtime),
                wall=wall_clock(self.env.clock),
                rng=self.env.rng,
            )
            await kubelet.run()
