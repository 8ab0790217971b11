"""A rolling update of the README's example Deployment on real processes never leaves its
Service without a ready endpoint.

``raftkube up`` runs with two kubelets; the example Deployment and Service go in through the
REST client. A merge patch then adds an annotation to the pod template: a new template hash,
so a new ReplicaSet whose pods have new names (the page says ``hello from $POD_NAME``). With
the default strategy (``maxSurge`` 25% rounds up to 1, ``maxUnavailable`` 25% rounds down to
0) the controller must bring each new pod to ready before it removes an old one, so while the
rollout runs every read of the Endpoints has a ready address and every fetch through the
ClusterIP answers 200.

A fetch refused outright is retried a few times and counted, in case the proxy's listener for
the ClusterIP is being replaced; the userspace proxier updates a listener's endpoints in place, so
none is expected. A connection the proxier closes without an answer (no endpoint to dial) fails
the test, as does any answer but 200.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
import trio
import yaml

from raftkube.apiserver.resources import by_kind
from raftkube.kubeclient import KubeClient
from tests.helpers.cluster_http import http_get
from tests.helpers.polling import eventually
from tests.helpers.processes import Processes, free_port_block, free_ports, wait_exit, wait_up

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "web.yaml"
DEPLOYMENT = "/apis/apps/v1/namespaces/default/deployments/web"
ENDPOINTS = "/api/v1/namespaces/default/endpoints/web"
PODS = "/api/v1/namespaces/default/pods"
REFUSED_RETRIES = 3  # per fetch; more than this is an outage, not a listener update
POLL = 0.1


def answered_by(answer: bytes) -> str:
    """The pod name a 200 answer of the example's page names."""
    assert answer.split(b"\r\n", 1)[0].split()[1:2] == [b"200"], answer[:200]
    return answer.rsplit(b"hello from ", 1)[1].strip().decode()


def ready_addresses(endpoints: dict[str, Any]) -> list[str]:
    """The pod names behind an Endpoints object's ready addresses."""
    return [
        a.get("targetRef", {}).get("name", a.get("ip", ""))
        for s in endpoints.get("subsets") or []
        for a in s.get("addresses") or []
    ]


def rolled_out(deploy: dict[str, Any]) -> bool:
    """The controller has seen the latest spec and every replica is updated and available,
    with no old pod left (``replicas`` counts the pods of every ReplicaSet)."""
    status = deploy.get("status", {})
    current = int(status.get("observedGeneration", 0)) >= int(deploy["metadata"]["generation"])
    counts = [status.get(f) for f in ("updatedReplicas", "availableReplicas", "replicas")]
    return current and counts == [3, 3, 3]


@pytest.mark.trio
async def test_a_rolling_update_keeps_a_ready_endpoint(
    tmp_path: Path,
    procs: Processes,
) -> None:
    base = free_port_block(6)
    kubelets = free_port_block(2)
    (api,) = free_ports(1)
    data = tmp_path / "cluster"
    argv = ["up", "--data-dir", str(data), "--port-base", str(base), "--apiserver-port", str(api),
            "--kubelet-port-base", str(kubelets), "--stop-timeout", "10"]  # fmt: skip
    with trio.fail_after(120):
        proc = procs.start(argv, "up")
        await wait_up(proc, timeout=60)
        async with KubeClient.from_kubeconfig(data / "admin.kubeconfig") as kube:
            for obj in yaml.safe_load_all(EXAMPLE.read_text()):
                info = by_kind(obj["apiVersion"], obj["kind"])
                assert info is not None
                await kube.create(info, obj, namespace="default")

            async def available() -> bool:
                return rolled_out(await kube.call("GET", DEPLOYMENT))

            await eventually(available, "available", timeout=60, interval=0.25)
            service = await kube.call("GET", "/api/v1/namespaces/default/services/web")
            cluster_ip = service["spec"]["clusterIP"]

            async def serving() -> bytes | None:
                try:
                    return await http_get(cluster_ip, 8080)
                except OSError:
                    return None  # kube-proxy has not bound the ClusterIP yet

            await eventually(serving, "serving", timeout=30, interval=0.25)
            old = {p["metadata"]["name"] for p in (await kube.list(PODS))["items"]}
            assert len(old) == 3

            # The rollout proper: bounded on its own, so the figure below is its wall time.
            started = trio.current_time()
            patch = {"spec": {"template": {"metadata": {"annotations": {"example/rev": "2"}}}}}
            merge = "application/merge-patch+json"
            await kube.call("PATCH", DEPLOYMENT, body=patch, content_type=merge)
            fewest = 3
            reads = fetches = refused = 0
            answered: set[str] = set()
            with trio.fail_after(60):
                while True:
                    ready = ready_addresses(await kube.call("GET", ENDPOINTS))
                    reads += 1
                    fewest = min(fewest, len(ready))
                    assert ready, f"Endpoints read {reads} has no ready address"
                    for attempt in range(REFUSED_RETRIES + 1):
                        try:
                            answer = await http_get(cluster_ip, 8080)
                            break
                        except ConnectionRefusedError:
                            assert attempt < REFUSED_RETRIES, f"fetch {fetches} refused"
                            refused += 1
                            await trio.sleep(POLL / 2)
                    fetches += 1
                    answered.add(answered_by(answer))
                    if rolled_out(await kube.call("GET", DEPLOYMENT)):
                        break
                    await trio.sleep(POLL)
            rollout = trio.current_time() - started

            pods = (await kube.list(PODS))["items"]
            new = {
                p["metadata"]["name"]
                for p in pods
                if not p["metadata"].get("deletionTimestamp")
                and p["metadata"].get("annotations", {}).get("example/rev") == "2"
            }
            assert len(new) == 3 and not new & old, (new, old)

            async def only_new_endpoints() -> bool:
                ready = ready_addresses(await kube.call("GET", ENDPOINTS))
                return sorted(ready) == sorted(new)

            await eventually(only_new_endpoints, "only new endpoints", timeout=15, interval=0.25)
            # kube-proxy follows the Endpoints it watches; a few fetches must all reach new pods.
            after: set[str] = set()
            for _ in range(6):
                after.add(
                    answered_by(await eventually(serving, "serving", timeout=5, interval=0.25))
                )
            assert after <= new, (after, new)
            print(
                f"rollout {rollout:.1f}s: {reads} Endpoints reads (fewest ready {fewest}), "
                f"{fetches} fetches, {refused} refused and retried, "
                f"answered by {len(answered & old)} old and {len(answered & new)} new pods"
            )

        proc.send_signal(signal.SIGINT)
        assert await wait_exit(proc, timeout=40) == 0, procs.err(proc)
