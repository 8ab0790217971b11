"""The user's actions: what ``kubectl apply``/``scale``/``delete`` would send, as the admin.

Workloads are named by the suite's steps from small sets, so that actions collide (a scale of
a ReplicaSet just deleted, a Service whose pods come and go): ReplicaSet ``rs-X`` and
Deployment ``dep-X`` select ``app=<their name>``, and Service ``svc-<target>`` selects the
pods of workload ``<target>``. ReplicaSet :data:`CANARY` overlaps ``rs-a``
(:data:`RS_LABELS`). A ReplicaSet's pods request :data:`RS_CPU` each and run the
simulated runtime's default script (running and ready at once, until stopped); a
Deployment's are ready only a few seconds after they start (:data:`SLOW_READY_IMAGE`).

An action's outcome (the HTTP status, or the connection error) goes to the timeline; it is
never a failure of the run: a user's request may fail while the API server is down.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConnectionError

Obj = dict[str, Any]

CANARY = "rs-a-canary"
RS_NAMES = ("rs-a", "rs-b", CANARY)
RS_LABELS = {CANARY: {"app": "rs-a", "track": "canary"}}
"""A ReplicaSet's selector and pod labels where they are not ``app=<its name>``: the canary's
are a superset of ``rs-a``'s, so ``rs-a``'s selector matches the canary's pods while the
canary owns them (upstream's overlapping selectors, as a canary beside its stable track is
often deployed). Upstream's ReplicaSet controller leaves a pod another controller owns alone,
and its garbage collector goes by ownerReferences, so deleting ``rs-a`` must leave them."""
DEPLOYMENT_NAMES = ("dep-a", "dep-b")
WORKLOADS = ("rs-a", "rs-b", *DEPLOYMENT_NAMES)
"""The workloads a Service may front (``svc-rs-a`` fronts the canary's pods too)."""
NAMESPACE = "default"
TEAM = "team-a"
"""The user's second namespace: created before the first step, deleted and created again by
steps (``kubectl delete namespace``, ``kubectl create namespace``); workloads and accounts
may go in either."""
NAMESPACES = (NAMESPACE, TEAM)
IMAGE = "sim"
SLOW_READY_IMAGE = "sim-slow-ready"
"""The Deployments' image: its container passes its readiness probe only
:data:`SLOW_READY_AFTER` seconds after it starts (the kubelets' runtimes are scripted so), so
each new pod is Running with an IP and not Ready for a while, as a real server warming up
is: what the endpoints controller must keep out of a Service's ready addresses."""
SLOW_READY_AFTER = 3.0
SLOW_STOP_IMAGE = "sim-slow-stop"
"""The image of :data:`TEAM`'s ReplicaSets: its container exits only :data:`SLOW_STOP_AFTER`
seconds after SIGTERM (a server draining its connections), so a pod being deleted stays
there, terminating, for that long: what a namespace's deletion must wait for before the
namespace controller may finalize it. ``default``'s pods stop at once, as before."""
SLOW_STOP_AFTER = 5.0

READINESS_PROBE = {"exec": {"command": ["ready"]}, "periodSeconds": 1, "failureThreshold": 1}


RS_CPU = "1500m"
"""What each ReplicaSet's pod requests: two fit on a simulated node (4 cpu), a third does not,
so a few ReplicaSet pods fill a node and the scheduler must count what it has already placed
(and a full cluster leaves pods Pending, which reconciliation accepts: see
:mod:`raftkube_fuzz.checks.reconciliation`)."""


def _template(
    labels: dict[str, str], version: int, image: str = IMAGE, cpu: str | None = None
) -> Obj:
    container: Obj = {"name": "app", "image": image}
    if cpu is not None:
        container["resources"] = {"requests": {"cpu": cpu}}
    if image == SLOW_READY_IMAGE:
        container["readinessProbe"] = READINESS_PROBE
    return {
        "metadata": {"labels": labels, "annotations": {"version": str(version)}},
        "spec": {"containers": [container]},
    }


def pinned_pod(node: str) -> Obj:
    """Pod ``pinned-<node>``, created already bound to ``node`` (``spec.nodeName`` set by the
    user, as a DaemonSet or ``kubectl run --overrides`` does): the scheduler never judges it,
    so only the kubelet's admission keeps it off a node without room. It requests what a
    ReplicaSet's pod does."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"pinned-{node}", "namespace": NAMESPACE, "labels": {"app": "pinned"}},
        "spec": {
            "nodeName": node,
            "containers": [
                {"name": "app", "image": IMAGE, "resources": {"requests": {"cpu": RS_CPU}}}
            ],
        },
    }


def replica_set(name: str, replicas: int, namespace: str = NAMESPACE) -> Obj:
    labels = RS_LABELS.get(name, {"app": name})
    image = SLOW_STOP_IMAGE if namespace == TEAM else IMAGE
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": _template(dict(labels), 1, image, cpu=RS_CPU),
        },
    }


def deployment(name: str, replicas: int, version: int, namespace: str = NAMESPACE) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": _template({"app": name}, version, SLOW_READY_IMAGE),
        },
    }


def service(target: str, namespace: str = NAMESPACE) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"svc-{target}", "namespace": namespace},
        "spec": {"selector": {"app": target}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def namespace_object(name: str) -> Obj:
    """What ``kubectl create namespace NAME`` sends (its ``spec`` is the API server's to fill:
    the ``kubernetes`` finalizer)."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "spec": {}}


NODES = "/api/v1/nodes"
NAMESPACES_PATH = "/api/v1/namespaces"

COLLECTIONS = {
    "Pod": "/api/v1/namespaces/{}/pods",
    "ReplicaSet": "/apis/apps/v1/namespaces/{}/replicasets",
    "Deployment": "/apis/apps/v1/namespaces/{}/deployments",
    "Service": "/api/v1/namespaces/{}/services",
}


def collection(kind: str, namespace: str) -> str:
    """The collection path of ``kind`` in ``namespace``."""
    return COLLECTIONS[kind].format(namespace)


async def told(verb: str, request: Awaitable[object], done: str) -> str:
    """Send ``request`` and say how it went, for the timeline, as kubectl would print it:
    ``done``, or ``verb`` refused (with the API's code and message) or failed (no answer)."""
    try:
        await request
    except KubeAPIError as exc:
        return f"{verb} refused: {exc.code} {exc}"
    except KubeConnectionError as exc:
        return f"{verb} failed: {exc}"
    return done


async def apply(client: KubeClient, obj: Obj) -> str:
    """Create ``obj``, or (if it exists) patch its spec to match: what ``kubectl apply`` does
    for the fields set here. Returns how it went, for the timeline (the user's client is
    traced into the object histories like every other client)."""
    path = collection(obj["kind"], str(obj["metadata"].get("namespace") or ""))
    try:
        await client.create(path, obj)
        return "created"
    except KubeAPIError as exc:
        if exc.code != 409:
            return f"create refused: {exc.code} {exc}"
    except KubeConnectionError as exc:
        return f"create failed: {exc}"
    request = client.call(
        "PATCH",
        f"{path}/{obj['metadata']['name']}",
        body={"spec": obj["spec"]},
        content_type="application/merge-patch+json",
    )
    return await told("patch", request, "patched")


async def delete(
    client: KubeClient,
    kind: str,
    name: str,
    cascade: str = "background",
    namespace: str = NAMESPACE,
) -> str:
    """Delete as ``kubectl delete --cascade=<cascade>`` does: ``background`` (the object goes
    at once and the garbage collector removes its dependents after it) or ``foreground`` (the
    object stays, marked, until the collector has deleted every dependent that blocks it).
    Foreground is sent as kubectl sends it, a DeleteOptions body; background sends none (the
    API's default for every kind here), where kubectl names it: the same but for an object
    already being deleted in the foreground, which kubectl's explicit policy switches to
    background and this leaves as it is. ``orphan`` is not used: pods left without an owner
    would be adopted or stay, which the end check does not model."""
    if cascade not in ("background", "foreground"):
        raise ValueError(f"cascade {cascade!r}: not background or foreground")
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}
    foreground = cascade == "foreground"
    request = client.call(
        "DELETE", f"{collection(kind, namespace)}/{name}", body=options if foreground else None
    )
    return await told("delete", request, "deleted")


