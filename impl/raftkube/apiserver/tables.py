"""Server-side Tables and PartialObjectMetadata: the converted answers of a read.

``kubectl get`` asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` and prints the
columns and cells it is given (without a Table it can show only NAME and AGE); ``kubectl get
-w`` asks for the same on a watch, where every event carries a one-row Table and only the first
carries the column definitions. Controllers that need only metadata (the garbage collector,
``kubectl`` in a few places) ask for ``PartialObjectMetadata`` or ``PartialObjectMetadataList``.

Shapes follow ``k8s.io/apimachinery/pkg/apis/meta/v1`` (``Table``, ``TableColumnDefinition``,
``TableRow``, ``PartialObjectMetadata``) and the conversions follow
``k8s.io/apiserver/pkg/endpoints/handlers/response.go`` (``asTable``, ``asPartialObjectMetadata``,
``asPartialObjectMetadataList``). The columns and cells of each kind are in
:mod:`raftkube.apiserver.printers`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

from raftkube.apiserver import errors
from raftkube.apiserver.printers import printer_for
from raftkube.apiserver.printing import meta
from raftkube.apiserver.resources import ResourceInfo

IncludeObject = Literal["Metadata", "Object", "None"]
INCLUDE_OBJECT_VALUES: tuple[IncludeObject, ...] = ("Metadata", "Object", "None")


def include_object_option(value: str) -> IncludeObject:
    """The ``includeObject`` query parameter of a Table request, validated as upstream's
    ``ValidateTableOptions`` (empty means ``Metadata``)."""
    if value == "":
        return "Metadata"
    for allowed in INCLUDE_OBJECT_VALUES:
        if value == allowed:
            return allowed
    raise errors.bad_request(
        "Unable to convert to Table as requested: includeObject: Invalid value: "
        f"\"{value}\": must be 'Metadata', 'Object', 'None', or empty"
    )


def _list_meta(
    resource_version: str, continue_token: str, remaining_item_count: int | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if resource_version:
        out["resourceVersion"] = resource_version
    if continue_token:
        out["continue"] = continue_token
    if remaining_item_count is not None:
        out["remainingItemCount"] = remaining_item_count
    return out


def partial_object_metadata(obj: Mapping[str, Any], version: str = "v1") -> dict[str, Any]:
    """``PartialObjectMetadata`` of ``obj``: its whole ``metadata`` and nothing else."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": dict(meta(obj)),
    }


def partial_object_metadata_list(
    objects: Iterable[Mapping[str, Any]],
    *,
    list_rv: str = "",
    continue_token: str = "",
    remaining_item_count: int | None = None,
    version: str = "v1",
) -> dict[str, Any]:
    """``PartialObjectMetadataList`` of a list's items, with the list's metadata."""
    return {
        "kind": "PartialObjectMetadataList",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": _list_meta(list_rv, continue_token, remaining_item_count),
        "items": [partial_object_metadata(o, version) for o in objects],
    }


def _row_object(obj: Mapping[str, Any], include: IncludeObject, version: str) -> Any:
    if include == "Object":
        return dict(obj)
    if include == "Metadata":
        return partial_object_metadata(obj, version)
    return None


def to_table(
    info: ResourceInfo,
    objects: Iterable[Mapping[str, Any]],
    *,
    list_rv: str = "",
    continue_token: str = "",
    include_object: IncludeObject = "Metadata",
    now: datetime,
    include_headers: bool = True,
    remaining_item_count: int | None = None,
    version: str = "v1",
) -> dict[str, Any]:
    """The ``Table`` of ``objects`` (a list's items, or the one object of a get), with
    kubectl's columns for ``info``'s kind and every cell computed at ``now`` (timezone-aware).

    ``list_rv``/``continue_token``/``remaining_item_count`` are the list's metadata (for a get,
    pass the object's resourceVersion as ``list_rv``, as upstream does). Each row's ``object``
    is, per ``include_object``, the object's ``PartialObjectMetadata`` (the default), the
    object itself, or null. ``include_headers=False`` leaves ``columnDefinitions`` null, as on
    every watch event after the first. ``version`` is the ``meta.k8s.io`` version asked for
    (``v1`` or ``v1beta1``).
    """
    printer = printer_for(info.group, info.kind)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": printer.cells(obj, now)}
        conditions = printer.conditions(obj)
        if conditions:
            row["conditions"] = conditions
        row["object"] = _row_object(obj, include_object, version)
        rows.append(row)
    columns = [c.as_dict() for c in printer.columns] if include_headers else None
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": _list_meta(list_rv, continue_token, remaining_item_count),
        "columnDefinitions": columns,
        "rows": rows,
    }
