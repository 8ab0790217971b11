"""The OpenAPI ``paths`` of the served resources: one operation per verb, in OpenAPI v3 form.

kubectl reads three things from these operations, so they follow upstream's exactly:

* ``x-kubernetes-group-version-kind`` on each operation: ``kubectl explain`` finds a
  resource's kind through its list or get path, and ``kubectl apply`` finds the PATCH of a
  kind to learn whether it takes strategic merge patch (from the PATCH request body's
  ``application/strategic-merge-patch+json`` media type);
* the ``fieldValidation`` query parameter on every PATCH: kubectl's field-validation check
  (``queryParamVerifierV3``) looks for it on the first PATCH of the kind it meets, and only
  then leaves validation to the server instead of downloading ``/openapi/v2``;
* ``x-kubernetes-action``, ``operationId`` and ``tags`` as upstream names them, which
  generated clients key on.

Simplified: the deprecated ``/watch/`` paths are not listed (the ``watch`` parameter of the
list operations covers watching), and DELETE answers are described as ``Status`` for every
kind.
"""

from __future__ import annotations

from typing import Any

from raftkube.apiserver.discovery import SUBRESOURCES
from raftkube.apiserver.resources import ResourceInfo

V3_PREFIX = "#/components/schemas/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
RESPONSE_TYPES = ("application/json", "application/yaml")
WATCH_RESPONSE_TYPES = (*RESPONSE_TYPES, "application/json;stream=watch")


def definition_name(group: str, version: str, kind: str) -> str:
    """Upstream's definition name: ``io.k8s.api.core.v1.Pod``,
    ``io.k8s.api.rbac.v1.Role`` (the group's first label names the Go package)."""
    package = group.split(".")[0] if group else "core"
    return f"io.k8s.api.{package}.{version}.{kind}"


def ref(name: str) -> dict[str, Any]:
    return {"$ref": V3_PREFIX + name}


def gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "kind": kind, "version": version}


def _operation_prefix(info: ResourceInfo) -> str:
    """``CoreV1``, ``AppsV1``, ``RbacAuthorizationV1``: the middle of upstream's operation
    ids."""
    group = info.group.removesuffix(".k8s.io") if info.group else "core"
    words = [w[:1].upper() + w[1:] for w in group.split(".")]
    return "".join(words) + info.version[:1].upper() + info.version[1:]


def tag(info: ResourceInfo) -> str:
    """``core_v1``, ``apps_v1``, ``rbacAuthorization_v1``."""
    group = info.group.removesuffix(".k8s.io") if info.group else "core"
    first, *rest = group.split(".")
    return first + "".join(w[:1].upper() + w[1:] for w in rest) + "_" + info.version


def _param(name: str, where: str, kind: str, description: str) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": where, "description": description}
    if where == "path":
        p["required"] = True
    p["schema"] = {"type": kind, "uniqueItems": True}
    return p


def _query(name: str, kind: str, description: str) -> dict[str, Any]:
    return _param(name, "query", kind, description)


PRETTY = _query("pretty", "string", "If 'true', then the output is pretty printed.")
NAMESPACE = _param(
    "namespace", "path", "string", "object name and auth scope, such as for teams and projects"
)
DRY_RUN = _query(
    "dryRun",
    "string",
    "When present, indicates that modifications should not be persisted. "
    "Valid values are: - All: all dry run stages will be processed",
)
FIELD_MANAGER = _query(
    "fieldManager",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes.",
)
FIELD_VALIDATION = _query(
    "fieldValidation",
    "string",
    "fieldValidation instructs the server on how to handle objects in the request "
    "(POST/PUT/PATCH) containing unknown or duplicate fields. "
    "Valid values are: - Ignore - Warn - Strict.",
)
FORCE = _query(
    "force",
    "boolean",
    'Force is going to "force" Apply requests. It means user will re-acquire conflicting '
    "fields owned by other people. Force flag must be unset for non-apply patch requests.",
)
GRACE = _query(
    "gracePeriodSeconds",
    "integer",
    "The duration in seconds before the object should be deleted. "
    "The value zero indicates delete immediately.",
)
ORPHAN = _query("orphanDependents", "boolean", "Deprecated: please use the PropagationPolicy.")
PROPAGATION = _query(
    "propagationPolicy",
    "string",
    "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.",
)
LIST_PARAMS = [
    _query(
        "allowWatchBookmarks",
        "boolean",
        'allowWatchBookmarks requests watch events with type "BOOKMARK".',
    ),
    _query(
        "continue",
        "string",
        "The continue option should be set when retrieving more results from the server.",
    ),
    _query(
        "fieldSelector",
        "string",
        "A selector to restrict the list of returned objects by their fields. "
        "Defaults to everything.",
    ),
    _query(
        "labelSelector",
        "string",
        "A selector to restrict the list of returned objects by their labels. "
        "Defaults to everything.",
    ),
    _query("limit", "integer", "limit is a maximum number of responses to return for a list call."),
    _query(
        "resourceVersion",
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from.",
    ),
    _query(
        "resourceVersionMatch",
        "string",
        "resourceVersionMatch determines how resourceVersion is applied to list calls.",
    ),
    _query(
        "sendInitialEvents",
        "boolean",
        "`sendInitialEvents=true` may be set together with `watch=true`.",
    ),
    _query("timeoutSeconds", "integer", "Timeout for the list/watch call."),
    _query(
        "watch",
        "boolean",
        "Watch for changes to the described resources and return them as a stream of add, "
        "update, and remove notifications.",
    ),
]


