"""The cluster PKI: files made once, certificates Python's ssl accepts for the names clients
use, identities the authenticator reads, and a kubeconfig kubectl and the Python client load."""

from __future__ import annotations

import shutil
import ssl
import stat
import subprocess
from pathlib import Path

import pytest
import trio
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from kubernetes import client
from kubernetes import config as kube_config

from raftkube.apiserver.auth.authn import user_from_certificate
from raftkube.apiserver.auth.pki import (
    ClusterPKI,
    ensure_pki,
    load_service_account_key,
    write_kubeconfig,
)
from raftkube.apiserver.auth.tokens import TokenIssuer, TokenVerifier
from raftkube.apiserver.auth.user import MASTERS, NODES, UserInfo
from raftkube.tls import CertPair, client_context, generate_ca, server_context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ClusterPKI:
    return ensure_pki(
        tmp_path_factory.mktemp("pki"), service_ip="127.0.100.1", hosts=["api.local"], nodes=["n1"]
    )


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> bytes | None:
    """A TLS handshake in memory; returns the client certificate the server verified."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client_side = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    server_side = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, side in (("client", client_side), ("server", server_side)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            # TLS 1.3 delivers the client's certificate after the client is done
            return server_side.getpeercert(binary_form=True)
    raise AssertionError("handshake did not finish")


def test_files_are_made_once_and_keys_are_private(pki: ClusterPKI) -> None:
    names = {p.name for p in pki.root.iterdir()}
    assert {"ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "admin.crt", "admin.key",
            "kube-scheduler.crt", "kube-controller-manager.crt", "kube-proxy.crt",
            "node-n1.crt", "node-n1.key", "sa.key", "sa.pub"} <= names  # fmt: skip
    for key in pki.root.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    before = {p.name: p.read_bytes() for p in pki.root.iterdir()}
    again = ensure_pki(pki.root, service_ip="127.0.100.1", nodes=["n1"])
    assert {p.name: p.read_bytes() for p in again.root.iterdir()} == before


def test_serving_certificate_names_and_client_identities(pki: ClusterPKI) -> None:
    server = server_context(
        pki.apiserver.cert, pki.apiserver.key, pki.ca.cert, client_cert_auth=True
    )
    expected = {
        pki.admin: UserInfo("kubernetes-admin", groups=(MASTERS,)),
        pki.node("n1"): UserInfo("system:node:n1", groups=(NODES,)),
        pki.scheduler: UserInfo("system:kube-scheduler"),
        pki.controller_manager: UserInfo("system:kube-controller-manager"),
        pki.proxy: UserInfo("system:kube-proxy"),
    }
    for pair, user in expected.items():
        client = client_context(pki.ca.cert, pair.cert, pair.key)
        der = handshake(server, client, "127.0.0.1")
        assert der is not None
        assert user_from_certificate(der) == user
    admin = client_context(pki.ca.cert, pki.admin.cert, pki.admin.key)
    for host in ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local", "127.0.100.1", "api.local"):  # fmt: skip
        handshake(server, admin, host)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server, admin, "elsewhere.example")


def test_a_foreign_client_certificate_is_refused(pki: ClusterPKI, tmp_path: Path) -> None:
    other_ca = CertPair(tmp_path / "other.crt", tmp_path / "other.key")
    generate_ca(other_ca)
    stranger = ensure_pki(tmp_path / "stranger", service_ip="10.0.0.1", ca=other_ca)
    assert stranger.ca == other_ca
    assert not (tmp_path / "stranger" / "ca.crt").exists()
    server = server_context(
        pki.apiserver.cert, pki.apiserver.key, pki.ca.cert, client_cert_auth=True
    )
    client = client_context(pki.ca.cert, stranger.admin.cert, stranger.admin.key)
    with pytest.raises(ssl.SSLError):
        handshake(server, client, "127.0.0.1")


def test_malformed_service_ip_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ensure_pki(tmp_path, service_ip="10.0.0.300")


@pytest.mark.trio
async def test_service_account_key_pair_signs_and_verifies(pki: ClusterPKI) -> None:
    with trio.fail_after(10):
        key = load_service_account_key(pki.sa_private_key)
        public = serialization.load_pem_public_key(pki.sa_public_key.read_bytes())
        assert isinstance(public, ec.EllipticCurvePublicKey)

        async def account(ns: str, name: str) -> dict[str, dict[str, str]]:
            return {"metadata": {"uid": "u"}}

        token = TokenIssuer(key, "https://k", lambda: 1e9).issue("ns", "sa", "u").token
        verifier = TokenVerifier([public], "https://k", ["https://k"], lambda: 1e9, account)
        assert (await verifier.verify(token)).name == "system:serviceaccount:ns:sa"


def test_kubeconfig(pki: ClusterPKI, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "admin.kubeconfig"
    a = pki.admin
    write_kubeconfig(path, "https://127.0.0.1:6443", pki.ca.cert, a.cert, a.key, "kubernetes-admin")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = yaml.safe_load(path.read_text())
    assert config["current-context"] == "raftkube"
    assert config["contexts"] == [
        {"name": "raftkube", "context": {"cluster": "raftkube", "user": "kubernetes-admin"}}
    ]
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    user = config["users"][0]["user"]
    assert set(user) == {"client-certificate-data", "client-key-data"}
    assert [p.name for p in path.parent.iterdir()] == ["admin.kubeconfig"]  # no temp file left

    configuration = client.Configuration()
    kube_config.load_kube_config(config_file=str(path), client_configuration=configuration)
    assert configuration.host == "https://127.0.0.1:6443"
    assert Path(configuration.ssl_ca_cert).read_bytes() == pki.ca.cert.read_bytes()
    assert Path(configuration.cert_file).read_bytes() == a.cert.read_bytes()


def test_kubectl_reads_the_kubeconfig(pki: ClusterPKI, tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH")
    path = tmp_path / "kubeconfig"
    a = pki.admin
    write_kubeconfig(path, "https://127.0.0.1:6443", pki.ca.cert, a.cert, a.key, "kubernetes-admin")
    out = subprocess.run(
        [kubectl, "--kubeconfig", str(path), "config", "view", "--minify", "-o",
         "jsonpath={.clusters[0].cluster.server} {.users[0].name}"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert out == "https://127.0.0.1:6443 kubernetes-admin"
