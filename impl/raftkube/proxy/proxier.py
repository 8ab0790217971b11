"""The userspace proxier: a listener per Service port, each accepted connection relayed to one
ready endpoint (upstream's ``pkg/proxy/userspace``, over :class:`~raftkube.net.streams.Network`).

Theory of operation. Two informers (``services``, ``endpoints``) keep the caches; any change to
either wakes the sync loop, which is level-triggered: :meth:`Proxier.sync` computes from the
caches where to listen (:func:`~raftkube.proxy.servicemap.listeners_for`) and which endpoints
serve each port (:func:`~raftkube.proxy.servicemap.endpoints_map`), hands the endpoints to the
round-robin balancer, closes the listeners no longer wanted and opens the missing ones. A
listener whose address cannot be bound (in use, say) is logged and tried again at the next sync;
besides changes, a sync also runs every ``sync_period`` seconds on the proxier's clock.

Each accepted connection looks up its Service port at accept time and dials the next endpoint of
the ring; as upstream's ``tryConnect``, a failed or slow dial moves on to the next endpoint, with
the dial bounded by 0.25, 0.5, 1 and 2 seconds in turn. A port without a ready endpoint, or whose
four tries all failed, gets its connection closed at once (upstream closes it the same way after
accepting it; nothing here rejects before the accept).

Connections belong to the proxier, not to their listener: closing a listener (its Service or
port is gone) stops new connections only. Endpoint changes affect new connections only: as
upstream's userspace proxier, an established connection to an endpoint that was removed is left
to end by itself (the pod's process closes it when it goes; a pod that is merely not ready any
more finishes what it was serving).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import attrs
import trio

from raftkube.clock import Clock, move_on_after, sleep_for
from raftkube.controllers.informer import ResourceEventHandlerFuncs, SharedInformerFactory
from raftkube.controllers.resources import resource
from raftkube.kubeclient import KubeClient
from raftkube.net.streams import Listener, Network
from raftkube.proxy.roundrobin import LoadBalancerRR
from raftkube.proxy.servicemap import HostPort, ServicePortName, endpoints_map, listeners_for
from raftkube.proxy.splice import splice

logger = logging.getLogger("raftkube.proxy")

SERVICES = resource("", "v1", "services")
ENDPOINTS = resource("", "v1", "endpoints")

ENDPOINT_DIAL_TIMEOUTS = (0.25, 0.5, 1.0, 2.0)
"""Upstream's ``EndpointDialTimeouts``: one dial attempt per entry, each on the next endpoint."""

ACCEPT_ERROR_PAUSE = 0.1
"""How long an accept loop waits after an error such as running out of file descriptors."""


@attrs.define(eq=False)
class _Serving:
    """One open listening address: which Service port it serves (updated in place by a sync)
    and the cancel scope that closes it."""

    spn: ServicePortName
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)


