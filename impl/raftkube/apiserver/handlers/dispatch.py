"""Which handler answers a resource request: by resource, subresource and verb.

A verb the resource does not serve is 405, as upstream; a subresource it does not have is 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from raftkube.apiserver import errors
from raftkube.apiserver.handlers import deletes, reads, reviews, subresources, writes
from raftkube.apiserver.handlers.context import Call
from raftkube.apiserver.request import Response, StreamingResponse

Answer = Response | StreamingResponse
HandlerFn = Callable[[Call], Awaitable[Answer]]


async def _status_update(call: Call) -> Answer:
    return await writes.update(call, "status")


async def _status_patch(call: Call) -> Answer:
    return await writes.patch_(call, "status")


async def _finalize(call: Call) -> Answer:
    return await writes.update(call, "finalize")


_MAIN: dict[str, HandlerFn] = {
    "get": reads.get,
    "list": reads.list_,
    "watch": reads.watch,
    "create": writes.create,
    "update": writes.update,
    "patch": writes.patch_,
    "delete": deletes.delete,
    "deletecollection": deletes.delete_collection,
}

_SUBRESOURCES: dict[tuple[str, str], HandlerFn] = {
    ("status", "get"): reads.get,
    ("status", "update"): _status_update,
    ("status", "patch"): _status_patch,
    ("scale", "get"): subresources.get_scale,
    ("scale", "update"): subresources.write_scale,
    ("scale", "patch"): subresources.write_scale,
    ("binding", "create"): subresources.bind,
    ("eviction", "create"): subresources.evict,
    ("token", "create"): subresources.request_token,
    ("finalize", "update"): _finalize,
    ("log", "get"): subresources.pod_log,
}

_VIRTUAL: dict[str, HandlerFn] = {
    "selfsubjectaccessreviews": reviews.self_subject_access_review,
    "selfsubjectrulesreviews": reviews.self_subject_rules_review,
    "subjectaccessreviews": reviews.subject_access_review,
    "selfsubjectreviews": reviews.self_subject_review,
    "tokenreviews": reviews.token_review,
    "bindings": subresources.bind,
}


async def dispatch(call: Call) -> Answer:
    r = call.resource
    verb = call.info.verb
    sub = call.info.subresource
    if sub:
        if not r.has(sub):
            raise errors.APIError(
                404, "NotFound", "the server could not find the requested resource"
            )
        fn = _SUBRESOURCES.get((sub, verb))
    elif not r.storage:
        fn = _VIRTUAL.get(r.resource) if verb == "create" else None
    else:
        fn = _MAIN.get(verb) if verb in r.verbs else None
        if verb in {"get", "update", "patch", "delete"} and not call.name:
            fn = None
    if fn is None:
        raise errors.method_not_supported(r.resource + (f"/{sub}" if sub else ""), verb, r.group)
    if r.namespaced and not call.info.namespace and verb not in {"list", "watch"}:
        raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
    return await fn(call)
