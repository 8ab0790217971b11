"""API server identity (upstream's ``APIServerIdentity``, on by default since 1.26).

Each API server keeps a Lease ``kube-system/apiserver-<hash>`` saying it is alive, and deletes
the identity Leases of servers that stopped renewing theirs, as kube-apiserver's two post-start
hooks do (``pkg/controlplane/apiserver/server.go``):

- ``start-kube-apiserver-identity-lease-controller``: the generic lease controller of
  ``k8s.io/component-helpers/apimachinery/lease``. The Lease is named by the server's id,
  ``apiserver-`` + the lower-case unpadded base32 of the first 16 bytes of the SHA-256 of the
  host name and ``kube-apiserver``, each prefixed by its 2-byte length (so a restarted server on
  the same host takes its Lease back); ``holderIdentity`` is that id + ``_`` + a fresh UUID,
  ``leaseDurationSeconds`` 3600, labels ``apiserver.kubernetes.io/identity=kube-apiserver`` and
  ``kubernetes.io/hostname=<host>``. It is renewed every 10 s (plus up to 4% jitter) from the
  copy the last write returned, falling back to a read (or a create) if that write fails.
- ``start-kube-apiserver-identity-lease-garbage-collector`` (``apiserverleasegc``): every hour
  (the first time at start) it looks at the identity Leases in ``kube-system`` and deletes each
  whose ``renewTime + leaseDurationSeconds`` has passed, after reading it again from the store.

Both talk to the server through its own request path as ``system:apiserver`` (upstream uses its
loopback client), so admission, validation and the watch caches see these Leases as any other.
Times are the server's wall clock (a Lease's ``renewTime`` is a wall time, and expiry is judged
on it, as upstream's ``time.Now()``); waits are on its :class:`~raftkube.clock.Clock`.

Departures: the garbage collector reads the server's own watch cache of Leases rather than a
private informer of its own (the same data, without a second list and watch), and it deletes
with the resourceVersion it read as a precondition, so a Lease renewed between that read and the
delete is kept (upstream would delete it and its owner would create it again).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from raftkube.apiserver.bootstrap_objects import APISERVER_USER
from raftkube.apiserver.compactor import STORE_ERRORS
from raftkube.apiserver.errors import APIError
from raftkube.apiserver.request import Request, Response
from raftkube.apiserver.watchcache import WatchCache
from raftkube.clock import Clock, sleep_for

logger = logging.getLogger("raftkube.apiserver")

IDENTITY_LEASE_COMPONENT_LABEL_KEY: Final = "apiserver.kubernetes.io/identity"
KUBE_APISERVER: Final = "kube-apiserver"
LABEL_HOSTNAME: Final = "kubernetes.io/hostname"
NAMESPACE: Final = "kube-system"
LEASES: Final = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"

MAX_UPDATE_RETRIES: Final = 5
"""The lease controller's ``maxUpdateRetries``: immediate retries of one renewal."""
MAX_BACKOFF: Final = 7.0
"""Its ``maxBackoff``: the longest wait between two tries to read or create the Lease."""
JITTER: Final = 0.04
"""``wait.JitterUntil``'s factor for the renewals: each waits up to 4% longer."""

Obj = dict[str, Any]


@attrs.frozen
class IdentityLeaseConfig:
    """Upstream's ``IdentityLeaseDurationSeconds``, ``IdentityLeaseRenewIntervalPeriod`` and
    ``IdentityLeaseGCPeriod`` (package variables upstream, so its tests shorten them; here a
    test or the simulation passes its own)."""

    duration_seconds: int = 3600
    renew_interval: float = 10.0
    gc_period: float = 3600.0


def apiserver_id(hostname: str) -> str:
    """The server's id and Lease name: ``apiserver-`` + base32 of the hashed host name."""
    data = b""
    for part in (hostname.encode(), KUBE_APISERVER.encode()):
        data += len(part).to_bytes(2, "big") + part
    digest = hashlib.sha256(data).digest()[:16]
    return "apiserver-" + base64.b32encode(digest).decode().rstrip("=").lower()


