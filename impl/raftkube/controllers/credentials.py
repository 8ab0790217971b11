"""Which credentials each controller acts with: client-go's ``ControllerClientBuilder``.

Without ``--use-service-account-credentials`` every controller shares the manager's own client
(:class:`SimpleControllerClientBuilder`). With it (what kubeadm configures), each controller
acts as its own service account ``kube-system/{name}`` (``namespace-controller``,
``service-account-controller``...), bound by the default policy to the ClusterRole
``system:controller:{name}`` that grants exactly what that controller needs:
:class:`ServiceAccountClientBuilder` creates the account if missing, asks the TokenRequest API
(``serviceaccounts/{name}/token``) for a one-hour token, and renews it once 80 % of its life
has passed (upstream's ``DynamicControllerClientBuilder``: 3600 s, 20 % leeway). The renewals
need a timer: run :meth:`ServiceAccountClientBuilder.run` in a nursery the caller owns.

The controllers' clients verify the server with the CA they are given and present no
certificate, so the server sees the token's identity, not the manager's.

Upstream builds each client with ``ClientOrDie``: an API server that cannot be reached while
the manager starts its controllers ends the process, and its supervisor starts it again.
``raftkube up`` supervises nothing, so :meth:`ServiceAccountClientBuilder.client_for` retries
instead (1 s, doubling to 30 s) while the failure is one a restart would wait out: a broken
connection, throttling (429) or a server error (5xx). Anything else (403: the policy does not
allow the manager to create accounts) is raised, as upstream dies on it.
"""

from __future__ import annotations

import datetime
import logging
import math
import ssl
import time
from collections.abc import Callable
from typing import Protocol

import attrs
import trio

from raftkube.clock import Clock, sleep_for
from raftkube.controllers.resources import SERVICE_ACCOUNTS
from raftkube.kubeclient import Dial, KubeAPIError, KubeClient, KubeConnectionError

logger = logging.getLogger("raftkube.controllers.credentials")

DEFAULT_EXPIRATION_SECONDS = 3600
LEEWAY_PERCENT = 20
FIRST_RETRY = 1.0
LAST_RETRY = 30.0


def _worth_retrying(exc: Exception) -> bool:
    """A failure a restarted manager would wait out: no answer, throttling, a server error."""
    if isinstance(exc, KubeConnectionError):
        return True
    return isinstance(exc, KubeAPIError) and (exc.code == 429 or exc.code >= 500)


class ControllerClientBuilder(Protocol):
    async def client_for(self, name: str) -> KubeClient:
        """The client controller ``name`` acts with."""
        ...


@attrs.frozen
class SimpleControllerClientBuilder:
    """Every controller acts as the manager."""

    client: KubeClient

    async def client_for(self, name: str) -> KubeClient:
        return self.client


def token_lifetime(expiration_timestamp: str, wall_now: float, requested: int) -> float:
    """Seconds the issued token lives: from its ``expirationTimestamp`` when readable, else
    what was asked for."""
    try:
        expires = datetime.datetime.fromisoformat(expiration_timestamp).timestamp()
    except ValueError:
        return float(requested)
    return max(0.0, expires - wall_now)


@attrs.define(eq=False)
class ServiceAccountClientBuilder:
    """See the module docstring. ``client`` is the manager's own (it may create service
    accounts in ``namespace`` and request their tokens); ``ssl_context`` verifies the server
    and must carry no client certificate."""

    client: KubeClient
    ssl_context: ssl.SSLContext
    clock: Clock
    wall: Callable[[], float] = time.time
    namespace: str = "kube-system"
    expiration_seconds: int = DEFAULT_EXPIRATION_SECONDS
    dial: Dial = trio.open_tcp_stream
    """How the controllers' clients connect: where the manager's own do (the simulated
    network in the fuzzer)."""
    _clients: dict[str, KubeClient] = attrs.field(factory=dict, init=False)
    _renew_at: dict[str, float] = attrs.field(factory=dict, init=False)
    _changed: trio.Event = attrs.field(factory=trio.Event, init=False)

    async def client_for(self, name: str) -> KubeClient:
        existing = self._clients.get(name)
        if existing is not None:
            return existing
        delay = FIRST_RETRY
        while True:
            try:
                await self._ensure_account(name)
                token = await self._request_token(name)
                break
            except (KubeAPIError, KubeConnectionError) as exc:
                if not _worth_retrying(exc):
                    raise
                logger.warning(
                    "cannot get credentials for %s (retry in %.0f s): %s", name, delay, exc
                )
                await sleep_for(self.clock, delay)
                delay = min(delay * 2, LAST_RETRY)
        client = KubeClient(
            self.client.server,
            ssl_context=self.ssl_context,
            token=token,
            clock=self.clock,
            dial=self.dial,
            tls_server_name=self.client.tls_server_name,
            user_agent=f"kube-controller-manager/{name}",
            # Whoever watches the manager's own requests watches its controllers' too.
            observer=self.client.observer,
            tracer=self.client.tracer,
        )
        self._clients[name] = client
        return client

    async def _ensure_account(self, name: str) -> None:
        try:
            await self.client.get(SERVICE_ACCOUNTS, name, namespace=self.namespace)
            return
        except KubeAPIError as exc:
            if exc.code != 404:
                raise
        account = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": self.namespace},
        }
        try:
            await self.client.create(SERVICE_ACCOUNTS, account, namespace=self.namespace)
        except KubeAPIError as exc:
            if exc.code != 409:
                raise

    async def _request_token(self, name: str) -> str:
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": self.expiration_seconds},
        }
        answer = await self.client.create(
            SERVICE_ACCOUNTS, request, namespace=self.namespace, name=name, subresource="token"
        )
        status = answer.get("status") or {}
        lifetime = token_lifetime(
            str(status.get("expirationTimestamp") or ""), self.wall(), self.expiration_seconds
        )
        self._renew_at[name] = self.clock.now() + lifetime * (100 - LEEWAY_PERCENT) / 100
        self._changed.set()
        self._changed = trio.Event()
        return str(status["token"])

    async def run(self) -> None:
        """Renew each controller's token when due, until cancelled. A failed renewal is
        retried every 10 s while the old token still lives."""
        while True:
            due = min(self._renew_at.values(), default=math.inf)
            if due <= self.clock.now():
                name = min(self._renew_at, key=self._renew_at.__getitem__)
                try:
                    self._clients[name].token = await self._request_token(name)
                    logger.info("renewed the token of %s", name)
                except (KubeAPIError, KubeConnectionError) as exc:  # keep the old one a while
                    logger.warning("cannot renew the token of %s: %s", name, exc)
                    self._renew_at[name] = self.clock.now() + 10.0
                continue
            changed = self._changed
            scope = self.clock.cancel_scope_at(due) if math.isfinite(due) else trio.CancelScope()
            with scope:
                await changed.wait()

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
