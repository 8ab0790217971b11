"""What a list or watch request asks for, before any store is read: upstream's list options.

The ``resourceVersion`` / ``resourceVersionMatch`` / ``continue`` rules and their errors
(``ValidateListOptions``, the storage layer's "Too large resource version" and 410 messages),
the continue token (base64url JSON ``{"v": "meta.k8s.io/v1", "rv": R, "start": key}``, the key
relative to the list's prefix, as ``storage.EncodeContinue``), the page a list answers with, and
the :class:`Filter` (namespace, name, label and field selectors) that lists and watches share.
The store (:mod:`raftkube.apiserver.storage`) and the watch cache
(:mod:`raftkube.apiserver.watchcache`) both build on it.
"""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from raftkube.apiserver.errors import APIError, Cause, bad_request, invalid
from raftkube.apiserver.resources import ResourceInfo
from raftkube.apiserver.selectors import (
    FieldSelector,
    LabelSelector,
    object_meta_fields,
    parse_field_selector,
    parse_label_selector,
)

Obj = dict[str, Any]
FieldFn = Callable[[Mapping[str, Any]], Mapping[str, str]]

EXACT: Final = "Exact"
NOT_OLDER_THAN: Final = "NotOlderThan"
CONTINUE_VERSION: Final = "meta.k8s.io/v1"
# Upstream's messages (storage/etcd3/store.go), word for word: clients and people match them.
EXPIRED: Final = "The resourceVersion for the provided list is too old."
CONTINUE_EXPIRED: Final = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter."
)
INCONSISTENT_CONTINUE: Final = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter, or use the continue token in "
    "this response to retrieve the remainder of the results. Continuing with the provided "
    "token results in an inconsistent list - objects that were created, modified, or deleted "
    "between the time the first chunk was returned and now may show up in the list."
)


# --- resourceVersion parameters --------------------------------------------------------------


def parse_resource_version(resource_version: str) -> int:
    """``""`` and ``"0"`` are 0; anything else must be a revision (upstream's message)."""
    if resource_version in ("", "0"):
        return 0
    if resource_version.isascii() and resource_version.isdigit():
        return int(resource_version)
    raise bad_request(
        f'resourceVersion: Invalid value: "{resource_version}": strconv.ParseUint: parsing '
        f'"{resource_version}": invalid syntax'
    )


