"""The objects every cluster starts with, written by the API server at start if absent.

As upstream's API server does on start: the system namespaces (``default``, ``kube-system``,
``kube-public``, ``kube-node-lease``), the default RBAC policy (cluster roles and their
bindings, the kube-system roles), and the ``kubernetes`` Service in ``default`` with the first
address of the Service range, and its Endpoints pointing at this server. Each is created
through the server's own request path (defaults, admission and the IP reservation included)
as ``system:apiserver``, so a bootstrap object is exactly what a user would have created; one
that already exists is left as it is, so an operator's change survives restarts. Two servers
starting together may both try: the loser's create is AlreadyExists, which is fine.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from raftkube.apiserver.auth.bootstrap import bootstrap_objects
from raftkube.apiserver.auth.user import MASTERS, UserInfo
from raftkube.apiserver.request import Request
from raftkube.apiserver.resources import by_kind

logger = logging.getLogger("raftkube.apiserver")

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
APISERVER_USER = UserInfo("system:apiserver", groups=(MASTERS,))


def _path(obj: dict[str, Any]) -> str:
    info = by_kind(obj["apiVersion"], obj["kind"])
    assert info is not None, obj["kind"]
    prefix = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    ns = obj.get("metadata", {}).get("namespace")
    if info.namespaced:
        return f"{prefix}/namespaces/{ns}/{info.resource}"
    return f"{prefix}/{info.resource}"


def _create(obj: dict[str, Any]) -> Request:
    return Request(
        method="POST",
        path=_path(obj),
        query={},
        headers={"content-type": "application/json", "accept": "application/json"},
        body=json.dumps(obj).encode(),
    )


def _get(obj: dict[str, Any]) -> Request:
    return Request(
        method="GET",
        path=f"{_path(obj)}/{obj['metadata']['name']}",
        query={},
        headers={"accept": "application/json"},
    )


def startup_objects(service_ip: str, host: str, port: int) -> list[dict[str, Any]]:
    """What :func:`ensure_bootstrap_objects` creates, in an order that admission accepts
    (namespaces before what lives in them)."""
    namespaces = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        for name in SYSTEM_NAMESPACES
    ]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "clusterIP": service_ip,
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
            "sessionAffinity": "None",
            "type": "ClusterIP",
        },
    }
    endpoints = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
        },
        "subsets": [
            {
                "addresses": [{"ip": host}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            }
        ],
    }
    return [*namespaces, *bootstrap_objects(), service, endpoints]


async def ensure_bootstrap_objects(api: Any, service_ip: str, host: str, port: int) -> int:
    """Create every startup object that is missing; returns how many were created. Raises
    RuntimeError naming the object if one can be neither created nor found."""
    created = 0
    for obj in startup_objects(service_ip, host, port):
        # Look first: a create of what exists may be refused by admission before the store
        # could say AlreadyExists (the kubernetes Service's IP is already held by itself).
        existing = await api.handle_as(APISERVER_USER, _get(obj))
        if existing.status == 200:
            continue
        answer = await api.handle_as(APISERVER_USER, _create(obj))
        if answer.status == 201:
            created += 1
        elif answer.status != 409:
            name = obj["metadata"]["name"]
            detail = answer.body.decode(errors="replace")[:300]
            raise RuntimeError(f"cannot create {obj['kind']} {name}: {answer.status} {detail}")
    if created:
        logger.info("created %d startup objects", created)
    return created
