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
    """The ServiceAccount admission wants ``default/default`` (no controller runs here)."""
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    try:
        await admin.create("/api/v1/namespaces/default/serviceaccounts", account)
    except KubeAPIError as exc:
        if exc.code != 409:
            raise
