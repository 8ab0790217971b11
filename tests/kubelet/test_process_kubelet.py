"""The kubelet with the process runtime on real processes: a Python HTTP server in a pod is
ready and answers on its pod IP, its logs are served over HTTPS (also followed), a container
with nothing to run says so, and deletion stops the process."""

from __future__ import annotations

import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from raftkube.apiserver.auth.pki import issue_client_cert
from raftkube.clock import TrioClock
from raftkube.kubeclient import KubeClient
from raftkube.kubelet import Kubelet, NodeConfig
from raftkube.runtime import ProcessRuntime
from raftkube.tls import CertPair, client_context, issue_cert, server_context
from tests.helpers.api_server import APIHarness
from tests.helpers.kubelet import (
    PODS,
    condition,
    container,
    ensure_default_service_account,
    pod,
    wait_for_pod,
)
from tests.helpers.processes import kill_leftovers

SERVER = """
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
        self.wfile.write(f"hello from {os.environ['POD_IP']} as {os.environ['WHO']}".encode())
print("serving on", os.environ["POD_IP"], flush=True)
http.server.HTTPServer((os.environ["POD_IP"], 8080), H).serve_forever()
"""

FILES = """
import os
print(open("var/run/secrets/kubernetes.io/serviceaccount/namespace").read())
print(open("var/run/secrets/kubernetes.io/serviceaccount/ca.crt").read())
print(len(open("var/run/secrets/kubernetes.io/serviceaccount/token").read().split(".")))
print(open("etc/greeting/hello").read(), os.environ["GREETING"])
"""

COUNTER = "import time\nfor i in range(3):\n    print('line', i, flush=True); time.sleep(0.3)\n"


@asynccontextmanager
async def process_kubelet(
    api: APIHarness, root: Path, *, keep_running: bool = False
) -> AsyncIterator[Kubelet]:
    """A kubelet on node n1 with the process runtime on ``root``; what it started is killed
    on the way out unless ``keep_running`` (a kubelet restart: the next one adopts it)."""
    await ensure_default_service_account(api.admin)
    serving = CertPair(api.tmp / "kubelet.crt", api.tmp / "kubelet.key")
    issue_cert(api.pki.ca, serving, "system:node:n1", hosts=["127.0.0.1"])
    client = api.client_for("system:node:n1", ("system:nodes",))
    config = NodeConfig("n1", "127.1.0.0/24", address="127.0.0.1", port=0)
    runtime = ProcessRuntime(TrioClock(), root, "127.1.0.0/24")
    kl = Kubelet(
        client,
        runtime,
        config,
        TrioClock(),
        volume_root=root / "volumes",
        serving=server_context(serving.cert, serving.key, api.pki.ca.cert, client_cert_auth=True),
    )
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(kl.run)
            yield kl
            nursery.cancel_scope.cancel()
    except BaseException:
        kill_leftovers(root)
        raise
    else:
        if not keep_running:
            kill_leftovers(root)
    finally:
        await client.aclose()


def log_client(api: APIHarness, port: int) -> KubeClient:
    pair = CertPair(api.tmp / "logs.crt", api.tmp / "logs.key")
    issue_client_cert(api.pki.ca, pair, "kube-apiserver-kubelet-client")
    context = client_context(api.pki.ca.cert, pair.cert, pair.key)
    return KubeClient(f"https://127.0.0.1:{port}", ssl_context=context)


