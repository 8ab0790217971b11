"""delete and deletecollection, with upstream's graceful deletion and finalizers.

A delete removes the object from the store at once unless something must happen first:
- it has finalizers (or the request asks for ``Orphan``/``Foreground`` propagation, which add
  the ``orphan``/``foregroundDeletion`` finalizer): it gets a ``deletionTimestamp`` and stays,
  and the update that removes its last finalizer deletes it;
- it is a pod bound to a node and not finished: it gets ``deletionTimestamp`` = now + grace
  period and ``deletionGracePeriodSeconds``, and its kubelet deletes it with grace 0 once its
  containers have stopped. A pod that never reached a node is deleted at once (nobody runs it).
Repeating a delete may shorten a pending grace period, never lengthen it.
"""

from __future__ import annotations

import json
from typing import Any

from raftkube.apiserver import errors
from raftkube.apiserver.encoding import media_type, respond
from raftkube.apiserver.handlers import lifecycle, strategy
from raftkube.apiserver.handlers.context import Call
from raftkube.apiserver.handlers.reads import selectors_of
from raftkube.apiserver.objects import meta, rfc3339, rv_of
from raftkube.apiserver.request import Response

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
_POLICIES = {"Orphan", "Background", "Foreground"}


def delete_options(call: Call) -> dict[str, Any]:
    """DeleteOptions from the body (kubectl sends them there) or the query string."""
    opts: dict[str, Any] = {}
    body = call.request.body.strip()
    if body:
        if media_type(call.request.headers.get("content-type", "application/json")) not in {
            "application/json",
            "",
        }:
            raise errors.unsupported_media_type(call.request.headers.get("content-type", ""))
        try:
            value = json.loads(body)
        except json.JSONDecodeError as exc:
            raise errors.bad_request(f"invalid DeleteOptions: {exc}") from None
        if not isinstance(value, dict):
            raise errors.bad_request("invalid DeleteOptions: not a JSON object")
        opts.update(value)
    grace = call.param("gracePeriodSeconds")
    if grace:
        try:
            opts["gracePeriodSeconds"] = int(grace)
        except ValueError:
            raise errors.bad_request(f'invalid gracePeriodSeconds "{grace}"') from None
    if call.param("propagationPolicy"):
        opts["propagationPolicy"] = call.param("propagationPolicy")
    if call.param("orphanDependents"):
        opts["orphanDependents"] = call.param("orphanDependents").lower() == "true"
    policy = opts.get("propagationPolicy")
    if policy is not None and policy not in _POLICIES:
        raise errors.bad_request(
            f'propagationPolicy: Unsupported value: "{policy}": supported values: "Background", '
            '"Foreground", "Orphan"'
        )
    if opts.get("dryRun"):
        call_dry = opts["dryRun"]
        if call_dry != ["All"]:
            raise errors.bad_request(f"unsupported dry run value {call_dry}")
    return opts


async def delete(call: Call) -> Response:
    opts = delete_options(call)
    return await delete_one(call, call.name, opts, dry_run=call.dry_run or bool(opts.get("dryRun")))


DELETE_ATTEMPTS = 64
"""How often a delete is retried on a newer version of the object before giving up with 409:
as for a patch (``writes.PATCH_ATTEMPTS``), upstream's GuaranteedUpdate retries a delete
without bound, so a client deleting a pod whose kubelet keeps writing its status never sees
409."""


class _FinalConflict(Exception):
    """A 409 no read of a newer version resolves: the client's preconditions do not hold on
    the object as read, or a namespace is still being emptied."""

    def __init__(self, error: errors.APIError) -> None:
        super().__init__(error.message)
        self.error = error


async def delete_one(call: Call, name: str, opts: dict[str, Any], *, dry_run: bool) -> Response:
    for _ in range(DELETE_ATTEMPTS):
        try:
            return await _delete_once(call, name, opts, dry_run=dry_run)
        except _FinalConflict as failed:
            raise failed.error from None
        except errors.APIError as exc:
            # Lost a race with another writer between the read and the write: read again and
            # judge the preconditions on the newer version, as upstream's conditionalDelete
            # does (a uid precondition still holds after a racing status write, a
            # resourceVersion one no longer does). A namespace still being emptied is a
            # conflict no retry resolves (a _FinalConflict, above).
            if exc.reason != "Conflict":
                raise
    raise errors.conflict(call.resource.resource, name, errors.OPTIMISTIC_LOCK, call.resource.group)


