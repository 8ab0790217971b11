"""The OpenAPI definitions this server writes itself: the ``meta.k8s.io/v1`` and
``runtime`` types every document refers to (``ObjectMeta``, ``ListMeta``, ``Status``,
``DeleteOptions``, ``Patch``, ``WatchEvent``, ...) and the kinds only subresources carry
(``autoscaling/v1 Scale``, ``policy/v1 Eviction``, ``authentication.k8s.io/v1
TokenRequest``).

Field names, types, formats and Kubernetes extensions are upstream's (the ones strategic merge
patch reads matter most: ``ownerReferences`` merge by ``uid``, ``finalizers`` merge as a set);
descriptions are shortened.
"""

from __future__ import annotations

from typing import Any

from raftkube.apiserver import resources
from raftkube.apiserver.openapi_paths import META, definition_name, gvk, ref

_STRING = {"type": "string"}
_INT32 = {"type": "integer", "format": "int32"}
_INT64 = {"type": "integer", "format": "int64"}
_BOOL = {"type": "boolean"}
STRINGS = {"type": "array", "items": {"type": "string", "default": ""}}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
TIME = ref(META + "Time")
API_VERSION = {
    "type": "string",
    "description": "APIVersion defines the versioned schema of this representation of an object.",
}
KIND = {
    "type": "string",
    "description": "Kind is a string value representing the REST resource this object represents.",
}


def obj(description: str, required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"description": description, "type": "object"}
    if required:
        schema["required"] = list(required)
    # a trailing underscore lets a Python keyword (``continue``) name a field
    schema["properties"] = {name.rstrip("_"): value for name, value in properties.items()}
    return schema


def _array_of(name: str, **extensions: str) -> dict[str, Any]:
    return {"type": "array", "items": ref(name), **extensions}


def meta_definitions() -> dict[str, dict[str, Any]]:
    """The ``meta.k8s.io/v1`` and ``runtime`` types the operations and kinds refer to."""
    m = META
    defs: dict[str, dict[str, Any]] = {
        m + "Time": {
            "description": "RFC 3339 date and time.",
            "type": "string",
            "format": "date-time",
        },
        m + "MicroTime": {
            "description": "RFC 3339 date and time with microseconds.",
            "type": "string",
            "format": "date-time",
        },
        m + "FieldsV1": {"description": "The set of fields a manager owns.", "type": "object"},
        m + "Patch": {"description": "The body of a PATCH request.", "type": "object"},
        "io.k8s.apimachinery.pkg.runtime.RawExtension": {
            "description": "An embedded object.",
            "type": "object",
        },
        m + "OwnerReference": {
            **obj(
                "An object this object depends on.",
                ("apiVersion", "kind", "name", "uid"),
                apiVersion=_STRING,
                blockOwnerDeletion=_BOOL,
                controller=_BOOL,
                kind=_STRING,
                name=_STRING,
                uid=_STRING,
            ),
            "x-kubernetes-map-type": "atomic",
        },
        m + "ManagedFieldsEntry": obj(
            "A workflow-id, a FieldSet and the group version of the resource it applies to.",
            apiVersion=_STRING,
            fieldsType=_STRING,
            fieldsV1=ref(m + "FieldsV1"),
            manager=_STRING,
            operation=_STRING,
            subresource=_STRING,
            time=TIME,
        ),
        m + "ObjectMeta": obj(
            "Metadata all persisted resources must have.",
            annotations=_STRING_MAP,
            creationTimestamp=TIME,
            deletionGracePeriodSeconds=_INT64,
            deletionTimestamp=TIME,
            finalizers={
                **STRINGS,
                "x-kubernetes-list-type": "set",
                "x-kubernetes-patch-strategy": "merge",
            },
            generateName=_STRING,
            generation=_INT64,
            labels=_STRING_MAP,
            managedFields=_array_of(m + "ManagedFieldsEntry"),
            name=_STRING,
            namespace=_STRING,
            ownerReferences=_array_of(
                m + "OwnerReference",
                **{"x-kubernetes-patch-merge-key": "uid", "x-kubernetes-patch-strategy": "merge"},
            ),
            resourceVersion=_STRING,
            selfLink=_STRING,
            uid=_STRING,
        ),
        m + "ListMeta": obj(
            "Metadata that synthetic resources must have.",
            continue_=_STRING,
            remainingItemCount=_INT64,
            resourceVersion=_STRING,
            selfLink=_STRING,
        ),
        m + "LabelSelectorRequirement": obj(
            "A selector that contains values, a key, and an operator.",
            ("key", "operator"),
            key=_STRING,
            operator=_STRING,
            values=STRINGS,
        ),
        m + "LabelSelector": {
            **obj(
                "A label query over a set of resources.",
                matchExpressions=_array_of(m + "LabelSelectorRequirement"),
                matchLabels=_STRING_MAP,
            ),
            "x-kubernetes-map-type": "atomic",
        },
        m + "StatusCause": obj(
            "One cause of an error.", field=_STRING, message=_STRING, reason=_STRING
        ),
        m + "StatusDetails": obj(
            "Extended data of a Status.",
            causes=_array_of(m + "StatusCause"),
            group=_STRING,
            kind=_STRING,
            name=_STRING,
            retryAfterSeconds=_INT32,
            uid=_STRING,
        ),
        m + "Status": obj(
            "The return value of calls that do not return other objects.",
            apiVersion=API_VERSION,
            code=_INT32,
            details=ref(m + "StatusDetails"),
            kind=KIND,
            message=_STRING,
            metadata=ref(m + "ListMeta"),
            reason=_STRING,
            status=_STRING,
        ),
        m + "Preconditions": obj(
            "Must be fulfilled before an operation.", resourceVersion=_STRING, uid=_STRING
        ),
        m + "DeleteOptions": obj(
            "Options for a delete.",
            apiVersion=API_VERSION,
            dryRun=STRINGS,
            gracePeriodSeconds=_INT64,
            kind=KIND,
            orphanDependents=_BOOL,
            preconditions=ref(m + "Preconditions"),
            propagationPolicy=_STRING,
        ),
        m + "WatchEvent": obj(
            "One event of a watch.",
            ("type", "object"),
            object=ref("io.k8s.apimachinery.pkg.runtime.RawExtension"),
            type=_STRING,
        ),
    }
    served = sorted({(r.group, r.version) for r in resources.RESOURCES})
    for name in ("Status",):
        defs[m + name]["x-kubernetes-group-version-kind"] = [gvk("", "v1", name)]
    for name in ("DeleteOptions", "WatchEvent"):
        defs[m + name]["x-kubernetes-group-version-kind"] = [gvk(g, v, name) for g, v in served]
    return defs


