"""get, list and watch.

Consistency is upstream's: without a ``resourceVersion`` a get or list is a linearizable read
of the store; ``resourceVersion=0`` may be served from the watch cache (possibly stale, never
older than what this server has seen); a list at an exact revision reads the store's history
there (410 once compacted). A watch is always served from the watch cache, one store watch per
resource however many clients watch.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from raftkube.apiserver import errors, selectors
from raftkube.apiserver.encoding import JSON, respond
from raftkube.apiserver.handlers.context import Call, Services
from raftkube.apiserver.handlers.strategy import (
    field_fn,
    field_label_names,
    table_or_object,
    watch_transform,
)
from raftkube.apiserver.request import Response, StreamingResponse

_RV_MATCHES = frozenset({"", "Exact", "NotOlderThan"})


async def get(call: Call) -> Response:
    rv = call.param("resourceVersion")
    if rv == "0":
        obj = call.services.cache(call.resource).get(call.namespace, call.name)
        if obj is None:
            raise call.not_found()
    else:
        obj = await call.services.store.get(call.resource, call.namespace, call.name)
    return table_or_object(call, [obj], single=True, list_meta=None) or respond(
        200, obj, call.request
    )


def selectors_of(
    call: Call,
) -> tuple[selectors.LabelSelector | None, selectors.FieldSelector | None]:
    labels = call.param("labelSelector")
    fields = call.param("fieldSelector")
    label_sel = selectors.parse_label_selector(labels) if labels else None
    field_sel = selectors.parse_field_selector(fields) if fields else None
    if field_sel is not None:
        supported = field_label_names(call.resource)
        for key in field_sel.keys:
            if key not in supported:
                # Upstream's wording, with the kind's Go package path left out.
                raise errors.bad_request(
                    f'Unable to find "{call.resource.qualified}" that match label selector "", '
                    f'field selector "{fields}": field label not supported: {key}'
                )
    return label_sel, field_sel


async def list_(call: Call) -> Response | StreamingResponse:
    if _is_true(call.param("watch")):
        return await watch(call)
    label_sel, field_sel = selectors_of(call)
    match = call.param("resourceVersionMatch")
    if match not in _RV_MATCHES:
        raise errors.bad_request(
            f'resourceVersionMatch: Unsupported value: "{match}": supported values: "Exact", '
            '"NotOlderThan"'
        )
    rv = call.param("resourceVersion")
    limit = _int_param(call, "limit")
    result = await call.services.store.list(
        call.resource,
        call.namespace,
        resource_version=rv,
        match=match,
        limit=limit,
        continue_token=call.param("continue"),
        label_selector=label_sel,
        field_selector=field_sel,
        field_fn=field_fn(call.resource),
    )
    list_meta: dict[str, Any] = {"resourceVersion": str(result.resource_version)}
    if result.continue_token:
        list_meta["continue"] = result.continue_token
        if result.remaining_item_count is not None:
            list_meta["remainingItemCount"] = result.remaining_item_count
    table = table_or_object(call, result.items, single=False, list_meta=list_meta)
    if table is not None:
        return table
    r = call.resource
    body = {
        "kind": r.list_kind,
        "apiVersion": r.group_version,
        "metadata": list_meta,
        "items": result.items,
    }
    return respond(200, body, call.request)


async def watch(call: Call) -> StreamingResponse:
    label_sel, field_sel = selectors_of(call)
    convert = watch_transform(call)
    timeout = _int_param(call, "timeoutSeconds")
    svc = call.services
    seconds = float(timeout) if timeout else svc.watch_timeout * (1 + svc.rng.random())
    stream = svc.cache(call.resource).watch(
        call.namespace,
        resource_version=call.param("resourceVersion"),
        label_selector=label_sel,
        field_selector=field_sel,
        field_fn=field_fn(call.resource),
        allow_bookmarks=_is_true(call.param("allowWatchBookmarks")),
        name=call.name,
    )
    return StreamingResponse(
        200,
        (("content-type", JSON), ("cache-control", "no-cache, private")),
        _frames(stream, svc, seconds, convert),
    )


async def _frames(
    stream: Any,
    svc: Services,
    seconds: float,
    convert: Callable[[str, dict[str, Any]], dict[str, Any]] | None,
) -> AsyncIterator[bytes]:
    """Line-delimited watch events until the timeout, the client leaving, or the cache ending
    the watch (a 410 becomes an ERROR event carrying the Status, as upstream sends it).

    The deadline's cancel scope wraps each wait for an event, never a ``yield``: a cancel scope
    must not stay open while an async generator is suspended."""
    deadline = svc.clock.now() + seconds
    try:
        while True:
            with svc.clock.cancel_scope_at(deadline) as scope:
                try:
                    event = await anext(stream, None)
                except errors.APIError as exc:
                    event = ("ERROR", exc.status())
            if scope.cancelled_caught or event is None:
                return
            event_type, obj = event
            yield _line(event_type, obj if convert is None else convert(event_type, obj))
            if event_type == "ERROR":
                return
    finally:
        await stream.aclose()


def _line(event_type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _is_true(value: str) -> bool:
    return value.lower() in {"1", "true"}


def _int_param(call: Call, name: str) -> int:
    text = call.param(name)
    if not text:
        return 0
    try:
        value = int(text)
    except ValueError:
        raise errors.bad_request(f'invalid value for {name}: "{text}"') from None
    if value < 0:
        raise errors.bad_request(f"{name} must be non-negative, got {value}")
    return value
