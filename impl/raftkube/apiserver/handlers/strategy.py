"""The handlers' view of a kind: its strategy (defaults, validation, field labels, schema) and
its printed form (Tables), each looked up from the resource.

The per-kind meaning lives in :mod:`raftkube.apiserver.kinds`; this module only applies it in
the order the handlers need and turns causes into upstream's errors.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from raftkube.apiserver import errors, tables
from raftkube.apiserver.accept import Transform, check_list_transform, negotiate_object
from raftkube.apiserver.encoding import respond
from raftkube.apiserver.handlers.context import Call
from raftkube.apiserver.kinds import strategy_for
from raftkube.apiserver.kinds.strategy import prepare_update as _prepare_update
from raftkube.apiserver.listing import FieldFn
from raftkube.apiserver.objects import name_of
from raftkube.apiserver.printing import selector_string as _selector_string
from raftkube.apiserver.request import Response
from raftkube.apiserver.resources import ResourceInfo

_FIELD_VALIDATION = ("Strict", "Warn", "Ignore")


def field_fn(info: ResourceInfo) -> FieldFn:
    labels: FieldFn = strategy_for(info).field_labels
    return labels


def field_label_names(info: ResourceInfo) -> tuple[str, ...]:
    return strategy_for(info).field_label_names()


def selector_string(selector: dict[str, Any]) -> str:
    return _selector_string(selector) or ""


def check_decodable(info: ResourceInfo, obj: dict[str, Any]) -> None:
    """Upstream's decoder refuses a field of the wrong JSON type (``"replicas": "3"``) with a
    400 before anything else runs."""
    problems = strategy_for(info).decode_errors(obj)
    if problems:
        kind = info.kind
        raise errors.bad_request(
            f'{kind} in version "{info.version}" cannot be handled as a {kind}: {problems[0]}'
        )


def prepare_create(info: ResourceInfo, obj: dict[str, Any]) -> None:
    """Defaults and the kind's ``PrepareForCreate`` (uid and timestamps are already set)."""
    s = strategy_for(info)
    check_decodable(info, obj)
    s.default_well_typed(obj)
    s.prepare_for_create(obj)
    if s.tracks_generation:
        obj["metadata"]["generation"] = 1


def prepare_update(info: ResourceInfo, new: dict[str, Any], old: dict[str, Any], sub: str) -> None:
    s = strategy_for(info)
    check_decodable(info, new)
    s.default_well_typed(new)
    _prepare_update(s, new, old, sub)


def _check(call: Call, obj: dict[str, Any], causes: list[errors.Cause]) -> None:
    r = call.resource
    if causes:
        raise errors.invalid(r.kind, name_of(obj), causes, r.group)


def _unknown_fields(call: Call, obj: dict[str, Any]) -> None:
    """Upstream's server-side field validation: kubectl sends ``fieldValidation=Strict``."""
    mode = call.param("fieldValidation", "Warn") or "Warn"
    if mode not in _FIELD_VALIDATION:
        raise errors.bad_request(
            f'fieldValidation: Unsupported value: "{mode}": supported values: "Ignore", '
            '"Strict", "Warn"'
        )
    if mode != "Strict":
        return
    unknown = strategy_for(call.resource).unknown_fields(obj)
    if unknown:
        # Upstream's StrictDecodingError text, which kubectl prints as it is.
        parts = [f'unknown field "{path}"' for path in unknown]
        raise errors.bad_request(f"strict decoding error: {', '.join(parts)}")


def validate_create(call: Call, obj: dict[str, Any]) -> None:
    _unknown_fields(call, obj)
    _check(call, obj, strategy_for(call.resource).validate_create(obj))


def validate_update(call: Call, new: dict[str, Any], old: dict[str, Any], sub: str) -> None:
    _unknown_fields(call, new)
    s = strategy_for(call.resource)
    causes = s.validate_status_update(new, old) if sub == "status" else s.validate_update(new, old)
    _check(call, new, causes)


def table_or_object(
    call: Call,
    items: list[dict[str, Any]],
    *,
    single: bool,
    list_meta: dict[str, Any] | None,
) -> Response | None:
    """The Table (or PartialObjectMetadata) a client asked for in ``Accept``; None if it asked
    for the objects themselves."""
    negotiated = negotiate_object(call.request.headers.get("accept", ""))
    check_list_transform(negotiated, is_list=not single)
    if negotiated.transform is Transform.OBJECT:
        return None
    r = call.resource
    now = _now(call)
    meta = list_meta or {}
    if negotiated.transform is Transform.TABLE:
        include = tables.include_object_option(call.param("includeObject"))
        if single and not meta:
            meta = {
                "resourceVersion": str((items[0].get("metadata") or {}).get("resourceVersion", ""))
            }
        body = tables.to_table(
            r,
            items,
            list_rv=meta.get("resourceVersion", ""),
            continue_token=meta.get("continue", ""),
            remaining_item_count=meta.get("remainingItemCount"),
            include_object=include,
            now=now,
            version=negotiated.version,
        )
    elif single:
        body = tables.partial_object_metadata(items[0], negotiated.version)
    else:
        body = tables.partial_object_metadata_list(
            items,
            list_rv=meta.get("resourceVersion", ""),
            continue_token=meta.get("continue", ""),
            remaining_item_count=meta.get("remainingItemCount"),
            version=negotiated.version,
        )
    return respond(200, body, call.request)


def _now(call: Call) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(call.services.wall(), tz=datetime.UTC)


def watch_transform(call: Call) -> Callable[[str, dict[str, Any]], dict[str, Any]] | None:
    """How each watch event's object is sent: as itself (None), or as a one-row Table (column
    definitions on the first event only, as upstream) or PartialObjectMetadata."""
    negotiated = negotiate_object(call.request.headers.get("accept", ""))
    if negotiated.transform is Transform.OBJECT:
        return None
    r = call.resource
    first = True
    include = tables.include_object_option(call.param("includeObject"))

    def convert(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        nonlocal first
        if event_type in {"ERROR", "BOOKMARK"}:
            return obj
        if negotiated.transform is Transform.TABLE:
            rv = str((obj.get("metadata") or {}).get("resourceVersion", ""))
            table = tables.to_table(
                r, [obj], list_rv=rv, include_object=include, now=_now(call),
                include_headers=first, version=negotiated.version,
            )  # fmt: skip
            first = False
            return table
        return tables.partial_object_metadata(obj, negotiated.version)

    return convert
