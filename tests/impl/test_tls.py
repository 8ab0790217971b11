"""TLS: generated certificates, the client listener with and without client-certificate
verification, and a ``raftkube up --tls --client-cert-auth`` cluster of real processes (which
also proves mutual TLS between peers, since the members must elect a leader over it)."""

from __future__ import annotations

import ipaddress
import signal
import ssl
import stat
from pathlib import Path

import pytest
import trio
from cryptography import x509

from raftkube.client import Client, ClientError
from raftkube.server.member import MemberConfig
from raftkube.server.wiring import open_member
from raftkube.tls import client_context, ensure_cluster_certs, peer_tls, server_context
from tests.helpers.member_processes import up_args, wait_leader
from tests.helpers.processes import Processes, free_port_block, wait_exit, wait_up


def test_certs_are_generated_once_with_loopback_names(tmp_path: Path) -> None:
    first = ensure_cluster_certs(tmp_path / "tls", range(3))
    contents = {p: p.read_bytes() for p in (tmp_path / "tls").iterdir()}
    assert len(contents) == 2 * (1 + 3 + 1)
    again = ensure_cluster_certs(tmp_path / "tls", range(3))
    assert again == first
    assert {p: p.read_bytes() for p in (tmp_path / "tls").iterdir()} == contents
    assert stat.S_IMODE(first.members[0].key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(first.members[1].cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    # Every pair loads into the contexts the members and clients build.
    peer_tls(first.members[0].cert, first.members[0].key, first.ca.cert)
    client_context(first.ca.cert, first.client.cert, first.client.key)


async def _refused(endpoint: str, ctx: ssl.SSLContext | None) -> bool:
    try:
        with trio.fail_after(10):
            async with Client(
                [endpoint], attempts=2, retry_delay=0.05, request_timeout=2, ssl_context=ctx
            ) as c:
                await c.put(b"x", b"y")
    except (ClientError, ExceptionGroup):
        return True
    return False


@pytest.mark.trio
async def test_client_listener_tls_without_client_cert_auth(tmp_path: Path) -> None:
    certs = ensure_cluster_certs(tmp_path / "tls", [0])
    ctx = server_context(certs.members[0].cert, certs.members[0].key)
    cfg = MemberConfig(member_id=0, servers=1, cluster_id="tls")
    with trio.fail_after(20):
        async with open_member(cfg, tmp_path / "m0", client_ssl_context=ctx) as rm:
            ep = rm.client_endpoint
            await wait_leader({0: ep}, ssl_context=client_context(certs.ca.cert))
            # Only the CA is needed to talk to it; a plaintext client is refused.
            async with Client([ep], ssl_context=client_context(certs.ca.cert)) as c:
                await c.put(b"k", b"v")
                assert (await c.get(b"k")).kvs[0].value == b"v"
            assert await _refused(ep, None)
            # A client that does not trust the CA refuses the server.
            assert await _refused(ep, client_context(None))


@pytest.mark.trio
async def test_up_tls_requires_client_certificates(tmp_path: Path, procs: Processes) -> None:
    base = free_port_block(6)
    data = tmp_path / "cluster"
    endpoints = [f"127.0.0.1:{base + 2 * i}" for i in range(3)]
    with trio.fail_after(50):
        up = procs.start(up_args(data, base, "--tls", "--client-cert-auth"), "up-tls")
        text = await wait_up(up)
        tls = data / "tls"
        assert f"--cacert {tls / 'ca.crt'}" in text
        assert f"--cert {tls / 'client.crt'} --key {tls / 'client.key'}" in text

        good = client_context(tls / "ca.crt", tls / "client.crt", tls / "client.key")
        async with Client(endpoints, ssl_context=good) as c:
            await c.put(b"secret", b"s3cr3t")
            assert (await c.get(b"secret")).kvs[0].value == b"s3cr3t"

        assert await _refused(endpoints[0], client_context(tls / "ca.crt"))  # no client cert
        assert await _refused(endpoints[1], None)  # plaintext

        ca_before = (tls / "ca.crt").read_bytes()
        up.send_signal(signal.SIGINT)
        assert await wait_exit(up) == 0

        # A restart reuses the certificates, so configured clients keep working.
        up = procs.start(up_args(data, base, "--tls", "--client-cert-auth"), "up-tls")
        await wait_up(up)
        assert (tls / "ca.crt").read_bytes() == ca_before
        async with Client(endpoints, ssl_context=good) as c:
            assert (await c.get(b"secret")).kvs[0].value == b"s3cr3t"
        up.send_signal(signal.SIGTERM)
        assert await wait_exit(up) == 0
