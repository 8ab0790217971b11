"""Subresources: ``scale``, pods' ``binding`` and ``eviction``, service accounts' ``token``,
namespaces' ``finalize``. (``status`` is the object's own update path with the status rule; see
:mod:`~raftkube.apiserver.handlers.writes`.)

Each is a read-modify-write of its parent conditioned on the revision it read, so a scale that
races a rollout, or two schedulers binding one pod, cannot both land.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

from raftkube.apiserver import errors, patch
from raftkube.apiserver.auth.tokens import PodRef
from raftkube.apiserver.encoding import decode_object, respond, success_status
from raftkube.apiserver.handlers import deletes, strategy
from raftkube.apiserver.handlers.context import Call
from raftkube.apiserver.objects import meta, parse_rv, rfc3339, rv_of
from raftkube.apiserver.request import Response, StreamingResponse
from raftkube.apiserver.resources import lookup

_SCALE_GV = "autoscaling/v1"


def _scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    m = meta(obj)
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = spec.get("selector") or {}
    if obj.get("kind") == "ReplicationController":
        text = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    else:
        text = strategy.selector_string(selector)
    return {
        "kind": "Scale",
        "apiVersion": _SCALE_GV,
        "metadata": {
            "name": m.get("name"),
            "namespace": m.get("namespace"),
            "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"),
            "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": {"replicas": int(spec.get("replicas", 0))},
        "status": {"replicas": int(status.get("replicas", 0)), "selector": text},
    }


async def get_scale(call: Call) -> Response:
    obj = await call.services.store.get(call.resource, call.namespace, call.name)
    return respond(200, _scale_of(obj), call.request)


async def write_scale(call: Call) -> Response:
    """PUT or PATCH of ``/scale``: only ``spec.replicas`` reaches the parent."""
    r = call.resource
    svc = call.services
    for _ in range(5):
        parent = await svc.store.get(r, call.namespace, call.name)
        scale = _scale_of(parent)
        if call.request.method == "PATCH":
            ctype = call.request.headers.get("content-type", "").split(";", 1)[0].strip()
            wanted = patch.apply_patch(ctype, copy.deepcopy(scale), call.request.body, None)
        else:
            wanted = decode_object(call.request, "Scale")
        pinned = str(meta(wanted).get("resourceVersion") or "")
        if pinned and parse_rv(pinned) != rv_of(parent):
            raise errors.conflict(r.resource, call.name, errors.OPTIMISTIC_LOCK, r.group)
        replicas = (wanted.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid(
                "Scale",
                call.name,
                [errors.Cause("spec.replicas", "FieldValueInvalid",
                              f"Invalid value: {replicas}: must be greater than or equal to 0")],
                "autoscaling",
            )  # fmt: skip
        updated = copy.deepcopy(parent)
        updated.setdefault("spec", {})["replicas"] = replicas
        strategy.prepare_update(r, updated, parent, "")
        if call.dry_run:
            return respond(200, _scale_of(updated), call.request)
        try:
            stored = await svc.store.update(r, updated, expected_rv=rv_of(parent))
        except errors.APIError as exc:
            if exc.reason == "Conflict" and not pinned:
                continue
            raise
        return respond(200, _scale_of(stored), call.request)
    raise errors.conflict(r.resource, call.name, errors.OPTIMISTIC_LOCK, r.group)


async def bind(call: Call) -> Response:
    """POST ``pods/{name}/binding`` (or ``bindings``): set ``spec.nodeName`` once, as upstream's
    ``assignPod``: binding a pod that is already bound, or being deleted, is refused."""
    body = decode_object(call.request, "Binding")
    pod_name = call.name or str(meta(body).get("name") or "")
    target = body.get("target") or {}
    node = target.get("name") if isinstance(target, dict) else None
    if not node:
        raise errors.invalid(
            "Binding",
            pod_name,
            [errors.Cause("target.name", "FieldValueRequired", "Required value")],
        )
    pods = lookup("", "v1", "pods")
    assert pods is not None
    svc = call.services
    pod = await svc.store.get(pods, call.namespace, pod_name)
    pm = meta(pod)
    uid = (meta(body).get("uid") or "") if isinstance(body.get("metadata"), dict) else ""
    if uid and uid != pm.get("uid"):
        raise errors.conflict("pods", pod_name, "the UID in the binding does not match the pod")
    if pm.get("deletionTimestamp"):
        raise errors.conflict(
            "pods", pod_name, "pod is being deleted, cannot be assigned to a host"
        )
    current = (pod.get("spec") or {}).get("nodeName")
    if current:
        raise errors.conflict(
            "pods", pod_name, f"pod {pod_name} is already assigned to node {current!r}"
        )
    if call.dry_run:
        return respond(201, success_status(), call.request)
    updated = copy.deepcopy(pod)
    updated.setdefault("spec", {})["nodeName"] = node
    for key, value in (meta(body).get("annotations") or {}).items():
        meta(updated).setdefault("annotations", {})[key] = value
    conditions = [
        c for c in (updated.setdefault("status", {}).get("conditions") or [])
        if c.get("type") != "PodScheduled"
    ]  # fmt: skip
    conditions.append(
        {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
         "lastTransitionTime": rfc3339(svc.wall())}
    )  # fmt: skip
    updated["status"]["conditions"] = conditions
    await svc.store.update(pods, updated, expected_rv=rv_of(pod))
    return respond(201, success_status(), call.request)


async def evict(call: Call) -> Response:
    """POST ``pods/{name}/eviction``: a delete with the eviction's DeleteOptions. No
    PodDisruptionBudgets are served, so nothing can refuse an eviction here."""
    body = decode_object(call.request, "Eviction")
    opts = body.get("deleteOptions") or {}
    if not isinstance(opts, dict):
        raise errors.bad_request("deleteOptions must be an object")
    await deletes.delete_one(call, call.name, opts, dry_run=call.dry_run)
    return respond(201, success_status(), call.request)


async def request_token(call: Call) -> Response:
    """POST ``serviceaccounts/{name}/token``: a TokenRequest answered with a signed token bound
    to the account's uid (and to a pod, if the request names one)."""
    body = decode_object(call.request, "TokenRequest")
    spec = body.get("spec") or {}
    svc = call.services
    account = await svc.store.get(call.resource, call.namespace, call.name)
    seconds = spec.get("expirationSeconds") or 3600
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise errors.bad_request("spec.expirationSeconds must be an integer")
    audiences = list(spec.get("audiences") or [])
    bound = spec.get("boundObjectRef") or None
    pod = None
    if bound:
        if bound.get("kind") != "Pod":
            raise errors.bad_request("boundObjectRef: only Pod is supported")
        pods = lookup("", "v1", "pods")
        assert pods is not None
        pod = await svc.store.get(pods, call.namespace, str(bound.get("name")))
        if bound.get("uid") and bound["uid"] != meta(pod).get("uid"):
            raise errors.conflict("pods", str(bound.get("name")), "the UID does not match")
    issued = svc.tokens.issue(
        namespace=call.namespace,
        name=call.name,
        uid=str(meta(account).get("uid")),
        audiences=audiences,
        expiration_seconds=seconds,
        bound_pod=None if pod is None else PodRef(meta(pod)["name"], str(meta(pod).get("uid"))),
    )
    out = {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": call.name, "namespace": call.namespace,
                     "creationTimestamp": None},
        "spec": {"audiences": list(issued.audiences), "expirationSeconds": seconds,
                 "boundObjectRef": bound},
        "status": issued.status(),
    }  # fmt: skip
    return respond(201, out, call.request)