class Proxier:
    """See the module docstring. Run :meth:`run` in a nursery the caller owns; every listener
    and connection task lives inside it."""

    def __init__(
        self,
        factory: SharedInformerFactory,
        *,
        network: Network,
        clock: Clock,
        bind_address: str = "127.0.0.1",
        sync_period: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.factory = factory
        self.network = network
        self.clock = clock
        self.bind_address = bind_address
        self.sync_period = sync_period
        self.balancer = LoadBalancerRR(rng or random.Random())
        self.services = factory.lister(SERVICES)
        self.endpoints = factory.lister(ENDPOINTS)
        self._serving: dict[HostPort, _Serving] = {}
        self._bind_failures: dict[HostPort, str] = {}
        """The last error of each address that could not be bound: a port that stays
        unbindable (below 1024 for a user without the privilege, say) is retried at every sync
        but reported again only when its error changes."""
        self._changed = trio.Event()

    def listening(self) -> dict[HostPort, ServicePortName]:
        """The addresses listened on now, and the Service port each serves."""
        return {address: serving.spn for address, serving in self._serving.items()}

    def routes(self) -> dict[ServicePortName, list[HostPort]]:
        """Where a new connection to each Service port could go now: its endpoints as the
        balancer holds them (ring order from the next one), every port with at least one.
        A copy, so reading it changes nothing; the fuzzer's checks judge the proxier by it
        without opening connections."""
        return {spn: self.balancer.endpoints(spn) for spn in self.balancer.service_ports()}

    def _kick(self, *_: object) -> None:
        self._changed.set()

    async def run(self) -> None:
        """Follow Services and Endpoints and proxy their ports until cancelled."""
        handler = ResourceEventHandlerFuncs(self._kick, self._kick, self._kick)
        async with trio.open_nursery() as nursery:
            for resource_info in (SERVICES, ENDPOINTS):
                self.factory.informer_for(resource_info).add_event_handler(handler)
            self.factory.start(nursery)
            await self.factory.wait_for_cache_sync()
            while True:
                self._changed = trio.Event()
                await self.sync(nursery)
                with move_on_after(self.clock, self.sync_period):
                    await self._changed.wait()

    async def sync(self, nursery: trio.Nursery) -> None:
        """Bring listeners and the balancer in line with the caches; connection tasks start
        in ``nursery``."""
        wanted = listeners_for(self.services.list(), self.bind_address)
        self.balancer.on_endpoints_update(endpoints_map(self.endpoints.list()))
        for address in [a for a in self._bind_failures if a not in wanted]:
            del self._bind_failures[address]
        for address in [a for a in self._serving if a not in wanted]:
            serving = self._serving.pop(address)
            logger.info("stopped listening on %s:%d for %s", *address, serving.spn)
            serving.scope.cancel()
        for address, spn in wanted.items():
            current = self._serving.get(address)
            if current is not None:
                current.spn = spn
                continue
            try:
                listeners = await self.network.open_listeners(*address)
            except OSError as exc:
                repeated = self._bind_failures.get(address) == str(exc)
                self._bind_failures[address] = str(exc)
                level = logging.DEBUG if repeated else logging.ERROR
                logger.log(level, "cannot listen on %s:%d for %s: %s", *address, spn, exc)
                continue
            self._bind_failures.pop(address, None)
            serving = _Serving(spn)
            self._serving[address] = serving
            nursery.start_soon(self._serve, listeners, serving, nursery)
            logger.info("listening on %s:%d for %s", *address, spn)

    async def _serve(
        self, listeners: list[Listener], serving: _Serving, connections: trio.Nursery
    ) -> None:
        with serving.scope:
            try:
                async with trio.open_nursery() as nursery:
                    for listener in listeners:
                        nursery.start_soon(self._accept_loop, listener, serving, connections)
            finally:
                for listener in listeners:
                    await trio.aclose_forcefully(listener)

    async def _accept_loop(
        self, listener: Listener, serving: _Serving, connections: trio.Nursery
    ) -> None:
        while True:
            try:
                stream = await listener.accept()
            except trio.ClosedResourceError:
                return
            except OSError as exc:
                logger.error("accept for %s failed: %s", serving.spn, exc)
                await sleep_for(self.clock, ACCEPT_ERROR_PAUSE)
                continue
            connections.start_soon(self._proxy, stream, serving.spn)

    async def _proxy(self, inbound: trio.abc.Stream, spn: ServicePortName) -> None:
        async with inbound:
            outbound = await self.dial(spn)
            if outbound is None:
                return
            async with outbound:
                await splice(inbound, outbound)

    async def dial(self, spn: ServicePortName) -> trio.abc.Stream | None:
        """A stream to one endpoint of ``spn`` (upstream's ``tryConnect``), or None when it
        has no ready endpoint or none answered."""
        for timeout in ENDPOINT_DIAL_TIMEOUTS:
            endpoint = self.balancer.next_endpoint(spn)
            if endpoint is None:
                logger.info("no ready endpoint for %s: closing the connection", spn)
                return None
            with move_on_after(self.clock, timeout):
                try:
                    return await self.network.open_stream(*endpoint)
                except OSError as exc:
                    logger.warning("dial %s:%d for %s failed: %s", *endpoint, spn, exc)
                    continue
            logger.warning("dial %s:%d for %s timed out after %ss", *endpoint, spn, timeout)
        logger.error("failed to connect to an endpoint of %s", spn)
        return None


async def run_proxy(
    kubeconfig: Path,
    *,
    network: Network,
    clock: Clock,
    bind_address: str = "127.0.0.1",
    sync_period: float = 30.0,
    rng: random.Random | None = None,
) -> None:
    """One kube-proxy process's work: a client from ``kubeconfig`` (dialling through
    ``network``), its informers and a :class:`Proxier`, until cancelled."""
    async with KubeClient.from_kubeconfig(
        kubeconfig, clock=clock, dial=network.open_stream, user_agent="kube-proxy"
    ) as client:
        rng = rng or random.Random()
        factory = SharedInformerFactory(client, clock=clock, rng=random.Random(rng.random()))
        proxier = Proxier(
            factory,
            network=network,
            clock=clock,
            bind_address=bind_address,
            sync_period=sync_period,
            rng=rng,
        )
        await proxier.run()