async def cordon(client: KubeClient, node: str, unschedulable: bool) -> str:
    """``kubectl cordon NODE`` (``unschedulable``) or ``kubectl uncordon NODE``, as kubectl
    1.32's drain helper does it: GET the Node; if ``spec.unschedulable`` already says so,
    nothing is sent ("already cordoned"); else the strategic merge patch kubectl computes
    from the old and new Node, ``{"spec":{"unschedulable":true}}`` to cordon and
    ``{"spec":{"unschedulable":null}}`` to uncordon (``false`` is omitted from a Node's
    JSON, so the two-way patch deletes the field). Returns kubectl's line for the timeline.
    Not recorded for the object linearizability check, whose model holds the user's
    workloads, not Nodes (which the kubelets and the node lifecycle controller write too)."""
    verb = "cordoned" if unschedulable else "uncordoned"
    try:
        current = await client.get(f"{NODES}/{node}")
        if bool((current.get("spec") or {}).get("unschedulable")) == unschedulable:
            return f"node/{node} already {verb}"
        patch = {"spec": {"unschedulable": True if unschedulable else None}}
        await client.patch(f"{NODES}/{node}", "", patch, patch_type="strategic")
        return f"node/{node} {verb}"
    except KubeAPIError as exc:
        return f"{verb[:-2]} refused: {exc.code} {exc}"
    except KubeConnectionError as exc:
        return f"{verb[:-2]} failed: {exc}"
