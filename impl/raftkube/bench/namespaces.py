"""The namespace each Kubernetes benchmark run works in: a fresh one, named by the server from a
prefix, so runs never meet each other's objects and cleaning up is deleting it."""

from __future__ import annotations

from raftkube.apiserver.resources import ResourceInfo, lookup
from raftkube.kubeclient import KubeAPIError, KubeClient


def _core(resource: str) -> ResourceInfo:
    info = lookup("", "v1", resource)
    if info is None:
        raise LookupError(f"core/v1 {resource} is not a known resource")
    return info


NAMESPACES = _core("namespaces")
SERVICE_ACCOUNTS = _core("serviceaccounts")


async def open_namespace(client: KubeClient, prefix: str, *, for_pods: bool = True) -> str:
    """A new namespace named ``<prefix><random suffix>``. For pods it also gets its ``default``
    ServiceAccount at once: the ServiceAccount admission plugin refuses a pod without it, and
    the service-account controller (where one runs) makes it only a moment later."""
    ns = await client.create(
        NAMESPACES,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"generateName": prefix}},
    )
    name = str(ns["metadata"]["name"])
    if for_pods:
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
        try:
            await client.create(SERVICE_ACCOUNTS, account, namespace=name)
        except KubeAPIError as exc:
            if exc.code != 409:  # the controller was first
                raise
    return name
