"""Delete: preconditions, graceful deletion, finalizers and the propagation policy.

This is upstream's ``Store.Delete`` with ``rest.BeforeDelete``,
``updateForGracefulDeletionAndFinalizers``, ``markAsDeleting`` and
``deletionFinalizersForGarbageCollection``, collapsed into one atomic step:

1. A missing object is 404. A uid or resourceVersion precondition unlike the stored one is 409
   (worded with the object's kind, as ``BeforeDelete`` words it).
2. Grace: a negative grace period counts as 1 second. An object already being deleted with a
   grace period still running may only have it shortened (the deletionTimestamp moves by the
   difference); asking for the same or longer changes nothing (and answers 200, as every delete
   does). Otherwise only pods delete gracefully: the grace period is the request's, else the pod's
   ``spec.terminationGracePeriodSeconds``, else 0, and 0 for an unscheduled pod (no
   ``spec.nodeName``) or one whose ``status.phase`` is Succeeded or Failed. A graceful deletion
   sets ``deletionTimestamp = now + grace`` and ``deletionGracePeriodSeconds = grace``.
3. Propagation: ``Orphan`` puts the ``orphan`` finalizer on the object, ``Foreground`` puts
   ``foregroundDeletion``, ``Background`` removes both; without a policy the finalizers stay.
4. An object left with finalizers and no running grace period is marked as being deleted:
   deletionTimestamp becomes ``now`` (unless it is already set no later), the grace period 0.
5. Generation goes up by one when deletionTimestamp is first set.
6. The object is written if it changed, and then removed, unless finalizers remain or a grace
   period is running. A graceful deletion with grace 0 therefore takes two revisions, a MODIFIED
   event carrying the deletionTimestamp and then the DELETED one, exactly as upstream.

Every resource's default garbage-collection policy is taken to be "delete dependents"
(upstream's default for all current built-in resources). Not modelled: a namespace's own
two-phase deletion (``spec.finalizers`` and phase Terminating, driven by its controller),
``dryRun`` (a dry run is a read here), and deletecollection, which upstream runs as one delete
per object, not atomically, so it reaches the model as those deletes.
"""

from __future__ import annotations

from raftkube_spec.kube import errors
from raftkube_spec.kube.errors import KubeError
from raftkube_spec.kube.objects import JSONObject, Object, metadata_of
from raftkube_spec.kube.requests import Delete, PropagationPolicy
from raftkube_spec.kube.responses import DeleteResponse
from raftkube_spec.kube.state import KubeState
from raftkube_spec.kube.timefmt import parse_rfc3339, rfc3339

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
GRACEFUL_RESOURCES = frozenset({"pods"})
"""Resources whose strategy implements graceful deletion upstream."""

Outcome = tuple[KubeState, DeleteResponse | KubeError]


def _precondition_failure(req: Delete, stored: Object) -> KubeError | None:
    key = req.key
    kind = f"{stored.kind}.{key.group}" if key.group else stored.kind
    wanted = req.preconditions
    if wanted.uid is not None and wanted.uid != stored.uid:
        reason = (
            f"the UID in the precondition ({wanted.uid}) does not match the UID in record "
            f"({stored.uid}). The object might have been deleted and then recreated"
        )
        return errors.conflict(kind, key.name, reason)
    if wanted.resource_version is not None and wanted.resource_version != stored.resource_version:
        reason = (
            f"the ResourceVersion in the precondition ({wanted.resource_version}) does not match "
            f"the ResourceVersion in record ({stored.resource_version}). "
            "The object might have been modified"
        )
        return errors.conflict(kind, key.name, reason)
    return None


def _pod_grace_period(content: JSONObject, requested: int | None) -> int:
    """The pod strategy's ``CheckGracefulDelete``."""
    spec = content.get("spec") if isinstance(content.get("spec"), dict) else {}
    status = content.get("status") if isinstance(content.get("status"), dict) else {}
    assert isinstance(spec, dict) and isinstance(status, dict)
    if requested is not None:
        period = requested
    else:
        period = int(spec.get("terminationGracePeriodSeconds") or 0)
    if not spec.get("nodeName"):
        period = 0
    if status.get("phase") in ("Succeeded", "Failed"):
        period = 0
    return period


def _grace(req: Delete, content: JSONObject, meta: JSONObject) -> tuple[bool, bool, int]:
    """``BeforeDelete``: (graceful, pending, grace period), editing ``content`` in place when
    the deletion is graceful."""
    requested = req.grace_period_seconds
    if requested is not None and requested < 0:
        requested = 1
    if "deletionTimestamp" in meta:
        stored = meta.get("deletionGracePeriodSeconds")
        if not stored:
            return False, False, 0
        if requested is None or requested >= stored:
            return False, True, stored
        moved = parse_rfc3339(meta["deletionTimestamp"]) - stored + requested
        meta["deletionTimestamp"] = rfc3339(moved)
        meta["deletionGracePeriodSeconds"] = requested
        return True, False, requested
    if req.key.resource not in GRACEFUL_RESOURCES:
        return False, False, 0
    period = _pod_grace_period(content, requested)
    meta["deletionTimestamp"] = rfc3339(req.now + period)
    meta["deletionGracePeriodSeconds"] = period
    meta["generation"] = int(meta.get("generation", 0)) + 1
    return True, False, period


def _propagated(finalizers: list[str], policy: PropagationPolicy | None) -> list[str]:
    """``deletionFinalizersForGarbageCollection``: the finalizers the policy leaves."""
    if policy is None:
        return finalizers
    kept = [f for f in finalizers if f not in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER)]
    if policy is PropagationPolicy.ORPHAN:
        kept.append(ORPHAN_FINALIZER)
    elif policy is PropagationPolicy.FOREGROUND:
        kept.append(FOREGROUND_FINALIZER)
    return finalizers if set(kept) == set(finalizers) else kept


def _mark_as_deleting(meta: JSONObject, now: int) -> None:
    if "deletionTimestamp" not in meta:
        meta["generation"] = int(meta.get("generation", 0)) + 1
    if "deletionTimestamp" not in meta or parse_rfc3339(meta["deletionTimestamp"]) > now:
        meta["deletionTimestamp"] = rfc3339(now)
    meta["deletionGracePeriodSeconds"] = 0


def delete(state: KubeState, req: Delete) -> Outcome:
    stored = state.get(req.key)
    if stored is None:
        return state, errors.not_found(req.key)
    failure = _precondition_failure(req, stored)
    if failure is not None:
        return state, failure
    content = stored.to_dict()
    meta = metadata_of(content)
    graceful, pending, period = _grace(req, content, meta)
    if pending:
        return state, DeleteResponse(stored, deleted=False)
    finalizers = [str(f) for f in meta.get("finalizers", ())]
    kept = _propagated(finalizers, req.propagation_policy)
    if kept:
        meta["finalizers"] = kept
    else:
        meta.pop("finalizers", None)
    if not graceful and not kept:
        # Nothing holds the object: it goes at once, and nothing is written before.
        return _removed(state, req, stored)
    if not graceful:
        _mark_as_deleting(meta, req.now)
    updated = Object.of(content)
    if updated != stored:
        updated = updated.with_resource_version(state.revision + 1)
        state = state.written(req.key, stored, updated)
    if kept or period > 0:
        return state, DeleteResponse(updated, deleted=False)
    return _removed(state, req, updated)


def _removed(state: KubeState, req: Delete, last: Object) -> Outcome:
    """The deleting write; the answer is the last state at the deleting revision, as the watch
    event's object is."""
    after = state.written(req.key, last, None)
    return after, DeleteResponse(last.with_resource_version(after.revision), deleted=True)