def _content(schema: dict[str, Any], media: tuple[str, ...]) -> dict[str, Any]:
    return {m: {"schema": schema} for m in media}


def _responses(
    schema: dict[str, Any], *codes: str, media: tuple[str, ...] = RESPONSE_TYPES
) -> dict[str, Any]:
    text = {"200": "OK", "201": "Created", "202": "Accepted"}
    out: dict[str, Any] = {
        c: {"description": text[c], "content": _content(schema, media)} for c in codes
    }
    out["401"] = {"description": "Unauthorized"}
    return out


def _operation(
    info: ResourceInfo,
    action: str,
    verb_id: str,
    description: str,
    kind: dict[str, str],
    *,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    body_media: tuple[str, ...] = ("application/json",),
    responses: dict[str, Any],
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": [tag(info)],
        "description": description,
        "operationId": verb_id,
    }
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"content": _content(body, body_media), "required": True}
    op["responses"] = responses
    op["x-kubernetes-action"] = action
    op["x-kubernetes-group-version-kind"] = kind
    return op


def resource_paths(info: ResourceInfo) -> dict[str, dict[str, Any]]:
    """The path items of one resource and its subresources, keyed by path."""
    base = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    scoped = (
        f"{base}/namespaces/{{namespace}}/{info.resource}"
        if info.namespaced
        else f"{base}/{info.resource}"
    )
    kind = gvk(info.group, info.version, info.kind)
    obj = ref(definition_name(info.group, info.version, info.kind))
    lst = ref(definition_name(info.group, info.version, info.list_kind))
    status = ref(META + "Status")
    prefix = _operation_prefix(info)
    scope = "Namespaced" if info.namespaced else ""
    path_params = [NAMESPACE, PRETTY] if info.namespaced else [PRETTY]
    verbs = set(info.verbs)
    paths: dict[str, dict[str, Any]] = {}

    collection: dict[str, Any] = {}
    if "list" in verbs:
        collection["get"] = _operation(
            info,
            "list",
            f"list{prefix}{scope}{info.kind}",
            f"list or watch objects of kind {info.kind}",
            kind,
            parameters=LIST_PARAMS,
            responses=_responses(lst, "200", media=WATCH_RESPONSE_TYPES),
        )
    if "create" in verbs:
        collection["post"] = _operation(
            info,
            "post",
            f"create{prefix}{scope}{info.kind}",
            f"create a {info.kind}",
            kind,
            parameters=[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION],
            body=obj,
            responses=_responses(obj, "200", "201", "202"),
        )
    if "deletecollection" in verbs:
        collection["delete"] = _operation(
            info,
            "deletecollection",
            f"delete{prefix}Collection{scope}{info.kind}",
            f"delete collection of {info.kind}",
            kind,
            parameters=[DRY_RUN, GRACE, ORPHAN, PROPAGATION, *LIST_PARAMS[:-1]],
            body=ref(META + "DeleteOptions"),
            responses=_responses(status, "200"),
        )
    if collection:
        paths[scoped] = {**collection, "parameters": path_params}

    name_param = _param("name", "path", "string", f"name of the {info.kind}")
    item: dict[str, Any] = {}
    if "get" in verbs:
        item["get"] = _operation(
            info,
            "get",
            f"read{prefix}{scope}{info.kind}",
            f"read the specified {info.kind}",
            kind,
            responses=_responses(obj, "200"),
        )
    if "update" in verbs:
        item["put"] = _operation(
            info,
            "put",
            f"replace{prefix}{scope}{info.kind}",
            f"replace the specified {info.kind}",
            kind,
            parameters=[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION],
            body=obj,
            responses=_responses(obj, "200", "201"),
        )
    if "patch" in verbs:
        item["patch"] = _patch(info, f"patch{prefix}{scope}{info.kind}", info.kind, kind, obj)
    if "delete" in verbs:
        item["delete"] = _operation(
            info,
            "delete",
            f"delete{prefix}{scope}{info.kind}",
            f"delete a {info.kind}",
            kind,
            parameters=[DRY_RUN, GRACE, ORPHAN, PROPAGATION],
            body=ref(META + "DeleteOptions"),
            responses=_responses(status, "200", "202"),
        )
    if item:
        paths[f"{scoped}/{{name}}"] = {**item, "parameters": [name_param, *path_params]}

    if info.namespaced and "list" in verbs:
        paths[f"{base}/{info.resource}"] = {
            "get": _operation(
                info,
                "list",
                f"list{prefix}{info.kind}ForAllNamespaces",
                f"list or watch objects of kind {info.kind}",
                kind,
                parameters=LIST_PARAMS,
                responses=_responses(lst, "200", media=WATCH_RESPONSE_TYPES),
            ),
            "parameters": [PRETTY],
        }

    for sub in info.subresources:
        item = _subresource_operations(info, sub, f"{prefix}{scope}{info.kind}", obj)
        paths[f"{scoped}/{{name}}/{sub}"] = {**item, "parameters": [name_param, *path_params]}
    return paths