_LOG_PARAMS = ("follow", "previous", "tailLines", "limitBytes", "timestamps", "sinceSeconds")


async def pod_log(call: Call) -> Response | StreamingResponse:
    """GET ``pods/{name}/log``: proxied to the kubelet of the pod's node, as upstream does
    (``https://{InternalIP}:{daemonEndpoints.kubeletEndpoint.Port}/containerLogs/...``), with
    this server's kubelet client certificate; ``follow=true`` streams until the container
    exits or the client leaves."""
    svc = call.services
    pod = await svc.store.get(call.resource, call.namespace, call.name)
    spec = pod.get("spec") or {}
    node_name = spec.get("nodeName")
    if not node_name:
        raise errors.bad_request(f"pod {call.name} does not have a host assigned")
    names = [str(c.get("name")) for c in spec.get("containers") or []]
    container = call.param("container")
    if not container:
        if len(names) != 1:
            raise errors.bad_request(
                f"a container name must be specified for pod {call.name}, choose one of: "
                f"[{' '.join(names)}]"
            )
        container = names[0]
    elif container not in names:
        raise errors.bad_request(f"container {container} is not valid for pod {call.name}")
    nodes = lookup("", "v1", "nodes")
    assert nodes is not None
    node = await svc.store.get(nodes, "", str(node_name))
    status = node.get("status") or {}
    address = next(
        (a.get("address") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"),
        None,
    )
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not address or not port or svc.kubelet_client is None:
        raise errors.APIError(
            503, "ServiceUnavailable", f'no kubelet endpoint is known for node "{node_name}"'
        )
    query = {k: call.param(k) for k in _LOG_PARAMS if call.param(k)}
    path = f"/containerLogs/{call.namespace}/{call.name}/{container}"
    client = svc.kubelet_client(str(address), int(port))
    try:
        conn, code, _headers = await client.open("GET", path, query=query)
    except Exception as exc:  # the kubelet is unreachable: upstream's 500 names the dial
        await client.aclose()
        raise errors.internal(f'Get "https://{address}:{port}{path}": {exc}') from None
    if code != 200:
        body = b""
        while (piece := await conn.receive_data()) is not None:
            body += piece
        await client.pool.release(conn, reusable=False)
        await client.aclose()
        message = body.decode(errors="replace").strip() or f"kubelet answered {code}"
        raise errors.APIError(code, "BadRequest" if code == 400 else "NotFound", message)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while (piece := await conn.receive_data()) is not None:
                yield piece
        finally:
            await client.pool.release(conn, reusable=False)
            await client.aclose()

    return StreamingResponse(200, (("content-type", "text/plain"),), chunks())
