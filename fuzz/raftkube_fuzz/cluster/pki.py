"""The simulated cluster's credentials: ``raftkube up``'s own plan, made once per process.

:func:`~raftkube.cluster.control_plane.plan_control_plane` writes the cluster CA, the API
server's serving certificate, a client certificate and kubeconfig per component and one per
simulated node, exactly as ``raftkube up --sim-nodes`` does. They are made once per process,
in a temporary directory removed at exit, because key generation and certificate signing would
otherwise dominate a short example.

Making keys draws on the OS's entropy, so the files differ from process to process. Nothing a
run decides depends on their bytes (stream chunks are delivered whole, whatever their length)
with one exception, which this module removes: the CA certificate is *stored*. The root CA
ConfigMap controller copies it into every namespace's ``kube-root-ca.crt``, so its length is
part of the store's entries and snapshots, whose sizes the timeline records and a replay's
digest compares. A P-256 ECDSA signature's DER encoding takes 70 to 72 bytes at random, and a
random serial number varies in length too, so a replay in a new process differed from its
trace one time in two. The CA is therefore made here, before the plan (which keeps a CA it
finds): a fixed simulation-only key, a fixed serial and validity, and a signature drawn again
until its encoding takes the full 72 bytes (one draw in four does), so every process's CA has
the same length. The rest of the plan is left as ``raftkube up`` makes it.
"""

from __future__ import annotations

import atexit
import datetime
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from raftkube.cluster.control_plane import ControlPlanePlan, plan_control_plane

MAX_NODES = 4
"""Simulated nodes with credentials in the plan (``sim-0`` ... ``sim-3``)."""


@attrs.frozen
class SimPKI:
    plan: ControlPlanePlan
    hosts: tuple[str, ...]
    """The API servers' hosts the serving certificate names."""


_cached: SimPKI | None = None


def sim_pki(api_hosts: tuple[str, ...], api_port: int) -> SimPKI:
    """The process's plan for API servers at ``https://HOST:api_port`` for each of
    ``api_hosts``: one serving certificate that names them all (as an HA control plane's
    servers share one), every kubeconfig naming the first."""
    global _cached
    if _cached is None or _cached.hosts != api_hosts or _cached.plan.port != api_port:
        directory = Path(tempfile.mkdtemp(prefix="raftkube-fuzz-pki-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        write_fixed_length_ca(directory / "pki")
        plan = plan_control_plane(
            directory, api_hosts[0], api_port, sim_nodes=MAX_NODES, extra_sans=api_hosts[1:]
        )
        _cached = SimPKI(plan, api_hosts)
    return _cached


P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
SIM_CA_KEY = 1 + int.from_bytes(hashlib.sha256(b"raftkube simulated CA").digest()) % (
    P256_ORDER - 1
)
"""The simulated CA's private scalar: public on purpose, trusted by nothing outside a
simulation's temporary directory."""
SIM_CA_SERIAL = 0x5EED_CA
SIM_CA_VALIDITY = (datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
                   datetime.datetime(2045, 1, 1, tzinfo=datetime.UTC))  # fmt: skip
"""Fixed, so the certificate's dates encode alike in every process; wide enough for the real
time the TLS library checks the chain against and the simulated wall clock tokens are judged
by."""
FULL_SIGNATURE = 72
"""The longest DER encoding of a P-256 ECDSA signature (both integers 33 bytes)."""


def write_fixed_length_ca(root: Path) -> None:
    """Write ``root/ca.crt`` and ``root/ca.key`` (the names the plan looks for) with a length
    every process shares (see the module docstring)."""
    root.mkdir(parents=True, exist_ok=True)
    key = ec.derive_private_key(SIM_CA_KEY, ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "raftkube"),
        x509.NameAttribute(NameOID.COMMON_NAME, "raftkube simulated kubernetes CA"),
    ])  # fmt: skip
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(SIM_CA_SERIAL)
        .not_valid_before(SIM_CA_VALIDITY[0])
        .not_valid_after(SIM_CA_VALIDITY[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    cert = builder.sign(key, hashes.SHA256())
    while len(cert.signature) != FULL_SIGNATURE:
        cert = builder.sign(key, hashes.SHA256())
    fd = os.open(root / "ca.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    (root / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
