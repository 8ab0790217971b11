"""Strategic merge patch: Kubernetes's merge patch that merges some lists by a key.

It follows ``k8s.io/apimachinery/pkg/util/strategicpatch``'s ``StrategicMergeMapPatch`` (the
server's side: ``MergeParallelList`` and ``IgnoreUnmatchedNulls`` on) and the format described
in community/contributors/devel/sig-api-machinery/strategic-merge-patch.md:

- maps merge key by key; ``null`` deletes a key; scalars and values of another type replace;
- a list whose field has the ``merge`` strategy merges: lists of maps by the field's merge key
  (an element whose key matches is merged into the live one, others are appended), lists of
  scalars as a set; every other list is replaced;
- directives: ``$patch: replace`` (a map or a merging list taken literally), ``$patch: delete``
  (a map emptied; in a merging list, every element with that merge key removed),
  ``$retainKeys`` (keys of the live map not listed are cleared), ``$setElementOrder/<field>``
  (the order of a merged list), ``$deleteFromPrimitiveList/<field>`` (scalars removed from a
  merging set);
- the order of a merged list: items named by the patch (or its ``$setElementOrder``) in that
  order, live-only items kept in their live order and interleaved where the live order places
  them (upstream's ``normalizeElementOrder``/``mergeSortedSlice``).

Failures are answered as upstream's ``interpretStrategicMergePatchError``: malformed
directives are 400, a list of lists or a patch key missing from ``$retainKeys`` 400/422, and
every other error upstream returns as a plain Go error (an element without its merge key, an
unknown ``$patch`` value) is 500 with reason unknown and the Go message, which kubectl prints as
``Error from server: map: map[image:nginx] does not contain declared merge key: name``.

Where upstream stores a patch value verbatim (a field absent from the live object, a
``$patch: replace`` map) and relies on decoding into Go types to drop leftover directive keys,
this merges the value into an empty one (maps, and lists of maps that carry their merge key),
so no ``$``-directive survives into a stored object;
a ``$deleteFromPrimitiveList`` for a field the live object lacks, or whose list does not merge,
removes nothing (upstream would store the deletion list as the field's value). The same outcome
for every patch kubectl generates.
"""

from __future__ import annotations

import copy
from typing import Any

from raftkube.apiserver import errors
from raftkube.apiserver.patch.rfc import json_equal
from raftkube.apiserver.patch.strategies import FieldStrategy, StrategyLookup

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ELEMENT_ORDER = "$setElementOrder"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"

ERR_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
ERR_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
ERR_BAD_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"
ERR_NO_LIST_OF_LISTS = "lists of lists are not supported"

Path = tuple[str, ...]


def strategic_merge(
    original: dict[str, Any], patch: dict[str, Any], lookup: StrategyLookup
) -> dict[str, Any]:
    """Apply ``patch`` to ``original``; neither argument is modified."""
    return _Merger(lookup).merge_map(copy.deepcopy(original), copy.deepcopy(patch), ())


def go_value(value: Any) -> str:
    """``value`` as Go's ``%v`` prints the decoded JSON (``map[k:v]``, ``[a b]``, ``<nil>``),
    for messages that quote a patch's content the way upstream's do."""
    if isinstance(value, dict):
        inner = " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value))
        return f"map[{inner}]"
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _go_error(message: str) -> errors.APIError:
    """An error upstream returns as a plain Go error: 500, no reason, the error's text."""
    return errors.APIError(500, "", message)


def _no_merge_key(item: dict[str, Any], key: str) -> errors.APIError:
    return _go_error(f"map: {go_value(item)} does not contain declared merge key: {key}")


def _go_type(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    return "<nil>"


def _bad_arg_type(expected: Any, actual: Any) -> errors.APIError:
    return _go_error(f"expected a {_go_type(expected)}, but received a {_go_type(actual)}")


def _element_kind(*lists: list[Any]) -> type | None:
    """The one JSON type of every element (None for empty lists), as ``sliceElementType``."""
    seen: type | None = None
    for items in lists:
        for item in items:
            if seen is None:
                if isinstance(item, list):
                    raise errors.APIError(422, "Invalid", ERR_NO_LIST_OF_LISTS)
                seen = type(item)
            elif type(item) is not seen:
                shown = " ".join(go_value(x) for x in lists)
                raise _go_error(f"list element types are not identical: [{shown}]")
    return seen


def _key_of(item: Any, merge_key: str | None) -> Any:
    """What identifies ``item`` in its list: the merge key's value, or the scalar itself."""
    if merge_key is None:
        return item
    return item.get(merge_key) if isinstance(item, dict) else None


def _index(items: list[Any], item: Any, merge_key: str | None) -> int:
    """Upstream's ``index``: the position of the first element identified like ``item``."""
    wanted = _key_of(item, merge_key)
    for i, candidate in enumerate(items):
        if json_equal(_key_of(candidate, merge_key), wanted):
            return i
    return -1


def _require_merge_key(items: list[Any], merge_key: str) -> None:
    for item in items:
        if not isinstance(item, dict):
            raise _bad_arg_type({}, item)
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)