def too_large_resource_version(minimum: int, current: int) -> APIError:
    """Upstream's ``NewTooLargeResourceVersionError``: a 504 that client-go retries."""
    return APIError(
        504,
        "Timeout",
        f"Timeout: Too large resource version: {minimum}, current: {current}",
        details={
            "causes": [
                {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
            ],
            "retryAfterSeconds": 1,
        },
    )


_FORBIDDEN = "FieldValueForbidden"


def validate_list_options(resource_version: str, match: str, continue_token: str) -> None:
    """Upstream's ``ValidateListOptions``: 422 on ``ListOptions`` for a bad combination."""
    causes: list[Cause] = []

    def forbid(reason: str, message: str) -> None:
        causes.append(Cause("resourceVersionMatch", reason, message))

    if match:
        if not resource_version:
            forbid(_FORBIDDEN, "Forbidden: resourceVersionMatch is forbidden unless "
                   "resourceVersion is provided")  # fmt: skip
        if continue_token:
            forbid(_FORBIDDEN, "Forbidden: resourceVersionMatch is forbidden when continue "
                   "is provided")  # fmt: skip
        if match not in (EXACT, NOT_OLDER_THAN):
            forbid("FieldValueNotSupported", f'Unsupported value: "{match}": supported '
                   'values: "Exact", "NotOlderThan", ""')  # fmt: skip
        if match == EXACT and resource_version == "0":
            forbid(_FORBIDDEN, 'Forbidden: resourceVersionMatch "exact" is forbidden for '
                   'resourceVersion "0"')  # fmt: skip
    if causes:
        raise invalid("ListOptions", "", causes, group="meta.k8s.io")
    if continue_token and resource_version not in ("", "0"):
        raise bad_request("specifying resource version is not allowed when using continue")


# --- continue tokens -------------------------------------------------------------------------


def encode_continue(next_key: bytes, prefix: bytes, revision: int) -> str:
    """Upstream's ``EncodeContinue``: the next key relative to the list's prefix."""
    start = next_key[len(prefix) :].decode()
    token = {"v": CONTINUE_VERSION, "rv": revision, "start": start}
    raw = json.dumps(token, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_continue(token: str, prefix: bytes) -> tuple[bytes, int]:
    """Upstream's ``DecodeContinue``: (the full next key, the revision; -1 = latest)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise bad_request(f"invalid continue token: continue key is not valid: {exc}") from None
    if not isinstance(data, dict) or data.get("v") != CONTINUE_VERSION:
        version = data.get("v") if isinstance(data, dict) else None
        raise bad_request(
            "invalid continue token: continue key is not valid: server does not recognize this "
            f'encoded version "{version}"'
        )
    revision, start = data.get("rv"), data.get("start")
    if not isinstance(revision, int) or revision == 0:
        raise bad_request(
            "invalid continue token: continue key is not valid: incorrect encoded start "
            f"resourceVersion (version {CONTINUE_VERSION})"
        )
    if not isinstance(start, str) or not start:
        raise bad_request(
            "invalid continue token: continue key is not valid: encoded start key empty "
            f"(version {CONTINUE_VERSION})"
        )
    # As upstream: a cleaned path must equal itself, so "../" cannot climb above the prefix.
    key = start if start.startswith("/") else "/" + start
    if posixpath.normpath(key).replace("//", "/") != key:
        raise bad_request(f"invalid continue token: continue key is not valid: {start}")
    return prefix + key[1:].encode(), revision


class ExpiredContinueError(APIError):
    """410 for a continue token whose revision was compacted; like upstream's, its Status
    carries a fresh token that continues at the latest revision (inconsistently)."""

    def __init__(self, continue_token: str) -> None:
        super().__init__(410, "Expired", INCONSISTENT_CONTINUE)
        self.continue_token = continue_token

    def status(self) -> dict[str, Any]:
        body = super().status()
        body["metadata"] = {"continue": self.continue_token}
        return body


# --- results ---------------------------------------------------------------------------------


@attrs.frozen
class ListResult:
    """One page: ``remaining_item_count`` only when unfiltered and more remain, as upstream."""

    items: list[Obj]
    resource_version: int
    continue_token: str = ""
    remaining_item_count: int | None = None

    def as_list(self, info: ResourceInfo) -> Obj:
        """The ``{Kind}List`` object a list request answers with."""
        meta: Obj = {"resourceVersion": str(self.resource_version)}
        if self.continue_token:
            meta["continue"] = self.continue_token
        if self.remaining_item_count is not None:
            meta["remainingItemCount"] = self.remaining_item_count
        return {
            "kind": info.list_kind,
            "apiVersion": info.group_version,
            "metadata": meta,
            "items": self.items,
        }


def as_label_selector(selector: LabelSelector | str | None) -> LabelSelector | None:
    if isinstance(selector, str):
        return parse_label_selector(selector) if selector else None
    return selector


def as_field_selector(selector: FieldSelector | str | None) -> FieldSelector | None:
    if isinstance(selector, str):
        return parse_field_selector(selector) if selector else None
    return selector


@attrs.frozen
class Filter:
    """What a list or watch selects: a namespace, a name (a watch of one object), and the two
    selectors."""

    namespace: str = ""
    labels: LabelSelector | None = None
    fields: FieldSelector | None = None
    field_fn: FieldFn = object_meta_fields
    name: str = ""

    @property
    def empty(self) -> bool:
        """True when it selects by nothing but the namespace (the list's key range)."""
        return (
            not self.name
            and (self.labels is None or self.labels.empty)
            and (self.fields is None or self.fields.empty)
        )

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata", {})
        if self.namespace and meta.get("namespace") != self.namespace:
            return False
        if self.name and meta.get("name") != self.name:
            return False
        if self.labels is not None and not self.labels.matches_object(obj):
            return False
        return self.fields is None or self.fields.matches(self.field_fn(obj))


def make_filter(
    info: ResourceInfo,
    namespace: str,
    label_selector: LabelSelector | str | None,
    field_selector: FieldSelector | str | None,
    field_fn: FieldFn = object_meta_fields,
    name: str = "",
) -> Filter:
    """The filter of a request; a cluster-scoped resource ignores the namespace, as upstream."""
    labels, fields = as_label_selector(label_selector), as_field_selector(field_selector)
    return Filter(namespace if info.namespaced else "", labels, fields, field_fn, name)
