"""The simulated cloud and the cloud-controller-manager as hosts of the simulated world.

``cloud`` serves the real cloud API (:func:`raftkube.cloud.server.serve_cloud`) over the
stream network; its state (:class:`~raftkube.cloud.provider.SimulatedCloud`: instances,
routes, load balancers) and its injected faults (:class:`~raftkube.cloud.server.Faults`) live
in :class:`CloudSide`, outside the host's incarnation, because they are the provider's
database, not the API front end's memory: a crashed front end comes back to the same cloud
(and to the same faults, which only a ``cloud_heal`` step or the final heal clears). Every
simulated node has its instance from the start, as a cloud provider's machines exist before
their kubelets register; its address is the one the kubelet reports, so the cloud node
controller's address sync agrees with the kubelet's and neither undoes the other.

``ccm-0`` and ``ccm-1`` run the real cloud-controller-manager
(:func:`raftkube.cloud.manager.run_cloud_controller_manager`, every controller, leader-elected
on the ``kube-system/cloud-controller-manager`` Lease as upstream's is) with
``--use-service-account-credentials``. Its own identity is the ``kube-system``
ServiceAccount ``cloud-controller-manager`` the default RBAC binds
``system:cloud-controller-manager`` to (upstream's cloud-provider example manifests run it
so): the user's admin creates that account and asks for its token once the control plane is
up (:func:`provision_token`), which is what the kubelet's projected token is to a CCM pod;
each incarnation waits for that token, then presents it alone (no client certificate) over
TLS. Its controllers then act as their own service accounts, as in a real cluster.

The kubelets do not register with the ``node.cloudprovider.kubernetes.io/uninitialized``
taint: ``raftkube up`` runs its kubelets without ``--cloud-provider=external`` (and has no
``--register-with-taints``), so the cloud node controller sees initialized nodes and only
syncs their addresses; provider IDs stay unset, as upstream leaves them on such nodes.
"""

from __future__ import annotations

import attrs
import trio

from raftkube.clock import sleep_for
from raftkube.cloud.manager import CloudControllerOptions, run_cloud_controller_manager
from raftkube.cloud.provider import SimulatedCloud
from raftkube.cloud.server import CloudService, Faults, serve_cloud
from raftkube.controllers.leaderelection import LeaderElectionLost
from raftkube.kubeclient import (
    KubeAPIError,
    KubeClient,
    KubeConnectionError,
    RequestObserver,
    RequestTracer,
)
from raftkube.kubeclient.kubeconfig import load_kubeconfig
from raftkube_fuzz.cluster.cloud_monitor import cloud_tracer
from raftkube_fuzz.cluster.components import elected
from raftkube_fuzz.cluster.conformance_monitor import CURRENT, ConformanceMonitor
from raftkube_fuzz.cluster.lag import LaggingWatchClient, Lags, lagging_dial
from raftkube_fuzz.cluster.object_history import ObjectHistories, tracer_of
from raftkube_fuzz.cluster.pki import SimPKI
from raftkube_fuzz.world.host import Host, HostEnv, Process

CLOUD_HOST = "cloud"
"""The cloud's host name on the stream network (a name, not an address: nothing advertises
it, and the CCM reaches it by this URL)."""
CLOUD_PORT = 10260
CLOUD_URL = f"http://{CLOUD_HOST}:{CLOUD_PORT}"
CCM_HOSTS = ("ccm-0", "ccm-1")
ZONE = "sim-zone-a"
REGION = "sim-region"

ACCOUNT = "cloud-controller-manager"
ACCOUNT_NAMESPACE = "kube-system"
TOKEN_SECONDS = 86_400
"""Far longer than any example, so the manager's own token never expires within one."""
TOKEN_POLL = 1.0
"""How often (on its own clock) a CCM incarnation looks for its token before it has one."""

CLIENT_TIMEOUT = 10.0
"""The CCM's request timeout, for the API server and the cloud alike (the cloud client's
default)."""

OPTIONS = CloudControllerOptions()
"""Every controller, upstream's periods: route reconciliation every 10 s, node monitoring
every 5 s, addresses every 5 min."""


@attrs.define(eq=False)
class CloudSide:
    """What outlives the cloud and CCM hosts' incarnations: the cloud's state, its faults, the
    CCM's token, and how long the cloud API has been failing (for the reconcile bound)."""

    cloud: SimulatedCloud = attrs.field(factory=SimulatedCloud)
    faults: Faults = attrs.field(factory=Faults)
    token: str | None = attrs.field(default=None, repr=False)
    failing_since: float | None = None
    longest_failure: float = 0.0
    """The longest span (virtual seconds) the API failed or was slow for: a controller's
    per-key back-off doubles through it, so after a heal its next retry may come that long
    later."""
    deleted: bool = False
    """Whether an instance was deleted in this run (its node's removal adds to the reconcile
    bound: :func:`~raftkube_fuzz.cluster.cloud_run.cloud_share`)."""

    def add_instance(self, name: str, address: str) -> None:
        self.cloud.put_instance(
            name,
            {
                "zone": ZONE,
                "region": REGION,
                "addresses": [{"type": "InternalIP", "address": address}],
            },
        )

    def runs(self, node: str) -> bool:
        """Whether ``node``'s instance exists and is running (its machine can boot)."""
        instance = self.cloud.instances.get(node)
        return instance is not None and instance.get("state") == "running"

    def set_state(self, node: str, state: str) -> None:
        """Shut ``node``'s instance down or start it (``shutdown`` or ``running``)."""
        self.cloud.instances[node]["state"] = state

    def delete_instance(self, node: str) -> None:
        """Delete ``node``'s instance for good (nothing brings it back in a run)."""
        self.cloud.delete_instance(node)
        self.deleted = True

    def power(self, host: Host, node: str) -> None:
        """Make ``host`` (node ``node``'s machine) boot its programs only while its instance
        runs: a machine whose instance is shut down or deleted boots :class:`PoweredOff`."""
        boot = host.boot

        def booted(env: HostEnv) -> Process:
            return boot(env) if self.runs(node) else PoweredOff()

        host.boot = booted

    def set_faults(self, now: float, delay: float = 0.0, fail_rate: float = 0.0) -> None:
        """Make every request wait ``delay`` s and fail (503) with probability ``fail_rate``
        (both 0: healed), keeping :attr:`longest_failure` up to date."""
        self.faults.delay = delay
        self.faults.fail_rate = fail_rate
        self.faults.fail_next = 0
        faulty = delay > 0 or fail_rate > 0
        if faulty and self.failing_since is None:
            self.failing_since = now
        elif not faulty and self.failing_since is not None:
            self.longest_failure = max(self.longest_failure, now - self.failing_since)
            self.failing_since = None


