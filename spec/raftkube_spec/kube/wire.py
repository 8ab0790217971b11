"""A real API server's JSON answers, read as the model's results, for side-by-side checks.

A checker that drives a server and the model with the same requests turns each HTTP answer
into a :data:`~raftkube_spec.kube.responses.Result` with these functions and compares it with
the model's by equality. They only translate shapes; they decide nothing about correctness.

Two differences of shape are bridged here rather than in the model: upstream serializes the
items of a typed list without ``kind`` and ``apiVersion`` (the list carries them), and answers
the immediate deletion of most resources with a ``Status`` naming the object rather than the
object itself (see :func:`delete_result_matches`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from raftkube_spec.kube.errors import KubeError, Reason
from raftkube_spec.kube.objects import Object
from raftkube_spec.kube.responses import DeleteResponse, ListResponse, ObjectResponse
from raftkube_spec.kube.state import EventType, WatchEvent

_REASONS = {r.value: r for r in Reason}


def is_failure(body: Mapping[str, Any]) -> bool:
    return body.get("kind") == "Status" and body.get("status") == "Failure"


def error_from_status(status: Mapping[str, Any]) -> KubeError:
    """A failure ``Status``; ``ValueError`` for a reason or code the model never answers with
    (Forbidden, Unauthorized and the like belong to layers in front of the object API)."""
    reason = _REASONS.get(str(status.get("reason", "")))
    if reason is None or status.get("code") != reason.code:
        raise ValueError(
            f"status {status.get('code')} {status.get('reason')!r} is not an object API answer"
        )
    return KubeError(reason, str(status.get("message", "")))


def object_result(code: int, body: Mapping[str, Any]) -> ObjectResponse | KubeError:
    """The answer to a create, get, update or patch."""
    if is_failure(body):
        return error_from_status(body)
    return ObjectResponse(Object.of(body), code)


def list_result(body: Mapping[str, Any]) -> ListResponse | KubeError:
    """A list answer, its items given back the kind and apiVersion their list names."""
    if is_failure(body):
        return error_from_status(body)
    kind = str(body.get("kind", ""))
    item_kind = kind.removesuffix("List") if kind.endswith("List") else ""
    api_version = body.get("apiVersion")
    items = []
    for item in body.get("items") or ():
        typed = dict(item)
        if item_kind and "kind" not in typed:
            typed["kind"] = item_kind
        if api_version is not None and "apiVersion" not in typed:
            typed["apiVersion"] = api_version
        items.append(Object.of(typed))
    metadata = body.get("metadata") or {}
    remaining = metadata.get("remainingItemCount")
    return ListResponse(
        int(metadata.get("resourceVersion", "0")),
        tuple(items),
        str(metadata.get("continue", "")),
        None if remaining is None else int(remaining),
    )


def watch_event(document: Mapping[str, Any]) -> WatchEvent | KubeError:
    """One line of a watch stream; an ERROR event carries the failure ``Status``."""
    if document.get("type") == "ERROR":
        return error_from_status(document.get("object") or {})
    return WatchEvent(EventType(document["type"]), Object.of(document["object"]))


def delete_result_matches(
    model: DeleteResponse | KubeError, code: int, body: Mapping[str, Any]
) -> bool:
    """Whether a DELETE's HTTP answer is the one the model gives.

    A success ``Status`` stands for the deleted object: it must name the model's object (name
    and uid) and come with 200. Any object body must equal the model's object.
    """
    if is_failure(body):
        return error_from_status(body) == model
    if not isinstance(model, DeleteResponse) or code != model.code:
        return False
    if body.get("kind") == "Status":
        details = body.get("details") or {}
        meta = model.object.metadata
        return (
            model.deleted
            and body.get("status") == "Success"
            and details.get("name") == meta.get("name")
            and details.get("uid") == meta.get("uid")
        )
    return Object.of(body) == model.object
