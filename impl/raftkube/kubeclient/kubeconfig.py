"""Reading a kubeconfig file: the server, CA and credentials of one context.

Field names are kubectl's (``clusters[].cluster.server``, ``certificate-authority-data``,
``users[].user.client-certificate``, ``token``, ``tokenFile``...). Each certificate, key or CA
may be given inline as base64 (``*-data``, which wins, as in client-go) or as a file path,
relative paths being taken from the kubeconfig's own directory, as kubectl resolves them.

Simplified: one file (no ``KUBECONFIG`` list merging), and no ``exec`` or ``auth-provider``
plugins or basic auth; a context that needs one is refused with a message saying so. A
``token`` wins over a ``tokenFile``, as in client-go.
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
import tempfile
from pathlib import Path
from typing import Any

import attrs
import yaml

_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML was built with it (the same documents, ~10x faster to
read: a process of 1,000 simulated nodes reads 1,000 kubeconfigs), else the pure-Python one."""


class KubeConfigError(ValueError):
    """The kubeconfig is missing, malformed, or lacks what the chosen context needs."""


@attrs.frozen
class KubeConfig:
    """One context's connection settings, with every PEM read into memory."""

    server: str
    certificate_authority: bytes | None = None
    client_certificate: bytes | None = None
    client_key: bytes | None = None
    token: str | None = None
    tls_server_name: str | None = None
    insecure_skip_tls_verify: bool = False
    namespace: str = "default"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client TLS context these settings describe; None for an ``http://`` server."""
        if not self.server.startswith("https://"):
            return None
        if self.certificate_authority is not None and not self.insecure_skip_tls_verify:
            # As client-go: a CA named by the kubeconfig replaces the system's roots. Loading
            # those roots also costs 20-70 ms a context, which dominated starting 1,000
            # simulated nodes (one context per node identity).
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        else:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(["http/1.1"])
        if self.insecure_skip_tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.certificate_authority is not None:
            try:
                ctx.load_verify_locations(cadata=self.certificate_authority.decode("ascii"))
            except (ssl.SSLError, ValueError) as exc:
                raise KubeConfigError(f"unusable certificate authority: {exc}") from None
        if self.client_certificate is not None:
            if self.client_key is None:
                raise KubeConfigError("a client certificate is given without its key")
            _load_chain(ctx, self.client_certificate, self.client_key)
        return ctx


def _load_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """``load_cert_chain`` reads only files. On Linux the PEMs go through anonymous in-memory
    files (``memfd_create``, read back through ``/proc/self/fd``), so the key never touches a
    disk and no directory is made and removed (that cost ~10 ms a context on a busy disk);
    elsewhere through a private temporary directory that is removed at once."""
    try:
        if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
            _load_chain_memfd(ctx, cert, key)
            return
        with tempfile.TemporaryDirectory(prefix="raftkube-kubeconfig-") as tmp:
            cert_path, key_path = Path(tmp) / "client.crt", Path(tmp) / "client.key"
            cert_path.write_bytes(cert)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key)
            ctx.load_cert_chain(str(cert_path), str(key_path))
    except ssl.SSLError as exc:
        raise KubeConfigError(f"unusable client certificate or key: {exc}") from None


def _load_chain_memfd(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    fds = [os.memfd_create("raftkube-kubeconfig-cert"), os.memfd_create("raftkube-kubeconfig-key")]
    try:
        for fd, pem in zip(fds, (cert, key), strict=True):
            with open(fd, "wb", closefd=False) as f:
                f.write(pem)
        ctx.load_cert_chain(f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}")
    finally:
        for fd in fds:
            os.close(fd)


def _named(document: dict[str, Any], section: str, name: str, path: Path) -> dict[str, Any]:
    """The inner mapping of the entry called ``name`` in ``document[section]`` (a list of
    ``{name: ..., <singular>: {...}}`` as kubectl writes it)."""
    inner = section[:-1]
    for entry in document.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(inner) or {}
            if not isinstance(value, dict):
                raise KubeConfigError(f"{path}: {section} entry {name!r} is malformed")
            return value
    raise KubeConfigError(f"{path}: no {inner} named {name!r}")


def _pem(section: dict[str, Any], field: str, base: Path, path: Path, what: str) -> bytes | None:
    """``field-data`` (base64) if present, else the file at ``field``, else None."""
    inline = section.get(f"{field}-data")
    if inline:
        try:
            return base64.b64decode(str(inline), validate=True)
        except (binascii.Error, ValueError):
            raise KubeConfigError(f"{path}: {what} {field}-data is not base64") from None
    file = section.get(field)
    if file:
        return _read(base / str(file), path, what)
    return None


def _read(file: Path, path: Path, what: str) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise KubeConfigError(f"{path}: cannot read {what} {file}: {exc}") from None


def load_kubeconfig(path: Path | str, *, context: str | None = None) -> KubeConfig:
    """The settings of ``context`` (default: ``current-context``) in the kubeconfig ``path``."""
    path = Path(path)
    try:
        document = yaml.load(path.read_text(), Loader=_SAFE_LOADER)
    except OSError as exc:
        raise KubeConfigError(f"cannot read kubeconfig {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise KubeConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise KubeConfigError(f"{path} is not a kubeconfig")
    name = context or document.get("current-context")
    if not name:
        raise KubeConfigError(f"{path}: no current-context, and no context was chosen")
    ctx = _named(document, "contexts", str(name), path)
    cluster = _named(document, "clusters", str(ctx.get("cluster", "")), path)
    user = _named(document, "users", str(ctx.get("user", "")), path) if ctx.get("user") else {}
    for unsupported in ("exec", "auth-provider", "username"):
        if unsupported in user:
            raise KubeConfigError(f"{path}: user {unsupported!r} credentials are not supported")
    server = cluster.get("server")
    if not server:
        raise KubeConfigError(f"{path}: cluster {ctx.get('cluster')!r} has no server")
    base = path.parent
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _read(base / str(user["tokenFile"]), path, "token file").decode().strip()
    return KubeConfig(
        server=str(server),
        certificate_authority=_pem(cluster, "certificate-authority", base, path, "cluster"),
        client_certificate=_pem(user, "client-certificate", base, path, "user"),
        client_key=_pem(user, "client-key", base, path, "user"),
        token=str(token) if token else None,
        tls_server_name=cluster.get("tls-server-name") or None,
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify", False)),
        namespace=str(ctx.get("namespace") or "default"),
    )
