"""A real API server on a real one-member store, in the test's own Trio run.

The ``api`` fixture (registered for every test directory by ``tests/conftest.py``) yields an
:class:`APIHarness`: the server's address, its PKI, an admin
:class:`~raftkube.kubeclient.KubeClient` (``system:masters``), a way to make clients for other
users, and the admin kubeconfig for kubectl or the official Python client.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest

from raftkube.apiserver.assemble import RunningAPIServer, open_api_server
from raftkube.apiserver.auth.pki import ClusterPKI, ensure_pki, issue_client_cert, write_kubeconfig
from raftkube.apiserver.config import APIServerConfig
from raftkube.apiserver.identity import IdentityLeaseConfig
from raftkube.clock import Clock
from raftkube.kubeclient import KubeClient
from raftkube.server.member import MemberConfig
from raftkube.server.wiring import open_member
from raftkube.tls import CertPair

TOKEN = "test-token-of-alice"
"""A static token for user ``alice`` (no groups beyond system:authenticated)."""


@attrs.define(eq=False)
class APIHarness:
    url: str
    pki: ClusterPKI
    running: RunningAPIServer
    admin: KubeClient
    kubeconfig: Path
    tmp: Path

    def client_for(self, user: str, groups: tuple[str, ...] = ()) -> KubeClient:
        """A client authenticating with a fresh certificate for ``user`` in ``groups``."""
        pair = CertPair(self.tmp / f"{user}.crt", self.tmp / f"{user}.key")
        issue_client_cert(self.pki.ca, pair, user, groups)
        path = self.tmp / f"{user}.kubeconfig"
        write_kubeconfig(path, self.url, self.pki.ca.cert, pair.cert, pair.key, user)
        return KubeClient.from_kubeconfig(path)

    def token_client(self, token: str) -> KubeClient:
        """A client presenting ``token`` as a bearer token, and no certificate."""
        ctx = ssl.create_default_context(cafile=str(self.pki.ca.cert))
        return KubeClient(self.url, ssl_context=ctx, token=token)


@asynccontextmanager
async def serving(
    tmp_path: Path,
    store_endpoint: str,
    *,
    clock: Clock | None = None,
    wall: Callable[[], float] = time.time,
    hostname: str | None = None,
    identity: IdentityLeaseConfig | None = None,
    etcd_compaction_interval: float = 300.0,
) -> AsyncIterator[APIHarness]:
    """An API server on the store at ``store_endpoint``, with what a test may choose about it
    (its clock and wall clock, the host name its identity Lease is named by and that Lease's
    timings, its compaction interval)."""
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(f'{TOKEN},alice,alice-uid,""\n')
    pki = ensure_pki(tmp_path / "pki", service_ip="127.96.0.1")
    config = APIServerConfig(
        etcd_servers=(store_endpoint,),
        tls_cert_file=pki.apiserver.cert,
        tls_private_key_file=pki.apiserver.key,
        service_account_signing_key_file=pki.sa_private_key,
        client_ca_file=pki.ca.cert,
        token_auth_file=tokens,
        secure_port=0,
        etcd_compaction_interval=etcd_compaction_interval,
    )
    async with open_api_server(
        config, clock=clock, wall=wall, hostname=hostname, identity=identity
    ) as running:
        url = f"https://127.0.0.1:{running.port}"
        kubeconfig = tmp_path / "admin.kubeconfig"
        write_kubeconfig(
            kubeconfig, url, pki.ca.cert, pki.admin.cert, pki.admin.key, "kubernetes-admin"
        )
        async with KubeClient.from_kubeconfig(kubeconfig) as admin:
            yield APIHarness(url, pki, running, admin, kubeconfig, tmp_path)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[APIHarness]:
    async with (
        open_member(MemberConfig(member_id=0, servers=1, cluster_id="t"), tmp_path / "m0") as rm,
        serving(tmp_path, rm.client_endpoint) as harness,
    ):
        yield harness


QUIET = IdentityLeaseConfig(renew_interval=1e9, gc_period=1e9)
"""An identity Lease written once, at start, and never renewed nor collected."""


@pytest.fixture
async def quiet_api(tmp_path: Path) -> AsyncIterator[APIHarness]:
    """As :func:`api`, with a server that writes nothing of its own once started (its identity
    Lease renews every 10 s and its compactor writes ``compact_rev_key`` otherwise): for a test
    that predicts each resourceVersion from its own writes."""
    async with (
        open_member(MemberConfig(member_id=0, servers=1, cluster_id="t"), tmp_path / "m0") as rm,
        serving(
            tmp_path, rm.client_endpoint, identity=QUIET, etcd_compaction_interval=0
        ) as harness,
    ):
        yield harness
