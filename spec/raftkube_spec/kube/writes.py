"""Create, Update and Patch: the writes that put an object's new state in the store.

These follow the generic registry (``k8s.io/apiserver/pkg/registry/generic/registry/store.go``
with ``rest.BeforeCreate``/``BeforeUpdate`` and ``ValidateObjectMetaUpdate``) and its HTTP
handlers, in upstream's order of checks:

* Create: a namespace in the body other than the request's is 400; no name and no
  ``generateName`` is 422; a resourceVersion in the body that parses as a non-zero unsigned
  number is refused by the store before it looks for the key, 500 with no reason (any other
  resourceVersion the store clears and ignores); an existing name is 409 AlreadyExists. The
  server sets uid, creationTimestamp, resourceVersion and ``generation: 1`` and drops any
  deletionTimestamp. ``generateName`` is cut to 58 characters before the suffix.
* Update: name or namespace unlike the URL's is 400; a uid in the body unlike the stored one is
  409 (upstream makes it a storage precondition, checked against an empty object when there is
  none, so a PUT of a deleted object that carries its uid is 409 too); a missing object is 404;
  a resourceVersion that is not a number is 400; a stale one is 409, an empty one makes the
  update unconditional; new finalizers on an object being deleted are 422. uid,
  creationTimestamp, deletionTimestamp and deletionGracePeriodSeconds keep their stored
  values; generation is the stored one, plus one when ``spec`` changed; ``status`` keeps its
  stored value (it belongs to ``/status``).
* Update of ``/status``: only ``status`` changes; every other field keeps its stored value.
* Patch: 404 if missing, then the JSON merge patch applied to the stored object, then the
  update's checks, except that a changed uid is 422 (a patch has no uid precondition); a
  resourceVersion inside the patch is a precondition, otherwise none.
* An update that changes nothing writes nothing: no revision, and the stored object comes back.
* An update that leaves no finalizers on an object being deleted whose grace period is over
  (``deletionGracePeriodSeconds`` 0 or unset) deletes it instead, in the same single write, and
  answers with the updated object at its old resourceVersion.

Simplifications: every resource allows unconditional update and none allows create on update;
every resource tracks generation; a deletionTimestamp sent on an object that has none is
ignored (upstream refuses it as an immutable field); a changed deletionGracePeriodSeconds is
refused with an ``Invalid value`` showing the number; the uid conflict's text omits upstream's
``StorageError`` wrapper, which names the store key; a status update keeps all of the stored
metadata (upstream resets only labels, annotations, finalizers, owner references, generation
and deletionTimestamp).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from raftkube_spec.kube import errors
from raftkube_spec.kube.errors import FieldError, KubeError
from raftkube_spec.kube.objects import JSONObject, Object, ObjectKey, metadata_of
from raftkube_spec.kube.reads import parse_resource_version
from raftkube_spec.kube.requests import Create, Patch, Subresource, Update
from raftkube_spec.kube.responses import ObjectResponse
from raftkube_spec.kube.state import KubeState
from raftkube_spec.kube.timefmt import rfc3339

MAX_GENERATE_NAME_BASE = 58
"""63 (the longest DNS label) minus upstream's 5 random characters."""

Outcome = tuple[KubeState, ObjectResponse | KubeError]


def namespace_mismatch(request_namespace: str, metadata: JSONObject) -> KubeError | None:
    """``EnsureObjectNamespaceMatchesRequestNamespace``, filling ``metadata`` in place: an
    unset namespace takes the request's, a cluster-scoped request clears it."""
    given = str(metadata.get("namespace", ""))
    if given in ("", request_namespace) or request_namespace == "":
        metadata["namespace"] = request_namespace
        return None
    return errors.bad_request(
        "the namespace of the provided object does not match the namespace sent on the request"
    )


def create(state: KubeState, req: Create) -> Outcome:
    content = req.object.to_dict()
    metadata = metadata_of(content)
    mismatch = namespace_mismatch(req.namespace, metadata)
    if mismatch is not None:
        return state, mismatch
    name = str(metadata.get("name", ""))
    base = str(metadata.get("generateName", ""))
    if not name and base:
        name = base[:MAX_GENERATE_NAME_BASE] + req.generated_suffix
    if not name:
        required = FieldError("metadata.name", "Required value", "name or generateName is required")
        return state, errors.invalid(req.object.kind, _group(req.resource), "", [required])
    if _set_on_create(metadata.get("resourceVersion")):
        return state, errors.resource_version_set_on_create()
    key = ObjectKey(req.resource, req.namespace, name)
    if state.get(key) is not None:
        return state, errors.already_exists(key)
    metadata["name"] = name
    metadata["uid"] = req.uid
    metadata["creationTimestamp"] = rfc3339(req.now)
    metadata["resourceVersion"] = str(state.revision + 1)
    metadata["generation"] = 1
    metadata.pop("deletionTimestamp", None)
    metadata.pop("deletionGracePeriodSeconds", None)
    stored = Object.of(content)
    return state.written(key, None, stored), ObjectResponse(stored, 201)


MAX_UINT64 = 2**64 - 1


def _set_on_create(resource_version: object) -> bool:
    """The store's ``versioner.ObjectResourceVersion(obj)`` succeeds with a non-zero value:
    Go's ``strconv.ParseUint(rv, 10, 64)``, decimal digits only, in range."""
    text = str(resource_version or "")
    if not (text.isascii() and text.isdigit()):
        return False
    return 0 < int(text) <= MAX_UINT64