def micro_time(seconds: float) -> str:
    """A ``metav1.MicroTime``: RFC 3339 in UTC with microseconds."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_expired(lease: Obj, now: float) -> bool:
    """Upstream's ``isLeaseExpired``: no renewTime or duration, or their sum has passed."""
    spec = lease.get("spec") or {}
    renew, duration = spec.get("renewTime"), spec.get("leaseDurationSeconds")
    if not renew or duration is None:
        return True
    try:
        renewed = datetime.fromisoformat(str(renew).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return True
    return renewed + float(duration) < now


class LoopbackError(Exception):
    """The server refused one of its own requests; ``status`` is the HTTP status."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"{status}: {body.decode(errors='replace')[:300]}")
        self.status = status


async def _call(api: Any, method: str, path: str, body: Obj | None = None) -> Obj:
    """One request through the server's own request path, as ``system:apiserver``."""
    headers = {"accept": "application/json"}
    if body is not None:
        headers["content-type"] = "application/json"
    req = Request(method, path, {}, headers, json.dumps(body).encode() if body else b"")
    try:
        answer = await api.handle_as(APISERVER_USER, req)
    except STORE_ERRORS as exc:  # a store read that timed out escapes the handlers
        raise LoopbackError(500, str(exc).encode()) from exc
    assert isinstance(answer, Response), "only a watch streams"
    if answer.status >= 300:
        raise LoopbackError(answer.status, answer.body)
    result = json.loads(answer.body)
    assert isinstance(result, dict)
    return result


@attrs.define
class IdentityLeaseController:
    """Creates and renews this server's identity Lease (see the module docstring)."""

    api: Any
    clock: Clock
    wall: Callable[[], float]
    rng: random.Random
    hostname: str
    config: IdentityLeaseConfig = IdentityLeaseConfig()
    lease_name: str = attrs.field(init=False)
    holder_identity: str = attrs.field(init=False)
    latest: Obj | None = attrs.field(init=False, default=None)
    """The Lease as the last successful write returned it."""
    renewals: int = attrs.field(init=False, default=0)
    """How many times it wrote the Lease (tests, metrics)."""

    def __attrs_post_init__(self) -> None:
        self.lease_name = apiserver_id(self.hostname)
        fresh = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        self.holder_identity = f"{self.lease_name}_{fresh}"

    async def run(self) -> None:
        """Renew for ever: once now, then every renew interval (jittered)."""
        interval = self.config.renew_interval
        while True:
            await self.sync()
            await sleep_for(self.clock, interval * (1.0 + JITTER * self.rng.random()))

    async def sync(self) -> None:
        if self.latest is not None:
            # Optimistically renew from the copy the last write returned (no read).
            try:
                await self._retry_update(self.latest)
                return
            except LoopbackError as exc:
                logger.info(
                    "failed to update lease using latest lease, fallback to ensure lease, "
                    "err: %s", exc,
                )  # fmt: skip
        lease, created = await self._backoff_ensure()
        self.latest = lease
        if not created:
            try:
                await self._retry_update(lease)
            except LoopbackError as exc:
                logger.error("%s, will retry after %s s", exc, self.config.renew_interval)

    async def _backoff_ensure(self) -> tuple[Obj, bool]:
        """Read the Lease, or create it if absent, retrying with growing waits."""
        sleep = 0.1
        while True:
            try:
                return await self._ensure()
            except LoopbackError as exc:
                sleep = min(2 * sleep, MAX_BACKOFF)
                logger.error(
                    "failed to ensure lease exists, will retry in %s s, error: %s", sleep, exc
                )
                await sleep_for(self.clock, sleep)

    async def _ensure(self) -> tuple[Obj, bool]:
        try:
            return await _call(self.api, "GET", f"{LEASES}/{self.lease_name}"), False
        except LoopbackError as exc:
            if exc.status != 404:
                raise
        created = await _call(self.api, "POST", LEASES, self._new_lease(None))
        self.renewals += 1
        return created, True

    async def _retry_update(self, base: Obj) -> None:
        """Renew from ``base``, up to :data:`MAX_UPDATE_RETRIES` times; a conflict means
        someone else wrote the Lease, so it is read again first."""
        for _ in range(MAX_UPDATE_RETRIES):
            lease = self._new_lease(base)
            try:
                self.latest = await _call(self.api, "PUT", f"{LEASES}/{self.lease_name}", lease)
                self.renewals += 1
                return
            except LoopbackError as exc:
                logger.error("failed to update lease, error: %s", exc)
                if exc.status == 409:
                    base, _ = await self._backoff_ensure()
        raise LoopbackError(500, f"failed {MAX_UPDATE_RETRIES} attempts to update lease".encode())

    def _new_lease(self, base: Obj | None) -> Obj:
        """A new Lease, or a copy of ``base``, renewed now and labelled as upstream's
        ``labelAPIServerHeartbeatFunc`` labels it."""
        if base is None:
            lease: Obj = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.lease_name, "namespace": NAMESPACE},
                "spec": {
                    "holderIdentity": self.holder_identity,
                    "leaseDurationSeconds": self.config.duration_seconds,
                },
            }
        else:
            lease = json.loads(json.dumps(base))
        meta = lease.setdefault("metadata", {})
        labels = meta.get("labels") or {}
        labels[IDENTITY_LEASE_COMPONENT_LABEL_KEY] = KUBE_APISERVER
        labels[LABEL_HOSTNAME] = self.hostname
        meta["labels"] = labels
        lease.setdefault("spec", {})["renewTime"] = micro_time(self.wall())
        return lease


