"""The resources the controllers here read and write, looked up once in the served table."""

from __future__ import annotations

from raftkube.apiserver.resources import RESOURCES, ResourceInfo, lookup


def resource(group: str, version: str, name: str) -> ResourceInfo:
    info = lookup(group, version, name)
    if info is None:
        raise LookupError(f"{group}/{version} {name} is not served")
    return info


NAMESPACES = resource("", "v1", "namespaces")
SERVICE_ACCOUNTS = resource("", "v1", "serviceaccounts")
CONFIG_MAPS = resource("", "v1", "configmaps")
LEASES = resource("coordination.k8s.io", "v1", "leases")


def namespaced_stored_resources() -> tuple[ResourceInfo, ...]:
    """Every served resource that lives in a namespace and is stored (so can be listed and
    deleted): what a namespace's deletion must empty."""
    return tuple(
        r
        for r in RESOURCES
        if r.namespaced and r.storage and "list" in r.verbs and "delete" in r.verbs
    )
