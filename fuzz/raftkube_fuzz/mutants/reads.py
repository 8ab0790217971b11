"""The ``cluster`` suite's API server read mutant: a consistent LIST served from the watch cache
without waiting for it to catch up with the store."""

from __future__ import annotations

from typing import Any

from raftkube.apiserver import errors
from raftkube.apiserver.encoding import respond
from raftkube.apiserver.handlers import dispatch, reads
from raftkube.apiserver.handlers.context import Call
from raftkube.apiserver.handlers.reads import _RV_MATCHES, _int_param, _is_true, selectors_of, watch
from raftkube.apiserver.handlers.strategy import field_fn, table_or_object
from raftkube.apiserver.request import Response, StreamingResponse
from raftkube_fuzz.mutants.base import CONTROL_PLANE, Mutant, patch

# --- list-served-stale ---------------------------------------------------------------------------


async def _list_from_watch_cache(call: Call) -> Response | StreamingResponse:
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
    # MUTANT: a list without a resourceVersion (upstream's consistent list) is answered from
    # the watch cache at whatever revision it has reached, without first reading the store's
    # current revision and waiting for the cache to get there (upstream's consistent read from
    # the cache waits); every other list still reads the store.
    if not rv and not limit and not call.param("continue"):
        result = call.services.cache(call.resource).list(
            call.namespace,
            label_selector=label_sel,
            field_selector=field_sel,
            field_fn=field_fn(call.resource),
        )
    else:
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


MUTANTS = (
    Mutant(
        "list-served-stale",
        "the API server answers a LIST without a resourceVersion (a consistent list) from its "
        "watch cache at whatever revision the cache has reached, without waiting for it to "
        "catch up with the store",
        "cluster",
        "ListLinearizability",
        False,
        patch(dispatch, "_MAIN", {**dispatch._MAIN, "list": _list_from_watch_cache}),
        {**CONTROL_PLANE, "team": "workloads"},
    ),
)

assert dispatch._MAIN["list"] is reads.list_, "the mutant replaces the list handler"