def _group(resource: str) -> str:
    return resource.partition(".")[2]


def _set_or_drop(target: JSONObject, field: str, source: JSONObject) -> None:
    if field in source:
        target[field] = copy.deepcopy(source[field])
    else:
        target.pop(field, None)


def _validation_errors(new_meta: JSONObject, old_meta: JSONObject) -> list[FieldError]:
    found = []
    old_grace = old_meta.get("deletionGracePeriodSeconds")
    new_grace = new_meta.get("deletionGracePeriodSeconds")
    if new_grace is not None and new_grace != old_grace:
        found.append(
            FieldError(
                "metadata.deletionGracePeriodSeconds",
                "Invalid value",
                "field is immutable",
                str(new_grace),
            )
        )
    if "deletionTimestamp" in old_meta:
        old_finalizers = set(old_meta.get("finalizers", ()))
        extra = sorted(set(new_meta.get("finalizers", ())) - old_finalizers)
        if extra:
            detail = (
                "no new finalizers can be added if the object is being deleted, "
                f"found new finalizers {errors.go_string_slice(extra)}"
            )
            found.append(FieldError("metadata.finalizers", "Forbidden", detail))
    return found


def _merged_content(
    old: JSONObject, new: JSONObject, subresource: Subresource
) -> tuple[JSONObject, list[FieldError]]:
    """The object an update stores (before its resourceVersion), and what validation refuses."""
    if subresource == "status":
        merged = copy.deepcopy(old)
        _set_or_drop(merged, "status", new)
        return merged, []
    old_meta = metadata_of(old)
    new_meta = metadata_of(new)
    problems = _validation_errors(new_meta, old_meta)
    for field in (
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
    ):
        _set_or_drop(new_meta, field, old_meta)
    generation = int(old_meta.get("generation", 0))
    if new.get("spec") != old.get("spec"):
        generation += 1
    new_meta["generation"] = generation
    _set_or_drop(new, "status", old)
    return new, problems


def apply_update(
    state: KubeState,
    key: ObjectKey,
    content: JSONObject,
    subresource: Subresource,
    uid_precondition: bool,
) -> Outcome:
    """The update path shared by Update and Patch, ``content`` being the object to store."""
    metadata = metadata_of(content)
    name = str(metadata.get("name", ""))
    if name != key.name:
        return state, errors.bad_request(
            f"the name of the object ({name}) does not match the name on the URL ({key.name})"
        )
    mismatch = namespace_mismatch(key.namespace, metadata)
    if mismatch is not None:
        return state, mismatch
    existing = state.get(key)
    uid = str(metadata.get("uid", ""))
    stored_uid = "" if existing is None else existing.uid
    if uid_precondition and uid and uid != stored_uid:
        # Checked by the store against the current object, or an empty one if there is none:
        # so a PUT of a deleted object that names its uid is a conflict, not "not found".
        reason = (
            f"Precondition failed: UID in precondition: {uid}, UID in object meta: {stored_uid}"
        )
        return state, errors.conflict(key.resource, key.name, reason)
    if existing is None:
        return state, errors.not_found(key)
    requested = str(metadata.get("resourceVersion", ""))
    parsed = parse_resource_version(requested)
    if isinstance(parsed, KubeError):
        return state, parsed
    if parsed != 0 and requested != existing.resource_version:
        return state, errors.conflict(key.resource, key.name, errors.OPTIMISTIC_LOCK)
    old = existing.to_dict()
    old_meta = metadata_of(old)
    if uid and uid != existing.uid:  # reached only by a patch, which has no uid precondition
        immutable = FieldError(
            "metadata.uid", "Invalid value", "field is immutable", errors.go_quote(uid)
        )
        return state, errors.invalid(existing.kind, key.group, key.name, [immutable])
    merged, problems = _merged_content(old, content, subresource)
    if problems:
        return state, errors.invalid(existing.kind, key.group, key.name, problems)
    metadata_of(merged)["resourceVersion"] = existing.resource_version
    candidate = Object.of(merged)
    grace_over = not old_meta.get("deletionGracePeriodSeconds")
    if "deletionTimestamp" in old_meta and grace_over and not candidate.finalizers:
        return state.written(key, existing, None), ObjectResponse(candidate)
    if candidate == existing:
        return state, ObjectResponse(existing)
    stored = candidate.with_resource_version(state.revision + 1)
    return state.written(key, existing, stored), ObjectResponse(stored)


def update(state: KubeState, req: Update) -> Outcome:
    return apply_update(state, req.key, req.object.to_dict(), req.subresource, True)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = merge_patch(merged.get(k), v)
    return merged


def patch(state: KubeState, req: Patch) -> Outcome:
    existing = state.get(req.key)
    if existing is None:
        return state, errors.not_found(req.key)
    try:
        document = json.loads(req.patch)
    except ValueError:
        return state, errors.bad_request("the patch is not valid JSON")
    if not isinstance(document, dict):
        return state, errors.bad_request("a merge patch must be a JSON object")
    patched = merge_patch(existing.to_dict(), document)
    assert isinstance(patched, dict)
    return apply_update(state, req.key, patched, req.subresource, False)
