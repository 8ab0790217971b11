"""The authenticator chain: certificates, static tokens, service-account tokens, anonymous,
and that no token ever leaks into an error or a log line."""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import Any

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from raftkube.apiserver.auth.authn import (
    ANONYMOUS_USER,
    Authenticator,
    StaticTokens,
    TokenFileError,
    load_token_file,
    user_from_certificate,
)
from raftkube.apiserver.auth.pki import ClusterPKI, ensure_pki, issue_client_cert
from raftkube.apiserver.auth.tokens import TokenIssuer, TokenVerifier
from raftkube.apiserver.auth.user import AUTHENTICATED, MASTERS, NODES, UserInfo
from raftkube.apiserver.errors import APIError
from raftkube.apiserver.request import Request
from raftkube.tls import CertPair

ISSUER = "https://kubernetes.default.svc"
NOW = 1_700_000_000.0
SECRET = "s3cr3t-t0ken-value"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ClusterPKI:
    return ensure_pki(tmp_path_factory.mktemp("pki"), service_ip="10.0.0.1", nodes=["n1"])


def der(pair: CertPair) -> bytes:
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


def without_common_name(ca: CertPair) -> bytes:
    """A client certificate of the cluster CA naming only a group."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "g1")]))
        .issuer_name(ca_cert.subject)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def request(
    *, token: str | None = None, header: str | None = None, cert: bytes | None = None
) -> Request:
    headers = {}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if header is not None:
        headers["authorization"] = header
    return Request("GET", "/api/v1/pods", {}, headers, peer_certificate=cert)


async def rejected(auth: Authenticator, req: Request) -> APIError:
    with pytest.raises(APIError) as info:
        await auth.authenticate(req)
    assert info.value.code == 401
    assert info.value.message == "Unauthorized"
    assert info.value.status()["reason"] == "Unauthorized"
    return info.value


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.csv"
    path.write_text(
        f'{SECRET},alice,uid-a,"devs,ops"\n'
        "other-token,bob,uid-b\n"
        ",nobody,uid-x\n"  # an empty token is skipped
        "\n"
    )
    return path


@pytest.mark.trio
async def test_client_certificates(pki: ClusterPKI) -> None:
    with trio.fail_after(10):
        auth = Authenticator()
        admin = await auth.authenticate(request(cert=der(pki.admin)))
        assert admin == UserInfo("kubernetes-admin", groups=(MASTERS, AUTHENTICATED))
        node = await auth.authenticate(request(cert=der(pki.node("n1"))))
        assert node == UserInfo("system:node:n1", groups=(NODES, AUTHENTICATED))
        scheduler = await auth.authenticate(request(cert=der(pki.scheduler)))
        assert scheduler == UserInfo("system:kube-scheduler", groups=(AUTHENTICATED,))
        # a serving-only certificate identifies nobody, even with anonymous enabled
        await rejected(Authenticator(anonymous=True), request(cert=der(pki.apiserver)))


def test_certificate_groups_and_common_name(pki: ClusterPKI, tmp_path: Path) -> None:
    pair = CertPair(tmp_path / "multi.crt", tmp_path / "multi.key")
    issue_client_cert(pki.ca, pair, "carol", ("g1", "g2", "g3"))
    assert user_from_certificate(der(pair)) == UserInfo("carol", groups=("g1", "g2", "g3"))
    assert user_from_certificate(without_common_name(pki.ca)) is None
    assert user_from_certificate(b"not a certificate") is None


@pytest.mark.trio
async def test_certificate_without_name_falls_through_to_the_token(
    pki: ClusterPKI, token_file: Path
) -> None:
    with trio.fail_after(10):
        auth = Authenticator(static_tokens=load_token_file(token_file))
        user = await auth.authenticate(request(token=SECRET, cert=without_common_name(pki.ca)))
        assert user.name == "alice"
        # a valid certificate wins over any token
        user = await auth.authenticate(request(token="wrong", cert=der(pki.admin)))
        assert user.name == "kubernetes-admin"


@pytest.mark.trio
async def test_static_tokens(token_file: Path) -> None:
    with trio.fail_after(10):
        auth = Authenticator(static_tokens=load_token_file(token_file))
        alice = await auth.authenticate(request(token=SECRET))
        assert alice == UserInfo("alice", uid="uid-a", groups=("devs", "ops", AUTHENTICATED))
        bob = await auth.authenticate(request(header="bearer other-token"))
        assert bob == UserInfo("bob", uid="uid-b", groups=(AUTHENTICATED,))
        assert await auth.authenticate_token("other-token") == bob
        for bad in ("wrong", SECRET + "x", SECRET[:-1], ""):
            await rejected(auth, request(token=bad))
        # a second space makes the token empty: no credential at all
        await rejected(auth, request(header=f"Bearer  {SECRET}"))
        await rejected(auth, request(header=f"Basic {SECRET}"))


def test_token_file_errors_never_show_tokens(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("tok-abc,user\n")
    with pytest.raises(TokenFileError) as info:
        load_token_file(path)
    assert "must have at least 3 columns (token, user name, user uid), found 2" in str(info.value)
    assert "tok-abc" not in str(info.value)


def test_duplicate_token_keeps_the_later_line() -> None:
    tokens = StaticTokens.from_rows([("t", UserInfo("first")), ("t", UserInfo("second"))])
    assert tokens.lookup("t") == UserInfo("second")
    assert len(tokens.entries) == 1
    assert tokens.lookup("u") is None


@pytest.mark.trio
async def test_anonymous(token_file: Path) -> None:
    with trio.fail_after(10):
        await rejected(Authenticator(), request())  # off by default
        auth = Authenticator(static_tokens=load_token_file(token_file), anonymous=True)
        assert await auth.authenticate(request()) == ANONYMOUS_USER
        assert ANONYMOUS_USER.groups == ("system:unauthenticated",)
        # a bad credential is never taken for no credential
        await rejected(auth, request(token="wrong"))


def service_accounts(accounts: dict[tuple[str, str], Any]) -> tuple[TokenIssuer, TokenVerifier]:
    key = ec.generate_private_key(ec.SECP256R1())

    async def lookup(ns: str, name: str) -> Any:
        await trio.lowlevel.checkpoint()
        return accounts.get((ns, name))

    issuer = TokenIssuer(key, ISSUER, lambda: NOW)
    verifier = TokenVerifier([key.public_key()], ISSUER, [ISSUER], lambda: NOW, lookup)
    return issuer, verifier


@pytest.mark.trio
async def test_service_account_tokens_through_the_chain(
    token_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(10):
        accounts = {("kube-system", "robot"): {"metadata": {"uid": "sa-uid"}}}
        issuer, verifier = service_accounts(accounts)
        auth = Authenticator(static_tokens=load_token_file(token_file), service_accounts=verifier)
        token = issuer.issue("kube-system", "robot", "sa-uid").token
        user = await auth.authenticate(request(token=token))
        assert user.name == "system:serviceaccount:kube-system:robot"
        assert user.uid == "sa-uid"
        assert user.groups == (
            "system:serviceaccounts",
            "system:serviceaccounts:kube-system",
            AUTHENTICATED,
        )
        # the static tokens still work beside them
        assert (await auth.authenticate(request(token=SECRET))).name == "alice"
        # deleted account: refused, and the token appears in no log line or message
        del accounts[("kube-system", "robot")]
        with caplog.at_level(logging.DEBUG):
            error = await rejected(auth, request(token=token))
        assert token not in error.message
        assert caplog.records, "the refusal is logged"
        for record in caplog.records:
            assert token not in record.getMessage()
            assert SECRET not in record.getMessage()
        # a token of another issuer's signing key is refused
        forger, _ = service_accounts(accounts)
        accounts[("kube-system", "robot")] = {"metadata": {"uid": "sa-uid"}}
        await rejected(auth, request(token=forger.issue("kube-system", "robot", "sa-uid").token))
