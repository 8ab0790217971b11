"""kubeconfig files as kubectl writes them: inline base64 and file paths, tokens, and a client
built from one talking TLS with a client certificate to the real HTTP layer."""

from __future__ import annotations

import base64
import json
import ssl
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
import yaml

from raftkube.apiserver.http import HTTPServer, server_ssl_context
from raftkube.apiserver.request import Request, Response
from raftkube.kubeclient import KubeClient, KubeConfigError, load_kubeconfig

TIMEOUT = 10


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(
    server: str, cluster: dict[str, Any], user: dict[str, Any], **context: str
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "main",
        "clusters": [
            {"name": "other", "cluster": {"server": "https://wrong:1"}},
            {"name": "c", "cluster": {"server": server, **cluster}},
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [
            {"name": "main", "context": {"cluster": "c", "user": "u", **context}},
            {"name": "anonymous", "context": {"cluster": "other"}},
        ],
    }


def write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


def test_inline_data_is_decoded(tmp_path: Path) -> None:
    document = kubeconfig(
        "https://127.0.0.1:6443",
        {"certificate-authority-data": b64(b"CA PEM"), "tls-server-name": "kubernetes"},
        {"client-certificate-data": b64(b"CERT"), "client-key-data": b64(b"KEY")},
        namespace="team",
    )
    config = load_kubeconfig(write(tmp_path / "config", document))
    assert config.server == "https://127.0.0.1:6443"
    assert (config.certificate_authority, config.client_certificate, config.client_key) == (
        b"CA PEM",
        b"CERT",
        b"KEY",
    )
    assert (config.tls_server_name, config.namespace, config.token) == ("kubernetes", "team", None)


def test_file_paths_are_relative_to_the_kubeconfig_and_tokens_may_come_from_a_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.crt").write_bytes(b"CA FROM FILE")
    (tmp_path / "token").write_text("abc.def\n")
    document = kubeconfig(
        "https://api:6443", {"certificate-authority": "pki/ca.crt"}, {"tokenFile": "token"}
    )
    config = load_kubeconfig(write(tmp_path / "config", document))
    assert config.certificate_authority == b"CA FROM FILE"
    assert config.token == "abc.def"
    assert config.namespace == "default"
    other = load_kubeconfig(tmp_path / "config", context="anonymous")
    assert (other.server, other.token, other.certificate_authority) == (
        "https://wrong:1",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("current-context"), "no current-context"),
        (lambda d: d.update({"current-context": "nope"}), "no context named 'nope'"),
        (lambda d: d["users"][0]["user"].update({"exec": {}}), "'exec' credentials"),
        (lambda d: d["clusters"][1]["cluster"].pop("server"), "has no server"),
        (
            lambda d: d["clusters"][1]["cluster"].update({"certificate-authority-data": "!!"}),
            "not base64",
        ),
        (lambda d: d["users"][0].update({"user": {"tokenFile": "absent"}}), "cannot read"),
    ],
)
def test_unusable_kubeconfigs_are_refused_with_a_reason(
    tmp_path: Path, change: Any, message: str
) -> None:
    document = kubeconfig("https://api:6443", {}, {"token": "t"})
    change(document)
    with pytest.raises(KubeConfigError, match=message):
        load_kubeconfig(write(tmp_path / "config", document))


def test_a_plain_http_server_needs_no_tls_context(tmp_path: Path) -> None:
    config = load_kubeconfig(write(tmp_path / "c", kubeconfig("http://127.0.0.1:8080", {}, {})))
    assert config.ssl_context() is None


@pytest.mark.trio
async def test_a_client_from_a_kubeconfig_presents_its_certificate_and_token(
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    server_leaf = ca.issue_cert("127.0.0.1")
    cert, key, ca_file = tmp_path / "srv.crt", tmp_path / "srv.key", tmp_path / "ca.crt"
    server_leaf.cert_chain_pems[0].write_to_path(str(cert))
    server_leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    client_leaf = ca.issue_cert("admin@example.com")
    client_pem = client_leaf.cert_chain_pems[0].bytes()

    seen: list[Request] = []

    async def handler(req: Request) -> Response:
        seen.append(req)
        return Response(200, (("Content-Type", "application/json"),), json.dumps({}).encode())

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server = HTTPServer(handler, ssl_context=server_ssl_context(cert, key, ca_file))
            port = await nursery.start(server.serve_tcp, "127.0.0.1", 0)
            document = kubeconfig(
                f"https://127.0.0.1:{port}",
                {"certificate-authority-data": b64(ca.cert_pem.bytes())},
                {
                    "client-certificate-data": b64(client_pem),
                    "client-key-data": b64(client_leaf.private_key_pem.bytes()),
                    "token": "bearer-too",
                },
            )
            path = write(tmp_path / "config", document)
            async with KubeClient.from_kubeconfig(path) as client:
                assert await client.get("/api/v1/namespaces", "default") == {}
            nursery.cancel_scope.cancel()

    (request,) = seen
    assert request.peer_certificate == ssl.PEM_cert_to_DER_cert(client_pem.decode())
    assert request.headers["authorization"] == "Bearer bearer-too"
    assert request.path == "/api/v1/namespaces/default"
