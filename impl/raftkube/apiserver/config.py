"""An API server's configuration, as the command line (or a test) gives it."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import attrs

AUTHORIZATION_MODES = frozenset({"AlwaysAllow", "Node", "RBAC"})
DEFAULT_SERVICE_RANGE = ipaddress.IPv4Network("127.96.0.0/12")
"""The loopback twin of upstream's 10.96.0.0/12: proxies bind Service IPs without root."""


class ConfigError(Exception):
    """A configuration that cannot work, reported as one line naming what is wrong."""


@attrs.frozen
class APIServerConfig:
    etcd_servers: tuple[str, ...]
    tls_cert_file: Path
    tls_private_key_file: Path
    service_account_signing_key_file: Path
    etcd_cafile: Path | None = None
    etcd_certfile: Path | None = None
    etcd_keyfile: Path | None = None
    bind_address: str = "127.0.0.1"
    secure_port: int = 6443
    client_ca_file: Path | None = None
    token_auth_file: Path | None = None
    service_account_key_files: tuple[Path, ...] = ()
    service_account_issuer: str = "https://kubernetes.default.svc.cluster.local"
    api_audiences: tuple[str, ...] = ("https://kubernetes.default.svc.cluster.local",)
    service_cluster_ip_range: ipaddress.IPv4Network = DEFAULT_SERVICE_RANGE
    service_node_port_range: tuple[int, int] = (30000, 32767)
    anonymous_auth: bool = False
    authorization_modes: tuple[str, ...] = ("Node", "RBAC")
    min_request_timeout: float = 1800.0
    kubelet_client_certificate: Path | None = None
    kubelet_client_key: Path | None = None
    kubelet_certificate_authority: Path | None = None
    etcd_compaction_interval: float = 300.0
    """Seconds between the server's compactions of the store (``--etcd-compaction-interval``,
    upstream's 5 min); 0 disables them (:mod:`raftkube.apiserver.compactor`)."""

    def check(self) -> None:
        """Refuse what cannot work before anything starts (missing files, unknown modes)."""
        if not self.etcd_servers:
            raise ConfigError("--etcd-servers: at least one endpoint is needed")
        for flag, path in (
            ("--tls-cert-file", self.tls_cert_file),
            ("--tls-private-key-file", self.tls_private_key_file),
            ("--service-account-signing-key-file", self.service_account_signing_key_file),
            ("--client-ca-file", self.client_ca_file),
            ("--token-auth-file", self.token_auth_file),
            ("--etcd-cafile", self.etcd_cafile),
            ("--etcd-certfile", self.etcd_certfile),
            ("--etcd-keyfile", self.etcd_keyfile),
            ("--kubelet-client-certificate", self.kubelet_client_certificate),
            ("--kubelet-client-key", self.kubelet_client_key),
            ("--kubelet-certificate-authority", self.kubelet_certificate_authority),
            *(("--service-account-key-file", p) for p in self.service_account_key_files),
        ):
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{flag}: no such file: {path}")
        unknown = sorted(set(self.authorization_modes) - AUTHORIZATION_MODES)
        if unknown:
            raise ConfigError(
                f"--authorization-mode: unknown mode(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(AUTHORIZATION_MODES))}"
            )
        if self.etcd_compaction_interval < 0:
            raise ConfigError("--etcd-compaction-interval: must not be negative")
        if not self.authorization_modes:
            raise ConfigError("--authorization-mode: at least one mode is needed")
        if (self.kubelet_client_certificate is None) != (self.kubelet_client_key is None):
            raise ConfigError("--kubelet-client-certificate and --kubelet-client-key go together")
        if (self.etcd_certfile is None) != (self.etcd_keyfile is None):
            raise ConfigError("--etcd-certfile and --etcd-keyfile go together")
