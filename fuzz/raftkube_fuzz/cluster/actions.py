"""The user's actions: what ``kubectl apply``/``scale``/``delete`` would send, as the admin.

Workloads are named by the suite's steps from small sets, so that actions collide (a scale of
a ReplicaSet just deleted, a Service whose pods come and go): ReplicaSet ``rs-X`` and
Deployment ``dep-X`` select ``app=<their name>``, and Service ``svc-<target>`` selects the
pods of workload ``<target>``. Every pod runs the simulated runtime's default script (running
and ready at once, until stopped).

An action's outcome (the HTTP status, or the connection error) goes to the timeline; it is
never a failure of the run: a user's request may fail while the API server is down.
"""

from __future__ import annotations

from typing import Any

from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConnectionError

Obj = dict[str, Any]

RS_NAMES = ("rs-a", "rs-b")
DEPLOYMENT_NAMES = ("dep-a", "dep-b")
WORKLOADS = RS_NAMES + DEPLOYMENT_NAMES
NAMESPACE = "default"
IMAGE = "sim"


def _template(app: str, version: int) -> Obj:
    return {
        "metadata": {"labels": {"app": app}, "annotations": {"version": str(version)}},
        "spec": {"containers": [{"name": "app", "image": IMAGE}]},
    }


def replica_set(name: str, replicas: int) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": _template(name, 1),
        },
    }


def deployment(name: str, replicas: int, version: int) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": _template(name, version),
        },
    }


def service(target: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"svc-{target}", "namespace": NAMESPACE},
        "spec": {"selector": {"app": target}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


RESOURCES = {
    "ReplicaSet": "/apis/apps/v1/namespaces/default/replicasets",
    "Deployment": "/apis/apps/v1/namespaces/default/deployments",
    "Service": "/api/v1/namespaces/default/services",
}


async def apply(client: KubeClient, obj: Obj) -> str:
    """Create ``obj``, or (if it exists) patch its spec to match: what ``kubectl apply`` does
    for the fields set here. Returns how it went, for the timeline."""
    path = RESOURCES[obj["kind"]]
    try:
        await client.create(path, obj)
        return "created"
    except KubeAPIError as exc:
        if exc.code != 409:
            return f"create refused: {exc.code} {exc}"
    except KubeConnectionError as exc:
        return f"create failed: {exc}"
    return await _patch(client, path, obj)


async def _patch(client: KubeClient, path: str, obj: Obj) -> str:
    name = obj["metadata"]["name"]
    try:
        await client.call(
            "PATCH",
            f"{path}/{name}",
            body={"spec": obj["spec"]},
            content_type="application/merge-patch+json",
        )
        return "patched"
    except KubeAPIError as exc:
        return f"patch refused: {exc.code} {exc}"
    except KubeConnectionError as exc:
        return f"patch failed: {exc}"


async def delete(client: KubeClient, kind: str, name: str) -> str:
    """Delete with the default propagation (background: the garbage collector removes the
    dependents), as ``kubectl delete`` does."""
    try:
        await client.call("DELETE", f"{RESOURCES[kind]}/{name}")
        return "deleted"
    except KubeAPIError as exc:
        return f"delete refused: {exc.code} {exc}"
    except KubeConnectionError as exc:
        return f"delete failed: {exc}"
