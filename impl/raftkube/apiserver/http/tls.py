"""The API server's TLS context: a serving certificate, and client certificates *requested*.

Kubernetes clients authenticate either with a client certificate (kubectl's admin kubeconfig,
kubelets) or with a bearer token (service accounts, static tokens) on the same port, so the
handshake must ask for a certificate without insisting on one: ``CERT_OPTIONAL``. A certificate
that *is* presented must chain to the cluster CA, or OpenSSL aborts the handshake.

Upstream differs in one respect, kept on purpose: kube-apiserver asks with Go's
``tls.RequestClientCert`` (no verification in the handshake) and verifies the chain in its x509
authenticator, so a certificate from a foreign CA earns a 401 there and a failed handshake here.
Either way such a client is not authenticated by its certificate.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from raftkube.tls import TlsSetupError, server_context

ALPN_PROTOCOLS = ("http/1.1",)
"""Offered in ALPN: kubectl (Go) proposes ``h2`` and ``http/1.1`` and settles on the latter when
the server selects it; HTTP/2 is not served."""


def server_ssl_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    """A server context presenting ``cert``/``key``; with ``client_ca``, a client certificate is
    requested and, when one is sent, verified against that CA (see the module docstring)."""
    ctx = server_context(cert, key)
    ctx.set_alpn_protocols(list(ALPN_PROTOCOLS))
    if client_ca is not None:
        try:
            ctx.load_verify_locations(cafile=str(client_ca))
        except (OSError, ssl.SSLError) as exc:
            raise TlsSetupError(f"cannot load client CA certificate {client_ca}: {exc}") from None
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx
