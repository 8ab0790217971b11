"""PATCH bodies: JSON patch, JSON merge patch and strategic merge patch, as upstream applies them.

:func:`apply_patch` is the one entry point: the handler passes the request's media type, the
current object and the body, and gets the patched object (a new dict; the current one is not
touched) or an :class:`~raftkube.apiserver.errors.APIError` with upstream's code and wording.
A patch that changes nothing returns an object equal to the current one, so the handler can
skip the write as upstream does.

Server-side apply (``application/apply-patch+yaml``) is not served: like an API server with
the ServerSideApply feature off, it is refused with 415 and the list of the media types that are
accepted, which is what clients (kubectl, client-go) read to fall back.
"""

from __future__ import annotations

from typing import Any

from raftkube.apiserver import errors
from raftkube.apiserver.patch.rfc import (
    MAX_JSON_PATCH_OPERATIONS,
    UNPROCESSABLE,
    apply_merge,
    create_merge_patch,
    json_equal,
    json_patch,
    json_type,
    merge_patch,
    parse_json,
)
from raftkube.apiserver.patch.strategic import strategic_merge
from raftkube.apiserver.patch.strategies import (
    KIND_TABLES,
    FieldStrategy,
    StrategyLookup,
    lookup_for_kind,
    lookup_from_schema,
)
from raftkube.apiserver.resources import ResourceInfo

__all__ = [
    "APPLY_PATCH",
    "JSON_PATCH",
    "KIND_TABLES",
    "MAX_JSON_PATCH_OPERATIONS",
    "MERGE_PATCH",
    "PATCH_TYPES",
    "STRATEGIC_MERGE_PATCH",
    "UNPROCESSABLE",
    "FieldStrategy",
    "SchemaHint",
    "StrategyLookup",
    "apply_merge",
    "apply_patch",
    "create_merge_patch",
    "json_equal",
    "lookup_for_kind",
    "lookup_from_schema",
    "strategic_merge",
    "unsupported_patch_type",
]

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)
"""The media types PATCH accepts, in upstream's order (discovery and OpenAPI list them)."""


def unsupported_patch_type() -> errors.APIError:
    """Upstream's ``NewUnsupportedMediaTypeError(patchTypes)``."""
    return errors.APIError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(PATCH_TYPES),
    )


SchemaHint = ResourceInfo | StrategyLookup | None
"""What the strategic merge patch reads its patch metadata from: a lookup (the kind's OpenAPI
schema), the resource (this module's table for its kind), or nothing (the table for the
object's own ``kind``)."""


def _lookup(original: dict[str, Any], hint: SchemaHint) -> StrategyLookup:
    if isinstance(hint, ResourceInfo):
        return lookup_for_kind(hint.kind)
    if hint is None:
        return lookup_for_kind(str(original.get("kind", "")))
    return hint


def apply_patch(
    content_type: str,
    original: dict[str, Any],
    patch_bytes: bytes,
    schema_hint: SchemaHint = None,
) -> dict[str, Any]:
    """Apply the PATCH body ``patch_bytes`` of media type ``content_type`` to ``original``.

    ``content_type`` may carry parameters (``; charset=utf-8``), which are dropped as upstream
    drops them; any type other than the three patch types is 415.
    """
    cut = content_type.find(";")
    media = content_type[:cut] if cut > 0 else content_type
    if media == JSON_PATCH:
        return json_patch(original, patch_bytes)
    if media == MERGE_PATCH:
        return merge_patch(original, patch_bytes)
    if media == STRATEGIC_MERGE_PATCH:
        return _strategic(original, patch_bytes, _lookup(original, schema_hint))
    raise unsupported_patch_type()


def _strategic(
    original: dict[str, Any], patch_bytes: bytes, lookup: StrategyLookup
) -> dict[str, Any]:
    try:
        patch = parse_json(patch_bytes)
    except ValueError as exc:
        raise errors.bad_request(str(exc)) from None
    if patch is None:  # Go decodes ``null`` into an empty map
        patch = {}
    if not isinstance(patch, dict):
        raise errors.bad_request(
            f"json: cannot unmarshal {json_type(patch)} into Go value of type "
            "map[string]interface {}"
        )
    return strategic_merge(original, patch, lookup)
