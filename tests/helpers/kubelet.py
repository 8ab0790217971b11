"""Pods, nodes and waits for the kubelet's tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from raftkube.kubeclient import KubeAPIError, KubeClient

Obj = dict[str, Any]
PODS = "/api/v1/namespaces/default/pods"


def pod(name: str, node: str, *containers: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "containers": list(containers), **spec},
    }


def container(name: str, image: str = "sim", **fields: Any) -> Obj:
    return {"name": name, "image": image, **fields}


async def wait_for_pod(
    client: KubeClient, name: str, check: Callable[[Obj], bool], timeout: float = 20
) -> Obj:
    """Poll the pod until ``check`` holds (real time: the API server is real)."""
    last: Obj = {}
    with trio.move_on_after(timeout):
        while True:
            try:
                last = await client.get(f"{PODS}/{name}")
            except KubeAPIError as exc:
                if exc.code != 404:
                    raise
                last = {}
            if check(last):
                return last
            await trio.sleep(0.05)
    raise AssertionError(f"pod {name} never satisfied the check; last seen: {last}")


def condition(obj: Obj, kind: str) -> str:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return ""


async def ensure_default_service_account(admin: KubeClient) -> None:
    """What the controllers would publish in ``default`` (none run here): the ServiceAccount
    that admission wants, and the ``kube-root-ca.crt`` ConfigMap its token volume projects."""
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    root_ca = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kube-root-ca.crt"},
        "data": {"ca.crt": "a CA certificate"},
    }
    for resource, obj in (("serviceaccounts", account), ("configmaps", root_ca)):
        try:
            await admin.create(f"/api/v1/namespaces/default/{resource}", obj)
        except KubeAPIError as exc:
            if exc.code != 409:
                raise
