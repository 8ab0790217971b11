"""Building and running one API server: the parts, wired, under one nursery.

:func:`open_api_server` is the whole lifetime: connect to the store, start one watch cache per
stored resource, write the objects every cluster starts with (namespaces, default RBAC
policy, the ``kubernetes`` Service) if they are missing, then serve HTTPS until cancelled. Its
inputs that reach outside the process (the clock, the wall clock, the randomness, how
connections are made) are parameters, so a test or the simulation can supply its own.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from raftkube.apiserver import errors
from raftkube.apiserver.admission import ServiceAccount, ServiceAllocation, default_chain
from raftkube.apiserver.admission.allocators import PortRange, ServiceIPRange
from raftkube.apiserver.auth.authn import Authenticator, load_token_file
from raftkube.apiserver.auth.authorize import Authorizer, Decision
from raftkube.apiserver.auth.node import NodeAuthorizer
from raftkube.apiserver.auth.pki import load_service_account_key
from raftkube.apiserver.auth.rbac import RBACAuthorizer
from raftkube.apiserver.auth.tokens import TokenIssuer, TokenVerifier
from raftkube.apiserver.auth.user import UserInfo
from raftkube.apiserver.bootstrap_objects import ensure_bootstrap_objects
from raftkube.apiserver.compactor import Compactor
from raftkube.apiserver.config import APIServerConfig
from raftkube.apiserver.handlers.context import Services
from raftkube.apiserver.http import HTTPServer, server_ssl_context
from raftkube.apiserver.identity import (
    IdentityLeaseConfig,
    IdentityLeaseController,
    IdentityLeaseGC,
)
from raftkube.apiserver.kinds import schema_for
from raftkube.apiserver.node_admission import NodeRestriction
from raftkube.apiserver.nonresource import NonResource
from raftkube.apiserver.openapi import OpenAPIDocuments
from raftkube.apiserver.request_info import RequestInfo
from raftkube.apiserver.resources import RESOURCES, ResourceInfo, lookup
from raftkube.apiserver.server import APIServer
from raftkube.apiserver.storage import ObjectStore
from raftkube.apiserver.watchcache import WatchCache
from raftkube.client import Client
from raftkube.client.keys import prefix_end
from raftkube.clock import Clock, TrioClock, move_on_after
from raftkube.kubeclient import KubeClient
from raftkube.net.streams import Network, TcpNetwork
from raftkube.tls import client_context
from raftkube_spec.kv.requests import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    PutRequest,
    TxnRequest,
)

logger = logging.getLogger("raftkube.apiserver")

Obj = dict[str, Any]

WATCH_CACHE_EVENTS = 25_000
"""Events each resource's watch cache keeps for watchers resuming from a resourceVersion.
Upstream sizes its ring by 75 s of history up to 100,000; a fixed ring this size lets a watcher
that was cut off a buffer behind during a burst of thousands of writes per second resume
instead of relisting (the events share their objects with the cache's snapshot)."""

RESERVATIONS = "/registry/reservations/"
"""Where Service IPs and node ports are claimed, one key each (admission's Reservations)."""


def _resource(group: str, version: str, resource: str) -> ResourceInfo:
    info = lookup(group, version, resource)
    assert info is not None, resource
    return info


_RBAC = "rbac.authorization.k8s.io"
PODS = _resource("", "v1", "pods")
SERVICE_ACCOUNTS = _resource("", "v1", "serviceaccounts")
LEASES = _resource("coordination.k8s.io", "v1", "leases")


@attrs.frozen
class CachedPolicy:
    """RBAC's :class:`~raftkube.apiserver.auth.rbac.RBACSource` read from the watch caches:
    policy changes take effect as soon as this server's caches see them."""

    caches: Mapping[str, WatchCache]

    def _all(self, resource: str, namespace: str = "") -> list[Obj]:
        return self.caches[f"{resource}.{_RBAC}"].list(namespace).items

    def _one(self, resource: str, namespace: str, name: str) -> Obj | None:
        return self.caches[f"{resource}.{_RBAC}"].get(namespace, name)

    def cluster_roles(self) -> Iterable[Obj]:
        return self._all("clusterroles")

    def cluster_role(self, name: str) -> Obj | None:
        return self._one("clusterroles", "", name)

    def cluster_role_bindings(self) -> Iterable[Obj]:
        return self._all("clusterrolebindings")

    def roles(self, namespace: str) -> Iterable[Obj]:
        return self._all("roles", namespace)

    def role(self, namespace: str, name: str) -> Obj | None:
        return self._one("roles", namespace, name)

    def role_bindings(self, namespace: str) -> Iterable[Obj]:
        return self._all("rolebindings", namespace)


@attrs.frozen
class StoreContext:
    """What admission asks of the server: lookups (the cache first, the store on a miss, so
    an object created an instant ago on another server is still found) and reservations (one
    store key each, created only if absent)."""

    store: ObjectStore
    caches: Mapping[str, WatchCache]

    async def get(self, resource: ResourceInfo, namespace: str, name: str) -> Obj | None:
        cache = self.caches.get(resource.qualified)
        if cache is not None and cache.ready:
            found = cache.get(namespace, name)
            if found is not None:
                return dict(found)
        try:
            return await self.store.get(resource, namespace, name)
        except errors.APIError as exc:
            if exc.code == 404:
                return None
            raise

    async def reserve(self, key: str, owner: str) -> bool:
        full = (RESERVATIONS + key).encode()
        absent = Compare(full, CompareTarget.CREATE, CompareResult.EQUAL, 0)
        resp = await self.store.client.txn(
            TxnRequest((absent,), (PutRequest(full, owner.encode()),))
        )
        return resp.succeeded

    async def release(self, key: str, owner: str) -> None:
        full = (RESERVATIONS + key).encode()
        mine = Compare(full, CompareTarget.VALUE, CompareResult.EQUAL, owner.encode())
        await self.store.client.txn(TxnRequest((mine,), (DeleteRangeRequest(full),)))

    async def held(self, prefix: str) -> Collection[str]:
        start = (RESERVATIONS + prefix).encode()
        resp = await self.store.client.get(start, prefix_end(start))
        cut = len(RESERVATIONS)
        return [kv.key.decode()[cut:] for kv in resp.kvs]


@attrs.frozen
class _AllowAll:
    def authorize(self, user: UserInfo, info: RequestInfo) -> Decision:
        return Decision(True, "AlwaysAllow")

    def rules_for(self, user: UserInfo, namespace: str) -> dict[str, Any]:
        return {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": False}  # fmt: skip


def _authorizer(config: APIServerConfig, caches: Mapping[str, WatchCache]) -> Any:
    modes = config.authorization_modes
    if "AlwaysAllow" in modes:
        return Authorizer(_AllowAll())
    pods = caches[PODS.qualified]

    def pods_on_node(node: str) -> Iterable[Obj]:
        return pods.list("", field_selector=f"spec.nodeName={node}", field_fn=_node_name).items

    node = NodeAuthorizer(pods_on_node) if "Node" in modes else None
    rbac: Any = RBACAuthorizer(CachedPolicy(caches)) if "RBAC" in modes else _DenyAll()
    return Authorizer(rbac, node)


def _node_name(obj: Mapping[str, Any]) -> dict[str, str]:
    return {"spec.nodeName": str((obj.get("spec") or {}).get("nodeName") or "")}


@attrs.frozen
class _DenyAll:
    def authorize(self, user: UserInfo, info: RequestInfo) -> Decision:
        return Decision(False, "")

    def rules_for(self, user: UserInfo, namespace: str) -> dict[str, Any]:
        return {"resourceRules": [], "nonResourceRules": [], "incomplete": False}


@attrs.define(eq=False)
class RunningAPIServer:
    """An API server being served: where, and its parts (for tests and the simulation)."""

    port: int
    api: APIServer
    caches: dict[str, WatchCache]
    compactor: Compactor
    identity: IdentityLeaseController
    lease_gc: IdentityLeaseGC


@asynccontextmanager
async def open_api_server(
    config: APIServerConfig,
    *,
    clock: Clock | None = None,
    wall: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    network: Network | None = None,
    store_client: Client | None = None,
    hostname: str | None = None,
    identity: IdentityLeaseConfig | None = None,
) -> AsyncIterator[RunningAPIServer]:
    """Run an API server for the body of the ``async with`` (see the module docstring).
    ``network`` is where it listens and how it reaches the store (Trio's TCP by default);
    ``hostname`` names its identity Lease (the machine's host name by default, as upstream's
    ``os.Hostname()``), ``identity`` times it."""
    network = network or TcpNetwork()
    clock = clock or TrioClock()
    rng = rng or random.Random(os.urandom(16))
    hostname = hostname or socket.gethostname()
    ssl_ctx = None
    if config.etcd_cafile is not None:
        ssl_ctx = client_context(config.etcd_cafile, config.etcd_certfile, config.etcd_keyfile)
    # at_most_once: a write is resent only when it certainly was not applied (as etcd's
    # clientv3 does for kube-apiserver's mutations); otherwise its fate is unknown and the
    # request fails with a 500. A resend after a lost answer would find its own effect and
    # answer AlreadyExists to a create it made, Conflict to an update it applied, NotFound
    # to a delete it did (the cluster suite's object linearizability check found the first).
    async with (
        Client(
            list(config.etcd_servers),
            ssl_context=ssl_ctx,
            network=network,
            clock=clock,
            at_most_once=True,
        )
        if store_client is None
        else _borrowed(store_client) as client,
        trio.open_nursery() as nursery,
    ):
        store = ObjectStore(client)
        caches = {r.qualified: WatchCache(client, r, clock=clock) for r in RESOURCES if r.storage}
        for cache in caches.values():
            nursery.start_soon(cache.run)
        compactor = Compactor(
            client, clock, config.etcd_compaction_interval, endpoints=tuple(config.etcd_servers)
        )
        nursery.start_soon(compactor.run)
        for cache in caches.values():
            await cache.wait_ready()
        signing_key = load_service_account_key(config.service_account_signing_key_file)
        verify_keys = [signing_key.public_key()] + [
            load_service_account_key(p).public_key() for p in config.service_account_key_files
        ]
        issuer = TokenIssuer(
            signing_key,
            config.service_account_issuer,
            wall,
            config.api_audiences,
            # Token ids from the server's randomness (OS-seeded unless the caller injects it),
            # so a simulated server issues the same tokens on every replay.
            new_jti=lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        )
        ctx = StoreContext(store, caches)

        async def lookup_account(namespace: str, name: str) -> Obj | None:
            return await ctx.get(SERVICE_ACCOUNTS, namespace, name)

        async def lookup_pod(namespace: str, name: str) -> Obj | None:
            return await ctx.get(PODS, namespace, name)

        verifier = TokenVerifier(
            verify_keys,
            config.service_account_issuer,
            config.api_audiences,
            wall,
            lookup_account,
            lookup_pod,
        )
        static = load_token_file(config.token_auth_file) if config.token_auth_file else None
        authenticator = Authenticator(static, verifier, config.anonymous_auth)
        ip_range = ServiceIPRange(config.service_cluster_ip_range)
        low, high = config.service_node_port_range
        allocation = ServiceAllocation(ip_range, PortRange(low, high - low + 1), rng)
        admission = default_chain(
            ctx,
            allocation=allocation,
            # Its volume names' random suffixes from the server's randomness, like the uids.
            service_account=ServiceAccount(rng=random.Random(rng.getrandbits(64))),
            node_restriction=NodeRestriction() if "Node" in config.authorization_modes else None,
        )
        services = Services(
            store=store,
            caches=caches,
            admission=admission,
            authorizer=_authorizer(config, caches),
            tokens=issuer,
            clock=clock,
            wall=wall,
            rng=rng,
            authenticate_token=authenticator.authenticate_token,
            kubelet_client=_kubelet_clients(config, network, clock),
            watch_timeout=config.min_request_timeout,
        )

        bootstrapped = trio.Event()

        async def store_answers() -> bool:
            with move_on_after(clock, 2.0):
                await store.current_revision()
                return True
            return False

        address = f"{config.bind_address}:{config.secure_port}"
        nonresource = NonResource(
            OpenAPIDocuments.build(schema_for),
            address,
            ready_checks=(
                ("etcd", store_answers),
                ("informer-sync", _synced(caches)),
                ("poststarthook/bootstrap-objects", _done(bootstrapped)),
            ),
        )
        api = APIServer(services, authenticator, nonresource)
        http = HTTPServer(
            api.handle,
            ssl_context=server_ssl_context(
                config.tls_cert_file, config.tls_private_key_file, config.client_ca_file
            ),
            clock=clock,
        )
        port = await nursery.start(
            http.serve_network, network, config.bind_address, config.secure_port
        )
        await ensure_bootstrap_objects(
            api, str(ip_range.network[1]), config.bind_address, port, clock
        )
        bootstrapped.set()
        # The identity post-start hooks: its own Lease, and the collector of expired ones.
        identity = identity or IdentityLeaseConfig()
        # Its own generator (one draw from the server's): its jitter draws then do not shift
        # the uids and IPs the server draws while it serves.
        own = random.Random(rng.getrandbits(64))
        lease = IdentityLeaseController(api, clock, wall, own, hostname, identity)
        nursery.start_soon(lease.run)
        lease_gc = IdentityLeaseGC(api, caches[LEASES.qualified], clock, wall, identity)
        nursery.start_soon(lease_gc.run)
        logger.info("serving on https://%s:%d", config.bind_address, port)
        yield RunningAPIServer(port, api, caches, compactor, lease, lease_gc)
        nursery.cancel_scope.cancel()


def _kubelet_clients(
    config: APIServerConfig, network: Network, clock: Clock
) -> Callable[[str, int], KubeClient] | None:
    """How the server reaches a kubelet: HTTPS with its kubelet client certificate, the
    kubelet's serving certificate checked against the cluster's CA."""
    if config.kubelet_client_certificate is None or config.kubelet_client_key is None:
        return None
    ca = config.kubelet_certificate_authority or config.client_ca_file
    ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
    ctx.load_cert_chain(config.kubelet_client_certificate, config.kubelet_client_key)

    def client(address: str, port: int) -> KubeClient:
        return KubeClient(
            f"https://{address}:{port}",
            ssl_context=ctx,
            dial=network.open_stream,
            clock=clock,
            max_connections=1,
        )

    return client


def _synced(caches: Mapping[str, WatchCache]) -> Callable[[], Any]:
    async def check() -> bool:
        return all(c.ready for c in caches.values())

    return check


def _done(event: trio.Event) -> Callable[[], Any]:
    async def check() -> bool:
        return event.is_set()

    return check


@asynccontextmanager
async def _borrowed(client: Client) -> AsyncIterator[Client]:
    yield client


async def run_api_server(config: APIServerConfig) -> None:
    """Serve until cancelled (the ``raftkube apiserver`` process)."""
    async with open_api_server(config):
        await trio.sleep_forever()