def _patch(
    info: ResourceInfo, op_id: str, what: str, kind: dict[str, str], answer: dict[str, Any]
) -> dict[str, Any]:
    return _operation(
        info,
        "patch",
        op_id,
        f"partially update the specified {what}",
        kind,
        parameters=[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE],
        body=ref(META + "Patch"),
        body_media=PATCH_TYPES,
        responses=_responses(answer, "200", "201"),
    )


def subresource_kind(info: ResourceInfo, sub: str) -> tuple[str, str, str]:
    """The ``(group, version, kind)`` a subresource's requests and answers carry."""
    spec = SUBRESOURCES[sub]
    if not spec.kind:
        return info.group, info.version, info.kind
    group = spec.group if spec.version else info.group
    return group, spec.version or info.version, spec.kind


def _subresource_operations(
    info: ResourceInfo, sub: str, name: str, parent: dict[str, Any]
) -> dict[str, Any]:
    spec = SUBRESOURCES[sub]
    group, version, kind_name = subresource_kind(info, sub)
    kind = gvk(group, version, kind_name)
    body = parent if not spec.kind else ref(definition_name(group, version, kind_name))
    title = sub[:1].upper() + sub[1:]
    what = f"{sub} of the specified {info.kind}"
    ops: dict[str, Any] = {}
    if sub == "log":
        text = {"type": "string"}
        ops["get"] = _operation(
            info,
            "connect",
            f"read{name}{title}",
            f"read {what}",
            kind,
            parameters=[
                _query(p, t, f"{p} of the log request")
                for p, t in (
                    ("container", "string"),
                    ("follow", "boolean"),
                    ("limitBytes", "integer"),
                    ("previous", "boolean"),
                    ("sinceSeconds", "integer"),
                    ("tailLines", "integer"),
                    ("timestamps", "boolean"),
                )
            ],
            responses=_responses(text, "200", media=("text/plain",)),
        )
        return ops
    if "get" in spec.verbs:
        ops["get"] = _operation(
            info,
            "get",
            f"read{name}{title}",
            f"read {what}",
            kind,
            responses=_responses(body, "200"),
        )
    if "update" in spec.verbs:
        ops["put"] = _operation(
            info,
            "put",
            f"replace{name}{title}",
            f"replace {what}",
            kind,
            parameters=[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION],
            body=body,
            responses=_responses(body, "200", "201"),
        )
    if "patch" in spec.verbs:
        ops["patch"] = _patch(info, f"patch{name}{title}", what, kind, body)
    if "create" in spec.verbs:
        ops["post"] = _operation(
            info,
            "post",
            f"create{name}{title}",
            f"create {what}",
            kind,
            parameters=[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION],
            body=body,
            responses=_responses(body, "200", "201", "202"),
        )
    return ops
