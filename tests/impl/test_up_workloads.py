"""The README's first example on real processes: `raftkube up` with two kubelets, the example
Deployment and Service applied, and a page fetched through the Service's ClusterIP.

Every component is its own process, as a user runs them: store members, API server,
controller manager, scheduler, kubelets (pods are process groups on their own loopback
addresses) and kube-proxy. The objects go in through the REST client (what `kubectl apply`
sends for a create), so the test does not need kubectl.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import trio
import yaml

from raftkube.apiserver.resources import by_kind
from raftkube.kubeclient import KubeClient
from tests.helpers.cluster_http import http_get
from tests.helpers.polling import eventually
from tests.helpers.processes import Processes, free_port_block, free_ports, wait_exit, wait_up

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "web.yaml"


@pytest.mark.trio
async def test_the_readme_example_serves_through_its_cluster_ip(
    tmp_path: Path,
    procs: Processes,
) -> None:
    base = free_port_block(6)
    kubelets = free_port_block(2)
    (api,) = free_ports(1)
    data = tmp_path / "cluster"
    argv = ["up", "--data-dir", str(data), "--port-base", str(base), "--apiserver-port", str(api),
            "--kubelet-port-base", str(kubelets), "--stop-timeout", "10"]  # fmt: skip
    with trio.fail_after(240):
        proc = procs.start(argv, "up")
        await wait_up(proc, timeout=90)
        async with KubeClient.from_kubeconfig(data / "admin.kubeconfig") as kube:

            async def two_ready_nodes() -> bool:
                nodes = (await kube.list("/api/v1/nodes"))["items"]
                ready = [
                    n for n in nodes
                    for c in n.get("status", {}).get("conditions", [])
                    if c["type"] == "Ready" and c["status"] == "True"
                ]  # fmt: skip
                return len(ready) == 2

            await eventually(two_ready_nodes, "two ready nodes", timeout=60, interval=0.25)
            for obj in yaml.safe_load_all(EXAMPLE.read_text()):
                info = by_kind(obj["apiVersion"], obj["kind"])
                assert info is not None
                await kube.create(info, obj, namespace="default")

            async def available() -> bool:
                deploy = await kube.call("GET", "/apis/apps/v1/namespaces/default/deployments/web")
                return deploy.get("status", {}).get("availableReplicas") == 3

            await eventually(available, "available", timeout=90, interval=0.25)
            pods = (await kube.list("/api/v1/namespaces/default/pods"))["items"]
            assert {p["spec"]["nodeName"] for p in pods} <= {"node-0", "node-1"}
            assert all(p["status"]["podIP"].startswith(("127.1.", "127.2.")) for p in pods)
            names = {p["metadata"]["name"] for p in pods}

            service = await kube.call("GET", "/api/v1/namespaces/default/services/web")
            cluster_ip = service["spec"]["clusterIP"]

            async def through_the_service() -> bytes | None:
                try:
                    answer = await http_get(cluster_ip, 8080)
                except OSError:
                    return None  # kube-proxy has not bound the ClusterIP yet
                return answer if b"200" in answer.split(b"\r\n", 1)[0] else None

            seen = set()
            for _ in range(6):
                answer = await eventually(
                    through_the_service, "through the service", timeout=30, interval=0.25
                )
                seen.add(answer.rsplit(b"hello from ", 1)[1].strip().decode())
            assert seen <= names and len(seen) >= 2  # spread over the endpoints

            log = await kube.request(
                "GET", f"/api/v1/namespaces/default/pods/{sorted(names)[0]}/log"
            )
            assert log[0] == 200

        proc.send_signal(signal.SIGINT)
        assert await wait_exit(proc, timeout=40) == 0, procs.err(proc)
        err = procs.err(proc)
        assert "exited unexpectedly" not in err, err
