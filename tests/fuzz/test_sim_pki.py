"""The simulated cluster's CA has the same length in every process: its PEM is stored (the
``kube-root-ca.crt`` ConfigMaps), so a length that varied with the process's randomness made a
replay's snapshot sizes, and so its digest, differ from its trace's."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from raftkube_fuzz.cluster.pki import FULL_SIGNATURE, sim_pki, write_fixed_length_ca


def test_the_simulated_ca_has_one_length_whatever_the_signature_draws(tmp_path: Path) -> None:
    lengths = set()
    keys = set()
    for i in range(12):
        root = tmp_path / str(i)
        write_fixed_length_ca(root)
        pem = (root / "ca.crt").read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
        assert len(cert.signature) == FULL_SIGNATURE
        lengths.add(len(pem))
        keys.add((root / "ca.key").read_bytes())
        assert (root / "ca.key").stat().st_mode & 0o077 == 0
    assert len(lengths) == 1 and len(keys) == 1


def test_the_plan_keeps_the_fixed_length_ca() -> None:
    pki = sim_pki(("192.168.0.2",), 6443)
    cert = x509.load_pem_x509_certificate(pki.plan.pki.ca.cert.read_bytes())
    assert "raftkube simulated kubernetes CA" in cert.subject.rfc4514_string()
    assert len(cert.signature) == FULL_SIGNATURE