def _sort_by(items: list[Any], order: list[Any], merge_key: str | None) -> list[Any]:
    """Upstream's ``normalizeSliceOrder``: ``items`` in the order ``order`` gives them (a
    stable sort; items ``order`` does not name keep their place relative to each other);
    ``$patch: delete`` elements go last."""
    to_delete: list[Any] = []
    if merge_key is not None:
        _require_merge_key(items, merge_key)
        _require_merge_key(order, merge_key)
        to_delete = [i for i in items if i.get(DIRECTIVE) == "delete"]
        items = [i for i in items if i.get(DIRECTIVE) != "delete"]
    big = len(order)
    keyed = sorted(
        enumerate(items),
        key=lambda pair: (p if (p := _index(order, pair[1], merge_key)) >= 0 else big, pair[0]),
    )
    return [item for _, item in keyed] + to_delete


def _interleave(
    left: list[Any], right: list[Any], server_order: list[Any], merge_key: str | None
) -> list[Any]:
    """Upstream's ``mergeSortedSlice``: merge two ordered lists, a ``left`` item going first
    only when the live order puts it before the next ``right`` item."""
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index(server_order, left[i], merge_key)
            ri = _index(server_order, right[j], merge_key)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _normalize_order(
    merged: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str | None,
) -> list[Any]:
    """Split ``merged`` into the items ``patch_order`` names and the live-only ones, order each
    by its own list, and interleave them by the live order."""
    if merge_key is not None:
        _require_merge_key(merged, merge_key)
    named = [m for m in merged if _index(patch_order, m, merge_key) >= 0]
    server_only = [m for m in merged if _index(patch_order, m, merge_key) < 0]
    named = _sort_by(named, patch_order, merge_key)
    server_only = _sort_by(server_only, server_order, merge_key)
    return _interleave(server_only, named, server_order, merge_key)


def _field_after(key: str, prefix: str, error: str) -> str:
    head, sep, field = key.partition("/")
    if not sep or head != prefix:
        raise errors.bad_request(error)
    return field


