"""Deletion rules that depend on the kind: grace periods, what "finalized" means, and what
changes on an object when its deletion becomes pending.

These are upstream's registry rules (``rest.BeforeDelete`` and the pod and namespace
strategies), kept apart from the per-kind defaulting and validation because the delete handler
is their only reader.
"""

from __future__ import annotations

from typing import Any

from raftkube.apiserver import errors
from raftkube.apiserver.resources import ResourceInfo

_CREATE_ON_UPDATE = frozenset({"endpoints", "events", "leases"})
_TERMINAL = frozenset({"Succeeded", "Failed"})


def create_on_update(info: ResourceInfo) -> bool:
    """Kinds whose PUT creates a missing object (upstream's ``AllowCreateOnUpdate``)."""
    return info.group in {"", "coordination.k8s.io"} and info.resource in _CREATE_ON_UPDATE


def grace_period(info: ResourceInfo, obj: dict[str, Any], requested: object) -> int:
    """The grace period a delete gets: only pods have one. A pod that never reached a node, or
    has finished, is deleted at once whatever was asked: nobody is running it."""
    if requested is not None and (not isinstance(requested, int) or isinstance(requested, bool)):
        raise errors.bad_request(f"gracePeriodSeconds must be an integer, got {requested!r}")
    if info.group or info.resource != "pods":
        return 0
    spec = obj.get("spec") or {}
    if not spec.get("nodeName") or (obj.get("status") or {}).get("phase") in _TERMINAL:
        return 0
    if requested is None:
        value = spec.get("terminationGracePeriodSeconds", 30)
        requested = value if isinstance(value, int) else 30
    assert isinstance(requested, int)
    # Upstream turns a requested 0 into 1 for a running pod unless forced; a negative is 0.
    return max(0, requested)


def held(info: ResourceInfo, obj: dict[str, Any]) -> bool:
    """Whether something besides metadata finalizers must let go before the object goes: a
    namespace's ``spec.finalizers`` (the namespace controller empties it, then finalizes)."""
    if not info.group and info.resource == "namespaces":
        return bool((obj.get("spec") or {}).get("finalizers"))
    return False


NAMESPACE_PURGE = (
    "The system is ensuring all content is removed from this namespace.  Upon completion, "
    "this namespace will automatically be purged by the system."
)
"""Upstream's reason (two spaces and all) for refusing to delete a namespace already being
emptied: ``kubectl delete namespace`` of a Terminating namespace prints it after
``Error from server (Conflict)``."""


def refuse_repeated_delete(info: ResourceInfo, obj: dict[str, Any]) -> None:
    """A namespace whose deletion is pending and that its ``spec.finalizers`` still hold is
    not deleted again: 409 Conflict, as upstream's namespace storage answers (its ``Delete``
    marks the namespace once, then refuses until the namespace controller has finalized it).
    Other kinds answer a repeated delete with the object as it stands."""
    if held(info, obj) and (obj.get("metadata") or {}).get("deletionTimestamp") is not None:
        name = str((obj.get("metadata") or {}).get("name") or "")
        raise errors.conflict("namespaces", name, NAMESPACE_PURGE)


def finalized(info: ResourceInfo, obj: dict[str, Any]) -> bool:
    """An object whose deletion is pending and that nothing holds any more: its next write
    is its removal (the last finalizer was just taken off, and no grace period runs)."""
    m = obj.get("metadata") or {}
    return (
        m.get("deletionTimestamp") is not None
        and not m.get("finalizers")
        and not m.get("deletionGracePeriodSeconds")
        and not held(info, obj)
    )


def mark_deleting(info: ResourceInfo, obj: dict[str, Any]) -> None:
    """What else changes when deletion becomes pending: a namespace turns ``Terminating``."""
    if not info.group and info.resource == "namespaces":
        obj.setdefault("status", {})["phase"] = "Terminating"
