"""The two generic patch formats: JSON patch (RFC 6902) and JSON merge patch (RFC 7386).

Both answer failures as upstream's ``patch.go`` does with evanphx/json-patch:

- a JSON patch that does not decode as a list of operations is 400 BadRequest; one with more
  than 10,000 operations is 413; one that decodes but cannot be applied (a failing ``test``, a
  path that does not exist, an unknown ``op``) is 422 Invalid with the generic message
  ``the server rejected our request due to an error in our request`` (upstream builds it with
  ``NewGenericServerResponse``, which drops the library's own message);
- a merge patch that is not valid JSON, or is ``null`` or a scalar, is 400
  ``Invalid JSON Patch``; a top-level array replaces the document, which then is not an object:
  422 as above.

RFC 6902 itself is the ``jsonpatch`` library's; only RFC 7386, a dozen lines, is written here.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch

from raftkube.apiserver import errors

MAX_JSON_PATCH_OPERATIONS = 10_000
"""Upstream's ``maxJSONPatchOperations``."""

UNPROCESSABLE = "the server rejected our request due to an error in our request"


def unprocessable() -> errors.APIError:
    """Upstream's ``NewGenericServerResponse(422, ...)``: reason Invalid, generic message."""
    return errors.APIError(422, "Invalid", UNPROCESSABLE)


def _reject_constant(name: str) -> Any:
    # Go's encoding/json has no NaN or Infinity; Python's json would accept them.
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def parse_json(data: bytes) -> Any:
    """Decode ``data`` as strict JSON (UTF-8, no NaN/Infinity); ValueError when it is not."""
    return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)


def json_patch(original: dict[str, Any], patch_bytes: bytes) -> dict[str, Any]:
    """Apply an RFC 6902 patch to a copy of ``original``."""
    try:
        ops = parse_json(patch_bytes)
    except ValueError as exc:
        raise errors.bad_request(str(exc)) from None
    if ops is None:  # Go decodes ``null`` as an empty patch
        ops = []
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        got = json_type(ops) if not isinstance(ops, list) else "array element"
        raise errors.bad_request(
            f"json: cannot unmarshal {got} into Go value of type jsonpatch.Patch"
        )
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise errors.APIError(
            413,
            "RequestEntityTooLarge",
            "Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}",
        )
    try:
        result = jsonpatch.JsonPatch(ops).apply(original, in_place=False)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError):
        # TypeError/KeyError: operations whose members have the wrong JSON type, which the
        # library does not check up front (for example ``"path": 3``).
        raise unprocessable() from None
    if not isinstance(result, dict):
        raise unprocessable()
    return result


def merge_patch(original: dict[str, Any], patch_bytes: bytes) -> dict[str, Any]:
    """Apply an RFC 7386 merge patch to a copy of ``original``."""
    try:
        patch = parse_json(patch_bytes)
    except ValueError:
        raise errors.bad_request("Invalid JSON Patch") from None
    if isinstance(patch, list):
        raise unprocessable()
    if not isinstance(patch, dict):
        raise errors.bad_request("Invalid JSON Patch")
    result = apply_merge(original, patch)
    assert isinstance(result, dict)
    return result


def apply_merge(target: Any, patch: Any) -> Any:
    """RFC 7386 section 2, ``MergePatch(Target, Patch)``, without touching either argument:
    objects merge key by key, ``null`` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge(out.get(key), value)
    return out


def create_merge_patch(source: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """The smallest merge patch taking ``source`` to ``target``, as kubectl computes for kinds
    without patch metadata. A ``null`` inside ``target`` cannot be expressed (RFC 7386 reads it
    as a deletion), so ``target`` should hold none."""
    patch: dict[str, Any] = {}
    for key in source:
        if key not in target:
            patch[key] = None
    for key, value in target.items():
        if key not in source:
            patch[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(source[key], dict):
            sub = create_merge_patch(source[key], value)
            if sub:
                patch[key] = sub
        elif not json_equal(source[key], value):
            patch[key] = copy.deepcopy(value)
    return patch


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: ``1`` and ``true`` differ (Python's ``==`` says they are equal)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def json_type(value: Any) -> str:
    """How Go's decoder names a JSON value's type in its errors."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if value is None:
        return "null"
    return "number"
