"""Helpers shared by the controllers' tests: objects, reading a real server, an idle
ListerWatcher (waiting is in :mod:`tests.helpers.polling`)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from raftkube.apiserver.resources import ResourceInfo
from raftkube.kubeclient import KubeAPIError, KubeClient

Obj = dict[str, Any]


def configmap(name: str, namespace: str = "default") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"k": name},
    }


class UnusedListWatch:
    """A ListerWatcher for an informer that is fed by hand and never run."""

    async def list(self, resource_version: str) -> Obj:
        raise AssertionError("not to be listed")

    def watch(self, resource_version: str, timeout: int) -> AbstractAsyncContextManager[Any]:
        raise AssertionError("not to be watched")


async def get_or_none(
    client: KubeClient, resource: ResourceInfo, name: str, namespace: str = ""
) -> Obj | None:
    """The object, or None on 404."""
    try:
        result: Obj = await client.get(resource, name, namespace=namespace)
    except KubeAPIError as exc:
        if exc.code == 404:
            return None
        raise
    return result
