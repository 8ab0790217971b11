"""The API server's certificates, its clients' identities, and the kubeconfig kubectl reads.

:func:`ensure_pki` creates, once, under a directory (files that exist are never regenerated, so
kubeconfigs already handed out keep working across restarts):

- ``ca.crt``/``ca.key``: the cluster CA (:func:`raftkube.tls.generate_ca`), unless the caller
  passes an existing CA to share (the store members' own, for instance);
- ``apiserver.crt``: the serving certificate, valid for ``127.0.0.1``, ``localhost``,
  ``kubernetes``, ``kubernetes.default``, ``kubernetes.default.svc``,
  ``kubernetes.default.svc.cluster.local``, the first service IP and any extra hosts;
- client certificates whose Common Name is the user and whose Organizations are its groups,
  which is how the x509 authenticator reads them: ``admin`` (``kubernetes-admin`` in
  ``system:masters``, as kubeadm makes it), ``kube-scheduler``, ``kube-controller-manager``,
  ``kube-proxy``, and ``node-{name}`` (``system:node:{name}`` in ``system:nodes``) per node;
- ``sa.key``/``sa.pub``: the service-account token signing key pair (P-256, so tokens are
  ES256; upstream accepts RSA or ECDSA keys alike).

Keys are EC P-256 like :mod:`raftkube.tls`'s and written with mode 0600.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from raftkube.tls import CertPair, generate_ca, issue_cert

from .user import MASTERS, NODES

ADMIN_USER = "kubernetes-admin"
KUBE_SCHEDULER = "system:kube-scheduler"
KUBE_CONTROLLER_MANAGER = "system:kube-controller-manager"
KUBE_PROXY = "system:kube-proxy"
API_SERVER_NAMES = (
    "127.0.0.1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
_VALIDITY = datetime.timedelta(days=3650)
"""As :mod:`raftkube.tls`: local-cluster certificates outlive the cluster; no rotation."""


def node_user(node: str) -> str:
    return f"system:node:{node}"


@attrs.frozen
class ClusterPKI:
    """Where everything :func:`ensure_pki` made lives."""

    root: Path
    ca: CertPair
    apiserver: CertPair
    admin: CertPair
    scheduler: CertPair
    controller_manager: CertPair
    proxy: CertPair
    nodes: dict[str, CertPair]
    sa_private_key: Path
    sa_public_key: Path

    def node(self, name: str) -> CertPair:
        """The client certificate of kubelet ``name``, made if missing."""
        pair = self.nodes.get(name) or _pair(self.root, f"node-{name}")
        if not _exists(pair):
            issue_client_cert(self.ca, pair, node_user(name), (NODES,))
        self.nodes[name] = pair
        return pair


def _pair(root: Path, name: str) -> CertPair:
    return CertPair(root / f"{name}.crt", root / f"{name}.key")


def _exists(pair: CertPair) -> bool:
    return pair.cert.is_file() and pair.key.is_file()


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def issue_client_cert(ca: CertPair, pair: CertPair, user: str, groups: Sequence[str] = ()) -> None:
    """Sign a client certificate for ``user`` in ``groups`` (CN and one O per group: what the
    x509 authenticator reads) with the CA at ``ca`` and write it to ``pair``."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{ca.key}: expected an EC private key")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups),
            x509.NameAttribute(NameOID.COMMON_NAME, user),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(pair.key, _pem_key(key))
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def generate_service_account_key(private: Path, public: Path) -> None:
    """The key pair service-account tokens are signed and verified with."""
    key = ec.generate_private_key(ec.SECP256R1())
    _write_private(private, _pem_key(key))
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def load_service_account_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: expected an EC private key")
    return key


def ensure_pki(
    directory: Path | str,
    *,
    service_ip: str,
    hosts: Iterable[str] = (),
    nodes: Iterable[str] = (),
    ca: CertPair | None = None,
) -> ClusterPKI:
    """Everything under ``directory``, creating only what is missing (see the module
    docstring). ``service_ip`` is the first address of the Service range (the ``kubernetes``
    Service's ClusterIP); ``hosts`` are further names or addresses the API server answers on."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    ipaddress.ip_address(service_ip)  # a malformed address fails here, not in a client
    if ca is None:
        ca = _pair(root, "ca")
        if not _exists(ca):
            generate_ca(ca, common_name="raftkube kubernetes CA")
    apiserver = _pair(root, "apiserver")
    if not _exists(apiserver):
        names = list(dict.fromkeys([*API_SERVER_NAMES, service_ip, *hosts]))
        issue_cert(ca, apiserver, "kube-apiserver", hosts=names, server=True, client=False)
    clients = {
        "admin": (ADMIN_USER, (MASTERS,)),
        "kube-scheduler": (KUBE_SCHEDULER, ()),
        "kube-controller-manager": (KUBE_CONTROLLER_MANAGER, ()),
        "kube-proxy": (KUBE_PROXY, ()),
    }
    pairs = {}
    for name, (user, groups) in clients.items():
        pairs[name] = _pair(root, name)
        if not _exists(pairs[name]):
            issue_client_cert(ca, pairs[name], user, groups)
    sa_private, sa_public = root / "sa.key", root / "sa.pub"
    if not (sa_private.is_file() and sa_public.is_file()):
        generate_service_account_key(sa_private, sa_public)
    pki = ClusterPKI(
        root=root,
        ca=ca,
        apiserver=apiserver,
        admin=pairs["admin"],
        scheduler=pairs["kube-scheduler"],
        controller_manager=pairs["kube-controller-manager"],
        proxy=pairs["kube-proxy"],
        nodes={},
        sa_private_key=sa_private,
        sa_public_key=sa_public,
    )
    for node in nodes:
        pki.node(node)
    return pki


def _b64(path: Path | str) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


def write_kubeconfig(
    path: Path | str,
    server: str,
    ca: Path | str,
    cert: Path | str,
    key: Path | str,
    user: str,
    context: str = "raftkube",
) -> None:
    """Write a self-contained kubeconfig (certificates embedded as ``*-data``) for ``user`` at
    ``server``, readable only by its owner; the cluster and context are both named
    ``context``. Written to a temporary file and renamed, so a reader never sees half a file."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": context,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": _b64(cert), "client-key-data": _b64(key)},
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
        "current-context": context,
        "preferences": {},
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(config, f, sort_keys=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