def subresource_definitions() -> dict[str, dict[str, Any]]:
    """The kinds only subresources carry: ``autoscaling/v1 Scale``, ``policy/v1 Eviction``,
    ``authentication.k8s.io/v1 TokenRequest``."""
    meta = ref(META + "ObjectMeta")

    def kind(
        group: str, version: str, name: str, description: str, **fields: Any
    ) -> tuple[str, dict[str, Any]]:
        schema = obj(description, apiVersion=API_VERSION, kind=KIND, metadata=meta, **fields)
        schema["x-kubernetes-group-version-kind"] = [gvk(group, version, name)]
        return definition_name(group, version, name), schema

    return dict(
        [
            kind(
                "autoscaling",
                "v1",
                "Scale",
                "Scale represents a scaling request for a resource.",
                spec=obj("The desired scale.", replicas=_INT32),
                status=obj("The current scale.", ("replicas",), replicas=_INT32, selector=_STRING),
            ),
            kind(
                "policy",
                "v1",
                "Eviction",
                "Eviction evicts a pod from its node subject to "
                "certain policies and safety constraints.",
                deleteOptions=ref(META + "DeleteOptions"),
            ),
            kind(
                "authentication.k8s.io",
                "v1",
                "TokenRequest",
                "TokenRequest requests a token for a given service account.",
                spec=obj(
                    "The parameters of the token.",
                    ("audiences",),
                    audiences=STRINGS,
                    boundObjectRef=obj(
                        "The object the token is bound to.",
                        apiVersion=_STRING,
                        kind=_STRING,
                        name=_STRING,
                        uid=_STRING,
                    ),
                    expirationSeconds=_INT64,
                ),
                status=obj(
                    "The issued token.",
                    ("token", "expirationTimestamp"),
                    token=_STRING,
                    expirationTimestamp=TIME,
                ),
            ),
        ]
    )
