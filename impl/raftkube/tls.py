"""TLS for raftkube: SSL contexts from PEM files, and a small CA for local clusters.

Both kinds of traffic use the same files. A member's certificate carries the ``serverAuth`` and
``clientAuth`` usages, because on peer connections every member is a server (it accepts) and a
client (it dials), and peer connections always require a certificate on both ends: only members
signed by the cluster's CA may join its Raft traffic. The client listener requires a client
certificate only with ``client_cert_auth`` (``--client-cert-auth``), so a cluster can choose
between "encrypted, anyone with the CA may connect" and "only holders of a signed certificate".

:func:`ensure_cluster_certs` writes a CA, one certificate per member (SAN ``127.0.0.1`` and
``localhost``) and a client certificate into a directory once and reuses them afterwards, so
that restarting a local cluster keeps the files an operator already pointed ``rkctl`` at.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from raftkube.net.transport import TlsConfig

DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost")
"""Names every generated member certificate is valid for: local clusters listen on loopback."""

_VALIDITY = datetime.timedelta(days=3650)
"""Local-cluster certificates should outlive the cluster; rotation is out of scope here."""


class TlsSetupError(Exception):
    """A certificate, key or CA file is missing or unusable; the message names the file."""


# --- contexts ------------------------------------------------------------------------------


def _load_chain(ctx: ssl.SSLContext, cert: Path | str, key: Path | str) -> None:
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(f"cannot load certificate {cert} with key {key}: {exc}") from None


def _load_ca(ctx: ssl.SSLContext, cacert: Path | str) -> None:
    try:
        ctx.load_verify_locations(cafile=str(cacert))
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(f"cannot load CA certificate {cacert}: {exc}") from None


def server_context(
    cert: Path | str,
    key: Path | str,
    cacert: Path | str | None = None,
    *,
    client_cert_auth: bool = False,
) -> ssl.SSLContext:
    """A context for a listener presenting ``cert``.

    With ``client_cert_auth`` the peer must present a certificate signed by ``cacert`` (which is
    then required); without it, the handshake asks for nothing, so plain TLS clients work.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, cert, key)
    if client_cert_auth:
        if cacert is None:
            raise TlsSetupError("client certificate verification needs a CA certificate")
        _load_ca(ctx, cacert)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def client_context(
    cacert: Path | str | None = None,
    cert: Path | str | None = None,
    key: Path | str | None = None,
) -> ssl.SSLContext:
    """A context for dialing a TLS listener: verifies the server against ``cacert`` (or the
    system's roots when ``None``) and presents ``cert`` when given, for ``--client-cert-auth``
    servers and for peer connections."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cacert is not None:
        _load_ca(ctx, cacert)
    if cert is not None:
        _load_chain(ctx, cert, key if key is not None else cert)
    elif key is not None:
        raise TlsSetupError("a client key was given without its certificate")
    return ctx


def peer_tls(cert: Path | str, key: Path | str, cacert: Path | str) -> TlsConfig:
    """Mutual TLS for Raft traffic: each member proves it holds a certificate of the cluster's
    CA both when accepting and when dialing, so an outsider can neither join nor eavesdrop."""
    return TlsConfig(
        server_context=server_context(cert, key, cacert, client_cert_auth=True),
        client_context=client_context(cacert, cert, key),
    )


# --- certificate generation ----------------------------------------------------------------


@attrs.frozen
class CertPair:
    """A PEM certificate and its unencrypted PEM private key."""

    cert: Path
    key: Path


@attrs.frozen
class ClusterCerts:
    """Everything ``raftkube up --tls`` needs: the CA, one pair per member and a client pair."""

    ca: CertPair
    members: dict[int, CertPair]
    client: CertPair


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256 keys are generated in milliseconds, unlike RSA, which keeps `up --tls` fast.
    return ec.generate_private_key(ec.SECP256R1())


def _write_private(path: Path, data: bytes) -> None:
    """Write a key readable only by its owner: it grants the cluster's trust to whoever reads
    it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _save(pair: CertPair, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    _write_private(
        pair.key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "raftkube"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _san(hosts: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def generate_ca(pair: CertPair, common_name: str = "raftkube CA") -> None:
    """Create a self-signed CA certificate and key at ``pair``."""
    key = _new_key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _save(pair, cert, key)


def _load_ca_pair(ca: CertPair) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsSetupError(f"{ca.key}: expected an EC private key")
    return cert, key


def issue_cert(
    ca: CertPair,
    pair: CertPair,
    common_name: str,
    *,
    hosts: Sequence[str] = (),
    server: bool = True,
    client: bool = True,
) -> None:
    """Sign a leaf certificate for ``common_name`` with the CA at ``ca`` and write it to
    ``pair``. ``hosts`` become subject alternative names (what TLS clients check)."""
    ca_cert, ca_key = _load_ca_pair(ca)
    key = _new_key()
    now = datetime.datetime.now(datetime.UTC)
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if hosts:
        builder = builder.add_extension(_san(hosts), critical=False)
    _save(pair, builder.sign(ca_key, hashes.SHA256()), key)


def ensure_cluster_certs(
    directory: Path | str, member_ids: Iterable[int], hosts: Sequence[str] = DEFAULT_HOSTS
) -> ClusterCerts:
    """Return the cluster's certificates under ``directory``, creating whichever are missing.

    Existing files are never regenerated: clients already configured with the CA keep working
    across restarts, and a member added later is signed by the same CA.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)

    def pair(name: str) -> CertPair:
        return CertPair(root / f"{name}.crt", root / f"{name}.key")

    def exists(p: CertPair) -> bool:
        return p.cert.is_file() and p.key.is_file()

    ca = pair("ca")
    if not exists(ca):
        generate_ca(ca)
    members = {}
    for mid in member_ids:
        members[mid] = pair(f"member-{mid}")
        if not exists(members[mid]):
            issue_cert(ca, members[mid], f"member-{mid}", hosts=hosts)
    client = pair("client")
    if not exists(client):
        issue_cert(ca, client, "client", server=False, client=True)
    return ClusterCerts(ca, members, client)
