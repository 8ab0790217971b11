"""create, update and patch: decode, default, admit, validate, then one conditional store write.

The order is upstream's: decode and type-check the body; fill in what the server owns (uid,
timestamps, generation, generated name); run the kind's defaults; mutating admission; the
kind's validation and the unknown-field check; validating admission; and only then the write,
which is a store transaction conditioned on the revision the update was computed from. So a
request that fails anywhere leaves nothing behind, and two writers racing on one object cannot
both win: the loser gets 409 Conflict (an update) or is recomputed on the new state (a patch
without a resourceVersion, as upstream's GuaranteedUpdate retries).
"""

from __future__ import annotations

import copy
from typing import Any

from raftkube.apiserver import errors, patch
from raftkube.apiserver.encoding import decode_object, respond
from raftkube.apiserver.handlers import lifecycle, strategy
from raftkube.apiserver.handlers.context import Call
from raftkube.apiserver.objects import (
    check_namespace,
    check_type,
    generate_name,
    meta,
    name_of,
    new_uid,
    parse_rv,
    rfc3339,
    rv_of,
)
from raftkube.apiserver.request import Response
from raftkube.apiserver.storage import object_key

PATCH_ATTEMPTS = 64
"""How often a patch is recomputed on a newer version before giving up with 409. Upstream's
GuaranteedUpdate retries an unconditional patch without bound, so a client never sees 409 for
it; the bound here only keeps a request from spinning forever against a writer that wins every
race, and is high enough that a busy controller writing the same object's status (several
writes a second) does not exhaust it."""

GENERATE_NAME_ATTEMPTS = 8
"""A generated name that is taken is drawn again, up to this many names in all, as upstream
does since RetryGenerateName (1.32: GA): a client then sees 409 only if all of them were."""


RESOURCE_VERSION_SET_ON_CREATE = "resourceVersion should not be set on objects to be created"


def _resource_version_set(value: Any) -> bool:
    """Whether upstream's etcd3 store refuses the create: its ``Create`` checks that
    ``ObjectResourceVersion`` (Go's ``ParseUint``) is not a non-zero number, and the plain
    ``ErrResourceVersionSetOnCreate`` reaches the client as a 500 with no reason. Any other
    value (``"0"``, ``"-1"``, not a number) the store clears and ignores, as upstream's does.
    The check is made here, where the store would make it (after validation, admission and
    the dry-run return), because the server-owned fields are cleared before those steps."""
    text = str(value or "")
    return text.isascii() and text.isdigit() and 0 < int(text) < 2**64


async def create(call: Call) -> Response:
    r = call.resource
    obj = decode_object(call.request, r.kind)
    check_type(r, obj)
    check_namespace(r, obj, call.namespace)
    m = meta(obj)
    generated = not m.get("name") and bool(m.get("generateName"))
    if generated:
        m["name"] = generate_name(str(m["generateName"]), call.services.rng)
    if not m.get("name"):
        raise errors.invalid(
            r.kind,
            "",
            [
                errors.Cause(
                    "metadata.name",
                    "FieldValueRequired",
                    "Required value: name or generateName is required",
                )
            ],
            r.group,
        )
    refused_by_store = _resource_version_set(m.get("resourceVersion"))
    for server_owned in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                         "deletionGracePeriodSeconds", "generation", "managedFields"):  # fmt: skip
        m.pop(server_owned, None)
    svc = call.services
    m["uid"] = new_uid(svc.rng)
    m["creationTimestamp"] = rfc3339(svc.wall())
    strategy.prepare_create(r, obj)
    await svc.admission.admit("CREATE", call, obj, None)
    strategy.validate_create(call, obj)
    await svc.admission.validate("CREATE", call, obj, None)
    if call.dry_run:
        return respond(201, obj, call.request)
    if refused_by_store:
        await svc.admission.abandoned(call, obj, None)
        raise errors.APIError(500, "", RESOURCE_VERSION_SET_ON_CREATE)
    for attempt in range(GENERATE_NAME_ATTEMPTS):
        try:
            created = await svc.store.create(r, obj)
        except errors.APIError as exc:
            if exc.reason == "AlreadyExists" and generated and attempt + 1 < GENERATE_NAME_ATTEMPTS:
                m["name"] = generate_name(str(m["generateName"]), svc.rng)
                continue
            await svc.admission.abandoned(call, obj, None)
            raise
        except BaseException:
            await svc.admission.abandoned(call, obj, None)
            raise
        return respond(201, created, call.request)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def update(call: Call, subresource: str = "") -> Response:
    """PUT of the object or its ``status``."""
    r = call.resource
    obj = decode_object(call.request, r.kind)
    check_type(r, obj)
    check_namespace(r, obj, call.namespace)
    body_name = name_of(obj)
    if body_name and body_name != call.name:
        raise errors.bad_request(
            f"the name of the object ({body_name}) does not match the name on the URL ({call.name})"
        )
    meta(obj)["name"] = call.name
    svc = call.services
    try:
        old = await svc.store.get(r, call.namespace, call.name)
    except errors.APIError as exc:
        if exc.code != 404:
            raise
        # Upstream's store checks the uid against an empty object when there is none.
        _check_uid_precondition(call, obj, {})
        if subresource or not lifecycle.create_on_update(r):
            raise
        return await _create_from_update(call, obj)
    _check_uid_precondition(call, obj, old)
    expected = rv_of(obj) or rv_of(old)
    if rv_of(obj) and rv_of(obj) != rv_of(old):
        raise errors.conflict(r.resource, call.name, errors.OPTIMISTIC_LOCK, r.group)
    return await _write_update(call, obj, old, expected, subresource)


