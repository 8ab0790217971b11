"""Where strategic merge patch merges lists instead of replacing them: the patch metadata.

Upstream reads it from the Go struct tags (``patchStrategy:"merge" patchMergeKey:"name"``),
published in OpenAPI as ``x-kubernetes-patch-strategy`` and ``x-kubernetes-patch-merge-key``.
Here a :data:`StrategyLookup` answers for one field, named by its path of field names from the
object's root (list elements add no step: ``("spec", "containers", "ports")`` is every
container's ``ports``). The per-kind OpenAPI schemas can supply their own lookup; the table
below, copied from ``k8s.io/api`` core/v1 and apps/v1 for the kinds this server stores, is what
:func:`lookup_for_kind` answers with. Fields not in it are atomic: lists are replaced, maps
merged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

StrategyLookup = Callable[[tuple[str, ...]], tuple[str | None, str]]
"""``path -> (merge key or None, strategy)``; the strategy is upstream's tag value: ``""``,
``"merge"``, ``"replace"``, ``"retainKeys"`` or ``"merge,retainKeys"``."""


@attrs.frozen
class FieldStrategy:
    """One field's patch metadata, parsed."""

    merge_key: str | None = None
    merge: bool = False
    replace: bool = False
    retain_keys: bool = False

    @classmethod
    def parse(cls, merge_key: str | None, strategy: str) -> FieldStrategy:
        parts = {p.strip() for p in strategy.split(",") if p.strip()}
        return cls(
            merge_key=merge_key or None,
            merge="merge" in parts,
            replace="replace" in parts,
            retain_keys="retainKeys" in parts,
        )


_Table = dict[tuple[str, ...], tuple[str | None, str]]

_OBJECT_META: _Table = {
    ("finalizers",): (None, "merge"),
    ("ownerReferences",): ("uid", "merge"),
}

_CONTAINER: _Table = {
    ("ports",): ("containerPort", "merge"),
    ("env",): ("name", "merge"),
    ("volumeMounts",): ("mountPath", "merge"),
    ("volumeDevices",): ("devicePath", "merge"),
}


def _mount(prefix: tuple[str, ...], table: _Table) -> _Table:
    return {prefix + path: value for path, value in table.items()}


def _container_lists() -> _Table:
    table: _Table = {}
    for containers in ("containers", "initContainers", "ephemeralContainers"):
        table[(containers,)] = ("name", "merge")
        table.update(_mount((containers,), _CONTAINER))
    return table


_POD_SPEC: _Table = {
    ("volumes",): ("name", "merge,retainKeys"),
    ("hostAliases",): ("ip", "merge"),
    ("imagePullSecrets",): ("name", "merge"),
    ("topologySpreadConstraints",): ("topologyKey", "merge"),
    ("schedulingGates",): ("name", "merge"),
    ("resourceClaims",): ("name", "merge,retainKeys"),
    **_container_lists(),
}

_POD_STATUS: _Table = {
    ("conditions",): ("type", "merge"),
    ("podIPs",): ("ip", "merge"),
    ("hostIPs",): ("ip", "merge"),
    ("resourceClaimStatuses",): ("name", "merge,retainKeys"),
}

_CONDITIONS: _Table = {("conditions",): ("type", "merge")}


def _template(prefix: tuple[str, ...]) -> _Table:
    """A PodTemplateSpec at ``prefix``: its metadata and its pod spec."""
    return {
        **_mount((*prefix, "metadata"), _OBJECT_META),
        **_mount((*prefix, "spec"), _POD_SPEC),
    }


_WORKLOAD: _Table = {
    **_template(("spec", "template")),
    **_mount(("status",), _CONDITIONS),
}

KIND_TABLES: dict[str, _Table] = {
    "Pod": {**_mount(("spec",), _POD_SPEC), **_mount(("status",), _POD_STATUS)},
    "PodTemplate": _template(("template",)),
    "ReplicationController": _WORKLOAD,
    "ReplicaSet": _WORKLOAD,
    "Deployment": {**_WORKLOAD, ("spec", "strategy"): (None, "retainKeys")},
    "Service": {
        ("spec", "ports"): ("port", "merge"),
        **_mount(("status",), _CONDITIONS),
    },
    "Node": {
        ("spec", "podCIDRs"): (None, "merge"),
        ("status", "conditions"): ("type", "merge"),
        ("status", "addresses"): ("type", "merge"),
    },
    "Namespace": _mount(("status",), _CONDITIONS),
}
"""Per kind, the fields with patch metadata other than the object's own ``metadata``."""


def lookup_for_kind(kind: str) -> StrategyLookup:
    """The lookup for objects of ``kind``; any kind gets ``metadata``'s ``finalizers`` (a set
    of strings) and ``ownerReferences`` (merged by ``uid``)."""
    table = {**_mount(("metadata",), _OBJECT_META), **KIND_TABLES.get(kind, {})}

    def lookup(path: tuple[str, ...]) -> tuple[str | None, str]:
        return table.get(path, (None, ""))

    return lookup


MERGE_KEY_EXTENSION = "x-kubernetes-patch-merge-key"
STRATEGY_EXTENSION = "x-kubernetes-patch-strategy"


def lookup_from_schema(
    schema: Mapping[str, Any], fallback: StrategyLookup | None = None
) -> StrategyLookup:
    """The lookup an OpenAPI-v3-style schema gives (inline ``properties``, ``items``,
    ``additionalProperties``; no ``$ref``): a field's ``x-kubernetes-patch-merge-key`` and
    ``x-kubernetes-patch-strategy``. A path the schema does not describe (a free-form object,
    a field it lacks) is answered by ``fallback``, else as atomic."""

    def lookup(path: tuple[str, ...]) -> tuple[str | None, str]:
        node: Mapping[str, Any] = schema
        for name in path:
            child = _step(node, name)
            if child is None:
                return fallback(path) if fallback is not None else (None, "")
            node = child
        return node.get(MERGE_KEY_EXTENSION) or None, str(node.get(STRATEGY_EXTENSION, ""))

    return lookup


def _step(node: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """The schema of field ``name`` of what ``node`` describes, looking through lists (a list's
    elements add no step to a path) and maps."""
    while node.get("type") == "array":
        items = node.get("items")
        if not isinstance(items, Mapping):
            return None
        node = items
    properties = node.get("properties")
    if isinstance(properties, Mapping):
        found = properties.get(name)
        return found if isinstance(found, Mapping) else None
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, Mapping) else None