class _Merger:
    def __init__(self, lookup: StrategyLookup) -> None:
        self._lookup = lookup

    def _strategy(self, path: Path) -> FieldStrategy:
        return FieldStrategy.parse(*self._lookup(path))

    def fresh(self, value: Any, path: Path) -> Any:
        """A patch value for a field the live object lacks: merged into nothing, so its
        directives are applied (and removed) rather than stored. A list that is not a list of
        maps each carrying its merge key (or a directive) is taken as it is, as upstream takes
        it, and left to the kind's validation to judge."""
        if isinstance(value, dict):
            return self.merge_map({}, value, path)
        strategy = self._strategy(path)
        key = strategy.merge_key
        keyed = isinstance(value, list) and key is not None and strategy.merge
        if keyed and all(isinstance(v, dict) and (key in v or DIRECTIVE in v) for v in value):
            return self.merge_list([], value, path, is_delete_list=False)
        return value

    def merge_map(
        self, original: dict[str, Any], patch: dict[str, Any], path: Path
    ) -> dict[str, Any]:
        if DIRECTIVE in patch:
            directive = patch.pop(DIRECTIVE)
            if directive == "replace":
                return self.merge_map({}, patch, path)
            if directive == "delete":
                return {}
            patch[DIRECTIVE] = directive
            raise _go_error(f"unknown patch type: {directive} in map: {go_value(patch)}")
        self._retain_keys(original, patch)
        self._set_element_orders(original, patch, path)
        deletions = [k for k in patch if k.startswith(DELETE_FROM_PRIMITIVE_LIST)]
        for key in [k for k in patch if k not in deletions] + deletions:
            value = patch[key]
            is_delete_list = key in deletions
            if is_delete_list:
                key = _field_after(key, DELETE_FROM_PRIMITIVE_LIST, ERR_BAD_PRIMITIVE_LIST)
            field = (*path, key)
            if value is None:
                original.pop(key, None)
            elif key not in original:
                if not is_delete_list:
                    original[key] = self.fresh(value, field)
            elif isinstance(value, dict) and isinstance(original[key], dict):
                if self._strategy(field).replace:
                    original[key] = self.merge_map({}, value, field)
                else:
                    original[key] = self.merge_map(original[key], value, field)
            elif isinstance(value, list) and isinstance(original[key], list):
                if self._strategy(field).merge:
                    original[key] = self.merge_list(original[key], value, field, is_delete_list)
                elif not is_delete_list:
                    original[key] = value
            elif not is_delete_list:
                original[key] = self.fresh(value, field)
        return original

    def _retain_keys(self, original: dict[str, Any], patch: dict[str, Any]) -> None:
        """``$retainKeys``: every key the patch sets must be listed; live keys not listed go."""
        if RETAIN_KEYS not in patch:
            return
        retained = patch.pop(RETAIN_KEYS)
        if not isinstance(retained, list):
            raise errors.bad_request(ERR_BAD_RETAIN_KEYS)
        for key, value in patch.items():
            if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
                continue
            if not any(json_equal(key, r) for r in retained):
                raise errors.bad_request(ERR_BAD_RETAIN_KEYS)
        for key in list(original):
            if not any(json_equal(key, r) for r in retained):
                del original[key]

    def _set_element_orders(
        self, original: dict[str, Any], patch: dict[str, Any], path: Path
    ) -> None:
        """``$setElementOrder/<field>``: merge that field now and order it as listed (upstream's
        ``mergePatchIntoOriginal``); the field's patch value is consumed here."""
        for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
            order = patch.pop(key)
            if not isinstance(order, list):
                raise errors.bad_request(ERR_BAD_SET_ELEMENT_ORDER)
            name = _field_after(key, SET_ELEMENT_ORDER, ERR_BAD_SET_ELEMENT_ORDER)
            if patch.get(name, []) is None:
                continue  # the field is being deleted: nothing to order
            live = original.get(name)
            given = patch.get(name)
            if live is not None and not isinstance(live, list):
                raise _bad_arg_type([], live)
            if given is not None and not isinstance(given, list):
                raise _bad_arg_type([], given)
            if live is None and given is None:
                continue
            field = (*path, name)
            strategy = self._strategy(field)
            merge_key = strategy.merge_key
            if given:
                self._check_order(given, order, merge_key)
            if live is None:
                merged = self.fresh(given, field)
            elif given is None:
                merged = live
            elif strategy.merge:
                merged = self.merge_list(live, given, field, is_delete_list=False)
            else:
                merged = given
            _element_kind(live or [], given or [])
            original[name] = _normalize_order(merged, order, live or [], merge_key)
            patch.pop(name, None)

    @staticmethod
    def _check_order(given: list[Any], order: list[Any], merge_key: str | None) -> None:
        """Upstream's ``validatePatchWithSetOrderList``: the patch list's items (deletions
        aside) appear in the order list, in the same relative order."""
        if not order:
            return
        kept = given
        if merge_key is not None:
            for item in given:
                if not isinstance(item, dict):
                    raise _bad_arg_type({}, item)
            kept = [i for i in given if i.get(DIRECTIVE) != "delete"]
        p = s = 0
        while p < len(kept) and s < len(order):
            if isinstance(kept[p], dict) and DIRECTIVE in kept[p]:
                p += 1
                continue
            if merge_key is None:
                same = json_equal(kept[p], order[s])
            else:
                if not isinstance(order[s], dict):
                    raise _bad_arg_type({}, order[s])
                for item in (kept[p], order[s]):
                    if merge_key not in item:
                        raise _no_merge_key(item, merge_key)
                same = json_equal(kept[p][merge_key], order[s][merge_key])
            if same:
                p += 1
            s += 1
        if p < len(kept):
            raise _go_error(
                f"The order in patch list:\n{go_value(given)}\n doesn't match "
                f"{SET_ELEMENT_ORDER} list:\n{go_value(order)}\n"
            )

    def merge_list(
        self, original: list[Any], patch: list[Any], path: Path, is_delete_list: bool
    ) -> list[Any]:
        """A list whose field merges (upstream's ``mergeSlice``)."""
        if not original and not patch:
            return original
        kind = _element_kind(original, patch)
        merge_key = self._strategy(path).merge_key
        if kind is not dict:
            if is_delete_list:
                return [x for x in original if not any(json_equal(x, d) for d in patch)]
            merged: list[Any] = []
            for item in original + patch:
                if not any(json_equal(item, m) for m in merged):
                    merged.append(item)
            return _normalize_order(merged, patch, original, None)
        if merge_key is None:
            raise _go_error("cannot merge lists without merge key for type map")
        original, patch = self._special_elements(original, patch, merge_key, path)
        server_order = list(original)
        merged = list(original)
        for item in patch:
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            at = _index(merged, item, merge_key)
            if at >= 0:
                merged[at] = self.merge_map(merged[at], item, path)
            else:
                merged.append(self.fresh(item, path))
        return _normalize_order(merged, patch, server_order, merge_key)

    def _special_elements(
        self, original: list[Any], patch: list[Any], merge_key: str, path: Path
    ) -> tuple[list[Any], list[Any]]:
        """Elements carrying ``$patch``: deletions applied to the live list, ``replace`` makes
        the patch's other elements the whole list (upstream's
        ``mergeSliceWithSpecialElements``)."""
        plain: list[Any] = []
        replace = False
        for item in patch:
            if DIRECTIVE not in item:
                plain.append(item)
                continue
            directive = item[DIRECTIVE]
            if directive == "delete":
                if merge_key not in item:
                    raise _no_merge_key(item, merge_key)
                original = [
                    o for o in original if not json_equal(o.get(merge_key), item[merge_key])
                ]
            elif directive == "replace":
                replace = True
            elif directive == "merge":
                raise _go_error("merging lists cannot yet be specified in the patch")
            else:
                raise _go_error(f"unknown patch type: {directive} in map: {go_value(item)}")
        if replace:
            return [self.fresh(item, path) for item in plain], []
        return original, plain