def _check_uid_precondition(call: Call, new: dict[str, Any], old: dict[str, Any]) -> None:
    """A PUT's ``metadata.uid`` is a precondition on the stored object, as upstream's
    ``defaultUpdatedObjectInfo.Preconditions`` makes it: another uid, or none because the object
    is gone, is a 409 Conflict (the object was deleted, perhaps created again), worded as the
    etcd3 store's ``StorageError``."""
    uid, stored = str(meta(new).get("uid") or ""), str(meta(old).get("uid") or "")
    if not uid or uid == stored:
        return
    r = call.resource
    storage_error = (
        f"StorageError: invalid object, Code: 4, Key: {object_key(r, call.namespace, call.name)}, "
        "ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: "
        f"{uid}, UID in object meta: {stored}"
    )
    raise errors.conflict(r.resource, call.name, storage_error, r.group)


async def _create_from_update(call: Call, obj: dict[str, Any]) -> Response:
    """Upstream's AllowCreateOnUpdate kinds (Endpoints, Events): a PUT of a missing object
    creates it."""
    r = call.resource
    svc = call.services
    m = meta(obj)
    m.pop("resourceVersion", None)
    m["uid"] = new_uid(svc.rng)
    m["creationTimestamp"] = rfc3339(svc.wall())
    strategy.prepare_create(r, obj)
    await svc.admission.admit("CREATE", call, obj, None)
    strategy.validate_create(call, obj)
    await svc.admission.validate("CREATE", call, obj, None)
    if call.dry_run:
        return respond(201, obj, call.request)
    try:
        created = await svc.store.create(r, obj)
    except BaseException:
        await svc.admission.abandoned(call, obj, None)
        raise
    return respond(201, created, call.request)


async def _write_update(
    call: Call, obj: dict[str, Any], old: dict[str, Any], expected: int, subresource: str
) -> Response:
    r = call.resource
    svc = call.services
    strategy.prepare_update(r, obj, old, subresource)
    await svc.admission.admit("UPDATE", call, obj, old)
    strategy.validate_update(call, obj, old, subresource)
    await svc.admission.validate("UPDATE", call, obj, old)
    if call.dry_run:
        return respond(200, obj, call.request)
    if _unchanged(obj, old):
        return respond(200, old, call.request)
    if lifecycle.finalized(r, obj):
        # The last finalizer of an object being deleted is gone: the update is its deletion.
        gone = await svc.store.delete(r, call.namespace, call.name, expected_rv=expected)
        await svc.admission.deleted(call, gone)
        # As upstream's deleteWithoutFinalizers: the client gets the object as it updated it,
        # at the version it replaced, rather than the state that was deleted.
        meta(obj)["resourceVersion"] = str(rv_of(old))
        return respond(200, obj, call.request)
    try:
        stored = await svc.store.update(r, obj, expected_rv=expected)
    except BaseException:
        await svc.admission.abandoned(call, obj, old)
        raise
    await svc.admission.updated(call, stored, old)
    return respond(200, stored, call.request)


def _unchanged(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """A no-op write is not written (upstream skips it, and the resourceVersion stays)."""
    a = {k: v for k, v in new.items() if k != "metadata"}
    b = {k: v for k, v in old.items() if k != "metadata"}
    ma = {k: v for k, v in meta(new).items() if k != "resourceVersion"}
    mb = {k: v for k, v in meta(old).items() if k != "resourceVersion"}
    return a == b and ma == mb


async def patch_(call: Call, subresource: str = "") -> Response:
    """PATCH of the object or its ``status``: JSON patch, merge patch or strategic merge patch,
    applied to the current version and written conditionally on it; recomputed on a newer
    version unless the patch itself pins a resourceVersion."""
    r = call.resource
    ctype = call.request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    svc = call.services
    for _ in range(PATCH_ATTEMPTS):
        try:
            old = await svc.store.get(r, call.namespace, call.name)
        except errors.APIError as exc:
            if exc.code == 404:
                raise call.not_found() from None
            raise
        current = copy.deepcopy(old)
        new = patch.apply_patch(ctype, current, call.request.body, r)
        check_type(r, new)
        m = meta(new)
        if m.get("name", call.name) != call.name:
            raise errors.bad_request(
                f"the name of the object ({m.get('name')}) does not match the name on the URL "
                f"({call.name})"
            )
        check_namespace(r, new, call.namespace)
        written = str(m.get("resourceVersion") or "")
        if written and parse_rv(written) != rv_of(old):
            raise errors.conflict(r.resource, call.name, errors.OPTIMISTIC_LOCK, r.group)
        m["name"] = call.name
        try:
            return await _write_update(call, new, old, rv_of(old), subresource)
        except errors.APIError as exc:
            if exc.reason != "Conflict" or _pins_resource_version(ctype, old, call):
                raise
    raise errors.conflict(r.resource, call.name, errors.OPTIMISTIC_LOCK, r.group)


def _pins_resource_version(ctype: str, old: dict[str, Any], call: Call) -> bool:
    """Whether the patch itself sets ``metadata.resourceVersion`` (a precondition, so a lost
    race is the client's 409) rather than carrying the current object's along (so the patch is
    recomputed on the newer object). Found by applying it to the object without one; a patch
    that cannot apply there (a JSON patch testing the version) pins it too."""
    bare = copy.deepcopy(old)
    meta(bare).pop("resourceVersion", None)
    try:
        result = patch.apply_patch(ctype, bare, call.request.body, call.resource)
    except errors.APIError:
        return True
    return bool(meta(result).get("resourceVersion"))