async def follow(api: APIHarness, port: int, path: str) -> bytes:
    """The whole followed answer, read until the kubelet ends it."""
    pair = CertPair(api.tmp / "logs.crt", api.tmp / "logs.key")
    issue_client_cert(api.pki.ca, pair, "kube-apiserver-kubelet-client")
    context: ssl.SSLContext = client_context(api.pki.ca.cert, pair.cert, pair.key)
    tcp = await trio.open_tcp_stream("127.0.0.1", port)
    stream = trio.SSLStream(tcp, context, server_hostname="127.0.0.1")
    async with stream:
        await stream.send_all(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        try:
            while chunk := await stream.receive_some(65536):
                data += chunk
        except trio.BrokenResourceError:
            pass
    return data


async def get(host: str, port: int) -> bytes:
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        await stream.send_all(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data


@pytest.mark.trio
async def test_a_python_server_pod_runs_serves_and_logs(api: APIHarness, tmp_path: Path) -> None:
    server = container(
        "app",
        "python",
        command=[sys.executable, "-c", SERVER],
        env=[{"name": "WHO", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        readinessProbe={"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
        livenessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1},
    )
    counter = container("count", "python", command=[sys.executable, "-c", COUNTER])
    files = container(
        "files",
        "python",
        command=[sys.executable, "-c", FILES],
        volumeMounts=[{"name": "greeting", "mountPath": "/etc/greeting"}],
        env=[
            {
                "name": "GREETING",
                "valueFrom": {"configMapKeyRef": {"name": "greeting", "key": "hello"}},
            }
        ],
    )
    files_pod = pod(
        "files",
        "n1",
        files,
        restartPolicy="Never",
        volumes=[{"name": "greeting", "configMap": {"name": "greeting"}}],
    )
    greeting = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "greeting"},
        "data": {"hello": "world"},
    }
    with trio.fail_after(60):
        async with process_kubelet(api, tmp_path / "root") as kl:
            await api.admin.create(PODS, pod("web", "n1", server))
            await api.admin.create(PODS, pod("nothing", "n1", container("app", "nginx")))
            await api.admin.create(PODS, pod("count", "n1", counter, restartPolicy="Never"))
            await api.admin.create("/api/v1/namespaces/default/configmaps", greeting)
            await api.admin.create(PODS, files_pod)
            ready = await wait_for_pod(api.admin, "web", lambda p: condition(p, "Ready") == "True")
            answer = await get(ready["status"]["podIP"], 8080)
            port = kl.config.port
            node = await api.admin.get("/api/v1/nodes/n1")
            async with log_client(api, port) as logs:
                status, _, body = await logs.request("GET", "/containerLogs/default/web/app")
            followed = await follow(api, port, "/containerLogs/default/count/count?follow=true")
            done = await wait_for_pod(
                api.admin,
                "files",
                lambda p: (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"),
            )
            async with log_client(api, port) as logs:
                _, _, printed = await logs.request("GET", "/containerLogs/default/files/files")
            nothing = await wait_for_pod(
                api.admin,
                "nothing",
                lambda p: bool((p.get("status") or {}).get("containerStatuses")),
            )
            await api.admin.delete(f"{PODS}/web")
            await wait_for_pod(api.admin, "web", lambda p: p == {})
    assert answer.endswith(f"hello from {ready['status']['podIP']} as web".encode())
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == port
    assert status == 200
    assert body.startswith(f"serving on {ready['status']['podIP']}\n".encode())
    assert b'"GET / HTTP/1.1" 200' in body  # the probes' requests, as http.server logs them
    assert followed.startswith(b"HTTP/1.1 200")
    for i in range(3):
        assert f"line {i}".encode() in followed
    assert printed == b"default\na CA certificate\n3\nworld world\n"
    assert done["status"]["phase"] == "Succeeded"
    [waiting] = nothing["status"]["containerStatuses"]
    assert waiting["state"]["waiting"]["reason"] == "CreateContainerError"
    assert "has no command" in waiting["state"]["waiting"]["message"]


@pytest.mark.trio
async def test_a_restarted_kubelet_keeps_the_same_processes(
    api: APIHarness, tmp_path: Path
) -> None:
    server = container(
        "app",
        "python",
        command=[sys.executable, "-c", SERVER],
        env=[{"name": "WHO", "value": "kept"}],
        readinessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1},
    )
    root = tmp_path / "root"
    with trio.fail_after(60):
        async with process_kubelet(api, root, keep_running=True):
            await api.admin.create(PODS, pod("kept", "n1", server))
            first = await wait_for_pod(api.admin, "kept", lambda p: condition(p, "Ready") == "True")
        try:
            async with process_kubelet(api, root) as kl:
                while not kl.workers:
                    await trio.sleep(0.05)
                await trio.sleep(1.5)
                answer = await get(first["status"]["podIP"], 8080)
                second = await api.admin.get(f"{PODS}/kept")
        finally:
            kill_leftovers(root)
    [before], [after] = first["status"]["containerStatuses"], second["status"]["containerStatuses"]
    assert after["containerID"] == before["containerID"]
    assert after["restartCount"] == 0
    assert second["status"]["podIP"] == first["status"]["podIP"]
    assert answer.endswith(f"hello from {first['status']['podIP']} as kept".encode())
