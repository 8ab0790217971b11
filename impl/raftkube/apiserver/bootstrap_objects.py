"""The objects every cluster starts with, written by the API server at start if absent.

As upstream's API server does on start: the system namespaces (``default``, ``kube-system``,
``kube-public``, ``kube-node-lease``), the default RBAC policy (cluster roles and their
bindings, the kube-system roles), and the ``kubernetes`` Service in ``default`` with the first
address of the Service range, and its Endpoints pointing at this server. Each is created
through the server's own request path (defaults, admission and the IP reservation included)
as ``system:apiserver``, so a bootstrap object is exactly what a user would have created; one
that already exists is left as it is, so an operator's change survives restarts.

Two servers starting together may both try. The loser's create is AlreadyExists, which is
fine, or is refused before the store could say so: the ``kubernetes`` Service's IP is
reserved by the winner before its Service is written, so the loser's create is 422 ("provided
IP is already allocated") while its look found nothing. Upstream's controllers for these
objects log such an error and try again (the kubernetes Service every 10 s, the RBAC
bootstrap every second for 30 s, fatal only then); so does this: a failed create is looked
for again and retried every :data:`RETRY_INTERVAL` until :data:`GIVE_UP_AFTER`, which also
rides out a store that is briefly away while the server starts.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from raftkube.apiserver.auth.bootstrap import bootstrap_objects
from raftkube.apiserver.auth.user import MASTERS, UserInfo
from raftkube.apiserver.request import Request
from raftkube.apiserver.resources import by_kind
from raftkube.clock import Clock, sleep_for

logger = logging.getLogger("raftkube.apiserver")

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
APISERVER_USER = UserInfo("system:apiserver", groups=(MASTERS,))

RETRY_INTERVAL = 1.0
"""Seconds between tries of an object that could be neither created nor found (upstream's
RBAC bootstrap hook polls every second)."""
GIVE_UP_AFTER = 30.0
"""Seconds after which the server gives up on one (upstream's RBAC hook gives up after 30 s
and the server exits)."""


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


async def ensure_bootstrap_objects(
    api: Any, service_ip: str, host: str, port: int, clock: Clock
) -> int:
    """Create every startup object that is missing; returns how many were created. Raises
    RuntimeError naming the object if one can be neither created nor found for
    :data:`GIVE_UP_AFTER` seconds of ``clock``."""
    created = 0
    for obj in startup_objects(service_ip, host, port):
        deadline = clock.now() + GIVE_UP_AFTER
        while True:
            status, detail = await _ensure(api, obj)
            if status == 201:
                created += 1
            if status in (200, 201, 409):
                break
            name = obj["metadata"]["name"]
            failure = f"cannot create {obj['kind']} {name}: {status} {detail}"
            if clock.now() + RETRY_INTERVAL > deadline:
                raise RuntimeError(failure)
            logger.warning("%s; trying again in %s s", failure, RETRY_INTERVAL)
            await sleep_for(clock, RETRY_INTERVAL)
    if created:
        logger.info("created %d startup objects", created)
    return created


async def _ensure(api: Any, obj: dict[str, Any]) -> tuple[int, str]:
    """Look for ``obj``, and create it if it is not there: 200 (found), 201 (created), 409
    (someone else created it meanwhile) or the create's failure and its detail."""
    # Look first: a create of what exists may be refused by admission before the store
    # could say AlreadyExists (the kubernetes Service's IP is already held by itself).
    existing = await api.handle_as(APISERVER_USER, _get(obj))
    if existing.status == 200:
        return 200, ""
    answer = await api.handle_as(APISERVER_USER, _create(obj))
    return answer.status, answer.body.decode(errors="replace")[:300]