class PoweredOff:
    """A machine whose cloud instance is shut down or deleted: nothing runs on it."""

    async def run(self) -> None:
        await trio.sleep_forever()


@attrs.define(eq=False)
class CloudProcess:
    """The cloud's API front end over :class:`CloudSide`'s state."""

    env: HostEnv
    side: CloudSide

    async def run(self) -> None:
        service = CloudService(
            self.side.cloud, clock=self.env.clock, rng=self.env.rng, faults=self.side.faults
        )
        await serve_cloud(service, CLOUD_HOST, CLOUD_PORT, network=self.env.network)


def token_client(
    env: HostEnv,
    pki: SimPKI,
    token: str,
    lags: Lags | None,
    server: str | None = None,
    tracer: RequestTracer | None = None,
    observer: RequestObserver | None = None,
) -> KubeClient:
    """A client of the API server at ``server`` (default: the admin kubeconfig's) presenting
    ``token`` alone, trusting the cluster CA, on the host's network and clock, lagging as
    ``lags`` says for this host, telling ``tracer`` each request (:mod:`.object_history`) and
    ``observer`` each outcome."""
    config = attrs.evolve(
        load_kubeconfig(pki.plan.admin_kubeconfig), client_certificate=None, client_key=None
    )
    lag = lags or Lags()
    return LaggingWatchClient(
        server or config.server,
        ssl_context=config.ssl_context(),
        tls_server_name=config.tls_server_name,
        token=token,
        clock=env.clock,
        dial=lagging_dial(env.network.open_stream, env.clock, env.rng, lambda: lag.of(env.name)),
        user_agent="cloud-controller-manager",
        timeout=CLIENT_TIMEOUT,
        watch_ceiling=lambda resource: lag.watches_of(env.name, resource),
        rng=env.rng,
        tracer=tracer,
        observer=observer,
    )


@attrs.define(eq=False)
class CloudControllerManagerProcess:
    """cloud-controller-manager (leader-elected), as the ``cloud-controller-manager``
    ServiceAccount."""

    env: HostEnv
    pki: SimPKI
    side: CloudSide
    lags: Lags | None = None
    server: str | None = None
    """The API server it talks to (``--master``), pinned as the other components are."""
    histories: ObjectHistories | None = None
    """Where its clients' requests are recorded (:mod:`.object_history`)."""
    conformance: ConformanceMonitor | None = None
    """Judges its loops' requests, the cloud's included, against their views
    (:mod:`.conformance_monitor`, :mod:`.cloud_monitor`)."""

    async def run(self) -> None:
        while self.side.token is None:
            await sleep_for(self.env.clock, TOKEN_POLL)
        token = self.side.token
        tracer = tracer_of(self.histories, self.env.name)
        observer: RequestObserver | None = None
        traced: RequestTracer | None = None
        if self.conformance is not None:
            observer = self.conformance.watch(self.env.name)
            tracer = self.conformance.tracer(tracer)
            # The cloud's calls are not the API's: the object histories never see them.
            traced = cloud_tracer(self.conformance.tracer(), CURRENT.get)
        async with token_client(
            self.env, self.pki, token, self.lags, self.server, tracer, observer
        ) as client:
            while True:
                try:
                    await self._run_once(client, traced)
                except LeaderElectionLost:
                    continue  # upstream exits and is restarted: a fresh manager here

    async def _run_once(self, client: KubeClient, cloud_trace: RequestTracer | None) -> None:
        ca = self.pki.plan.pki.ca.cert.read_bytes()
        await run_cloud_controller_manager(
            client,
            cloud_provider_url=CLOUD_URL,
            options=OPTIONS,
            use_service_account_credentials=True,
            server_ca=ca,
            cloud_dial=self.env.network.open_stream,
            cloud_tracer=cloud_trace,
            **elected(self.env),
        )


async def provision_token(admin: KubeClient, side: CloudSide) -> str:
    """As the admin: create the manager's ServiceAccount (one that exists is fine) and ask
    for its token, which :class:`CloudControllerManagerProcess` waits for. Returns how it
    went, for the timeline; :attr:`CloudSide.token` is set only on success."""
    path = f"/api/v1/namespaces/{ACCOUNT_NAMESPACE}/serviceaccounts"
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": ACCOUNT, "namespace": ACCOUNT_NAMESPACE},
    }
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": TOKEN_SECONDS},
    }
    try:
        try:
            await admin.create(path, account)
        except KubeAPIError as exc:
            if exc.code != 409:
                raise
        answer = await admin.call("POST", f"{path}/{ACCOUNT}/token", body=request)
    except (KubeAPIError, KubeConnectionError) as exc:
        return f"failed: {exc}"
    token = str((answer.get("status") or {}).get("token") or "")
    if not token:
        return "failed: no token in the answer"
    side.token = token
    return "issued"