@attrs.define
class IdentityLeaseGC:
    """Deletes expired identity Leases (upstream's ``apiserverleasegc.Controller``)."""

    api: Any
    leases: WatchCache
    clock: Clock
    wall: Callable[[], float]
    config: IdentityLeaseConfig = IdentityLeaseConfig()
    deleted: int = 0
    """How many Leases it deleted (tests, metrics)."""

    async def run(self) -> None:
        logger.info("Starting apiserver lease garbage collector")
        try:
            await self.leases.wait_ready()
            while True:
                await self.gc()
                await sleep_for(self.clock, self.config.gc_period)
        finally:
            logger.info("Shutting down apiserver lease garbage collector")

    async def gc(self) -> None:
        selector = f"{IDENTITY_LEASE_COMPONENT_LABEL_KEY}={KUBE_APISERVER}"
        try:
            listed = self.leases.list(NAMESPACE, label_selector=selector).items
        except APIError as exc:  # the cache is listing again (429): next period
            logger.error("Error while listing apiserver leases: %s", exc)
            return
        for cached in listed:
            if not is_expired(cached, self.wall()):
                continue
            name = cached["metadata"]["name"]
            # Read it again from the store before deleting: the cache may be behind.
            try:
                lease = await _call(self.api, "GET", f"{LEASES}/{name}")
            except LoopbackError as exc:
                if exc.status != 404:  # 404: another server's collector deleted it
                    logger.error("Error getting lease: %s", exc)
                continue
            if not is_expired(lease, self.wall()):
                continue
            version = lease["metadata"].get("resourceVersion")
            options = {"kind": "DeleteOptions", "apiVersion": "v1",
                       "preconditions": {"resourceVersion": version}}  # fmt: skip
            try:
                await _call(self.api, "DELETE", f"{LEASES}/{name}", options)
                self.deleted += 1
            except LoopbackError as exc:
                if exc.status not in (404, 409):  # gone already, or renewed meanwhile
                    logger.error("Error deleting lease: %s", exc)