async def _delete_once(call: Call, name: str, opts: dict[str, Any], *, dry_run: bool) -> Response:
    r = call.resource
    svc = call.services
    current = await svc.store.get(r, call.namespace, name)
    pre = opts.get("preconditions") or {}
    m = meta(current)
    # Upstream's rest.BeforeDelete judges the preconditions first, and names the object's
    # kind (not its resource) in the conflict.
    if pre.get("uid") and pre["uid"] != m.get("uid"):
        raise _FinalConflict(
            errors.conflict(
                r.kind,
                name,
                f"the UID in the precondition ({pre['uid']}) does not match the UID in record "
                f"({m.get('uid')}). The object might have been deleted and then recreated",
                r.group,
            )
        )
    if pre.get("resourceVersion") and str(pre["resourceVersion"]) != m.get("resourceVersion"):
        raise _FinalConflict(
            errors.conflict(
                r.kind,
                name,
                f"the ResourceVersion in the precondition ({pre['resourceVersion']}) does not "
                f"match the ResourceVersion in record ({m.get('resourceVersion')}). The object "
                "might have been modified",
                r.group,
            )
        )
    await svc.admission.admit_delete(call, current)
    try:
        lifecycle.refuse_repeated_delete(r, current)
    except errors.APIError as exc:
        raise _FinalConflict(exc) from None
    finalizers = gc_finalizers(list(m.get("finalizers") or []), opts)
    grace = lifecycle.grace_period(r, current, opts.get("gracePeriodSeconds"))
    if not finalizers and not grace and not lifecycle.held(r, current):
        if dry_run:
            return respond(200, current, call.request)
        gone = await svc.store.delete(r, call.namespace, name, expected_rv=rv_of(current))
        await svc.admission.deleted(call, gone)
        return respond(200, gone, call.request)
    # Deletion is pending: mark the object, keep the earliest deadline.
    updated = dict(current)
    um = dict(m)
    updated["metadata"] = um
    now = svc.wall()
    pending = um.get("deletionGracePeriodSeconds")
    if um.get("deletionTimestamp") is None or (grace or 0) < (pending or 0):
        um["deletionTimestamp"] = rfc3339(now + (grace or 0))
        um["deletionGracePeriodSeconds"] = grace or 0
    um["finalizers"] = finalizers
    lifecycle.mark_deleting(r, updated)
    if dry_run:
        return respond(200, updated, call.request)
    if updated == current:
        return respond(200, current, call.request)
    stored = await svc.store.update(r, updated, expected_rv=rv_of(current))
    return respond(200, stored, call.request)


def gc_finalizers(finalizers: list[str], opts: dict[str, Any]) -> list[str]:
    """The finalizers a delete leaves for the garbage collector: upstream's
    ``deletionFinalizersForGarbageCollection`` with every resource's default policy "delete
    dependents". ``orphan`` and ``foregroundDeletion`` are both taken off and put back as the
    request's policy (or ``orphanDependents``) says, or, without one, as the object already
    asked; the list is kept as it is when that changes nothing."""
    policy = opts.get("propagationPolicy")
    orphan_dependents = opts.get("orphanDependents")
    present = [f for f in finalizers if f in (ORPHAN, FOREGROUND)]
    if orphan_dependents is not None:
        orphan, foreground = bool(orphan_dependents), False
    elif policy is not None:
        orphan, foreground = policy == "Orphan", policy == "Foreground"
    else:
        # The first of the two in the object's list decides (validation forbids both).
        orphan = bool(present) and present[0] == ORPHAN
        foreground = bool(present) and present[0] == FOREGROUND
    kept = [f for f in finalizers if f not in (ORPHAN, FOREGROUND)]
    kept += [ORPHAN] if orphan else []
    kept += [FOREGROUND] if foreground else []
    return finalizers if set(kept) == set(finalizers) else kept


async def delete_collection(call: Call) -> Response:
    """Delete every object the selectors pick, one by one, as upstream does; answers the list
    of what was deleted or marked."""
    opts = delete_options(call)
    dry_run = call.dry_run or bool(opts.get("dryRun"))
    label_sel, field_sel = selectors_of(call)
    r = call.resource
    result = await call.services.store.list(
        r,
        call.namespace,
        label_selector=label_sel,
        field_selector=field_sel,
        field_fn=strategy.field_fn(r),
    )
    items = []
    for obj in result.items:
        try:
            answer = await delete_one(call, meta(obj)["name"], opts, dry_run=dry_run)
        except errors.APIError as exc:
            if exc.code == 404:  # deleted meanwhile: what the caller wanted
                continue
            raise
        items.append(json.loads(answer.body))
    body = {
        "kind": r.list_kind,
        "apiVersion": r.group_version,
        "metadata": {"resourceVersion": str(result.resource_version)},
        "items": items,
    }
    return respond(200, body, call.request)
