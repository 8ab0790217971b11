"""The ControllerRef manager: which objects an owner controls, adopting and releasing as
its selector says (upstream's ``pkg/controller/controller_ref_manager.go``).

:func:`claim_action` is the decision for one object; :func:`claim_objects` carries it out for
a list: it keeps what the owner controls and still matches, patches a controller reference onto
matching orphans (after an uncached read confirms the owner is not being deleted, once per
claim) and patches its reference off objects that stopped matching. The patches carry the
object's uid, so they never apply to a namesake created meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from raftkube.apiserver.resources import ResourceInfo
from raftkube.controllers.controller_utils import (
    controller_ref_of,
    is_being_deleted,
    new_controller_ref,
)
from raftkube.kubeclient import KubeAPIError, KubeClient

Obj = dict[str, Any]

ClaimAction = Literal["keep", "ignore", "adopt", "release"]


def claim_action(owner: Obj, obj: Obj, matches: bool) -> ClaimAction:
    """``BaseControllerRefManager.ClaimObject``'s decision for ``obj``, given whether it
    matches ``owner``'s selector: owned and matching is kept; owned by us but no longer
    matching is released (unless we are being deleted); an orphan that matches is adopted
    (unless either side is being deleted); anything owned by someone else is ignored."""
    ref = controller_ref_of(obj)
    owner_meta = owner["metadata"]
    if ref is not None:
        if ref.get("uid") != owner_meta.get("uid"):
            return "ignore"
        if matches:
            return "keep"
        return "ignore" if is_being_deleted(owner) else "release"
    if is_being_deleted(owner) or not matches or is_being_deleted(obj):
        return "ignore"
    namespace = owner_meta.get("namespace")
    if namespace and namespace != (obj.get("metadata") or {}).get("namespace"):
        return "ignore"
    return "adopt"


def adopt_patch(owner: Obj, obj: Obj) -> Obj:
    """upstream's ``ownerRefControllerPatch``: add our controller reference; the object's uid
    makes the patch fail rather than apply to a namesake."""
    return {
        "metadata": {
            "ownerReferences": [new_controller_ref(owner)],
            "uid": obj["metadata"]["uid"],
        }
    }


def release_patch(owner: Obj, obj: Obj) -> Obj:
    """upstream's ``GenerateDeleteOwnerRefStrategicMergeBytes``: drop our reference."""
    return {
        "metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": owner["metadata"]["uid"]}],
            "uid": obj["metadata"]["uid"],
        }
    }


def recheck_deletion_timestamp(fresh: Obj, owner: Obj) -> str | None:
    """``RecheckDeletionTimestamp``'s verdict on an uncached read of the owner: None if it may
    adopt, else why not (worded as upstream)."""
    meta, fresh_meta = owner["metadata"], fresh.get("metadata") or {}
    if fresh_meta.get("uid") != meta.get("uid"):
        return (
            f"original {meta.get('namespace')}/{meta.get('name')} is gone: got uid "
            f"{fresh_meta.get('uid')}, wanted {meta.get('uid')}"
        )
    if fresh_meta.get("deletionTimestamp"):
        return (
            f"{meta.get('namespace')}/{meta.get('name')} has just been deleted at "
            f"{fresh_meta['deletionTimestamp']}"
        )
    return None


async def claim_objects(
    client: KubeClient,
    owner_resource: ResourceInfo,
    resource: ResourceInfo,
    owner: Obj,
    objs: Sequence[Obj],
    matches: Callable[[Obj], bool],
) -> list[Obj]:
    """``ClaimPods``/``ClaimReplicaSets``: the objects of ``objs`` that are ``owner``'s after
    adopting and releasing. An object gone meanwhile (404), or one that can no longer be
    released (422), is simply not claimed; any other failure is raised after the rest."""
    meta = owner["metadata"]
    namespace = str(meta.get("namespace") or "")
    claimed: list[Obj] = []
    errors: list[Exception] = []
    checked, refusal = False, None
    for obj in objs:
        action = claim_action(owner, obj, matches(obj))
        if action == "keep":
            claimed.append(obj)
            continue
        if action == "ignore":
            continue
        name = str(obj["metadata"]["name"])
        if action == "adopt":
            if not checked:
                fresh = await client.get(owner_resource, meta["name"], namespace=namespace)
                checked, refusal = True, recheck_deletion_timestamp(fresh, owner)
            if refusal is not None:
                errors.append(RuntimeError(f"can't adopt {resource.kind} {name}: {refusal}"))
                continue
        patch = adopt_patch(owner, obj) if action == "adopt" else release_patch(owner, obj)
        try:
            patched = await client.patch(resource, name, patch, namespace=namespace)
        except KubeAPIError as exc:
            if exc.code == 404 or (action == "release" and exc.code == 422):
                continue
            errors.append(exc)
            continue
        if action == "adopt":
            patched.setdefault("kind", resource.kind)
            patched.setdefault("apiVersion", resource.group_version)
            claimed.append(patched)
    if errors:
        raise errors[0]
    return claimed
