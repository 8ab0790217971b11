"""``/openapi/v2`` and ``/openapi/v3``: the schemas kubectl reads for apply, explain and
validation.

What kubectl 1.32 actually fetches (read from its sources, client-go 0.32):

* ``/openapi/v3`` (the index) and then ``/openapi/v3/api/v1`` or
  ``/openapi/v3/apis/{group}/{version}`` with ``Accept: application/json``. ``kubectl
  explain`` renders from these; ``kubectl apply`` computes its strategic merge patch from the
  kind's schema found by ``x-kubernetes-group-version-kind`` (patch-merge keys and
  strategies), and the default ``--validate=strict`` leaves validation to the server once the
  kind's PATCH lists the ``fieldValidation`` parameter (see :mod:`openapi_paths`).
* ``/openapi/v2`` with ``Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf``,
  which client-go decodes as protobuf with no JSON fallback, for client-side validation where
  the server's cannot be used (a ``kind: List`` file, as ``kubectl get -o yaml`` writes; kinds
  without a PATCH) and for apply's older patch path. It is served as protobuf
  (:mod:`openapi_proto`), and as JSON to whoever asks for JSON.

Definitions are named as upstream's (``io.k8s.api.core.v1.Pod``,
``io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta``) and carry
``x-kubernetes-group-version-kind``. The per-kind schemas come from a ``schema_for``
callable (one self-contained JSON schema per kind, with upstream's
``x-kubernetes-patch-merge-key``/``-patch-strategy``); the meta types and the subresource
kinds (``Scale``, ``Eviction``, ``TokenRequest``) are defined here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from raftkube.apiserver import accept, discovery, openapi_proto, resources
from raftkube.apiserver.openapi_meta import (
    API_VERSION,
    KIND,
    meta_definitions,
    obj,
    subresource_definitions,
)
from raftkube.apiserver.openapi_paths import (
    META,
    V3_PREFIX,
    definition_name,
    gvk,
    ref,
    resource_paths,
)
from raftkube.apiserver.request import Request, Response
from raftkube.apiserver.resources import ResourceInfo

SchemaFor = Callable[[ResourceInfo], dict[str, Any]]
V2_PREFIX = "#/definitions/"
PROTOBUF_V2 = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
# what kube-openapi answers either protobuf media type with
PROTOBUF_V2_RESPONSE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_PROTOBUF_V2_TYPES = (PROTOBUF_V2, PROTOBUF_V2_RESPONSE)
TITLE = "Kubernetes"


def kind_definitions(info: ResourceInfo, schema_for: SchemaFor) -> dict[str, dict[str, Any]]:
    """The definition of ``info``'s kind (from ``schema_for``, completed with ``apiVersion``,
    ``kind`` and ``metadata`` where it lacks them) and of its list kind."""
    schema = json.loads(json.dumps(schema_for(info)))  # a private copy to extend
    schema.setdefault("type", "object")
    schema.setdefault("description", f"{info.kind} is a {info.group_version} {info.kind}.")
    props = schema.setdefault("properties", {})
    props.setdefault("apiVersion", API_VERSION)
    props.setdefault("kind", KIND)
    props.setdefault("metadata", ref(META + "ObjectMeta"))
    schema["x-kubernetes-group-version-kind"] = [gvk(info.group, info.version, info.kind)]
    name = definition_name(info.group, info.version, info.kind)
    listing = obj(
        f"{info.list_kind} is a list of {info.kind} objects.",
        ("items",),
        apiVersion=API_VERSION,
        items={"type": "array", "items": ref(name)},
        kind=KIND,
        metadata=ref(META + "ListMeta"),
    )
    listing["x-kubernetes-group-version-kind"] = [gvk(info.group, info.version, info.list_kind)]
    return {name: schema, definition_name(info.group, info.version, info.list_kind): listing}


def all_definitions(schema_for: SchemaFor) -> dict[str, dict[str, Any]]:
    """Every definition of every served kind, in OpenAPI v3 ``$ref`` form."""
    defs = meta_definitions()
    defs.update(subresource_definitions())
    for info in resources.RESOURCES:
        defs.update(kind_definitions(info, schema_for))
    return defs


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        target = value.get("$ref")
        if isinstance(target, str) and target.startswith(V3_PREFIX):
            yield target[len(V3_PREFIX) :]
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _closure(roots: Any, defs: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The definitions ``roots`` refers to, directly or through other definitions."""
    out: dict[str, dict[str, Any]] = {}
    todo = list(_refs(roots))
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out[name] = defs[name]
        todo.extend(_refs(defs[name]))
    return dict(sorted(out.items()))


_SECURITY_SCHEME = {
    "type": "apiKey",
    "description": "Bearer Token authentication",
    "name": "authorization",
    "in": "header",
}


def openapi_v3_document(
    group: str,
    version: str,
    schema_for: SchemaFor,
    *,
    definitions: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """The OpenAPI 3.0 document of one group version (None if not served): its paths and
    every schema they refer to. ``definitions`` saves recomputing :func:`all_definitions`
    when writing several documents."""
    infos = resources.in_group(group, version)
    if not infos:
        return None
    paths: dict[str, Any] = {}
    for info in infos:
        paths.update(resource_paths(info))
    defs = all_definitions(schema_for) if definitions is None else definitions
    return {
        "openapi": "3.0.0",
        "info": {"title": TITLE, "version": discovery.GIT_VERSION},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": _closure(paths, defs),
            "securitySchemes": {"BearerToken": _SECURITY_SCHEME},
        },
        "security": [{"BearerToken": []}],
    }


def _v2_schema(value: Any) -> Any:
    """A v3 schema in Swagger 2.0 form: ``$ref`` into ``#/definitions/``."""
    if isinstance(value, dict):
        out = {k: _v2_schema(v) for k, v in value.items()}
        target = out.get("$ref")
        if isinstance(target, str) and target.startswith(V3_PREFIX):
            out["$ref"] = V2_PREFIX + target[len(V3_PREFIX) :]
        return out
    if isinstance(value, list):
        return [_v2_schema(v) for v in value]
    return value


def _v2_parameter(param: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in param.items() if k != "schema"}
    out.update(param.get("schema", {}))
    return out


def _v2_operation(op: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"description": op["description"]}
    body = op.get("requestBody")
    out["consumes"] = list(body["content"]) if body else ["*/*"]
    ok = next(r for code, r in op["responses"].items() if code.startswith("2"))
    out["produces"] = list(ok["content"])
    out["schemes"] = ["https"]
    out["tags"] = op["tags"]
    out["operationId"] = op["operationId"]
    params = [_v2_parameter(p) for p in op.get("parameters", [])]
    if body:
        schema = next(iter(body["content"].values()))["schema"]
        params.insert(0, {"name": "body", "in": "body", "required": True, "schema": schema})
    if params:
        out["parameters"] = params
    responses: dict[str, Any] = {}
    for code, response in op["responses"].items():
        entry: dict[str, Any] = {"description": response["description"]}
        if "content" in response:
            entry["schema"] = next(iter(response["content"].values()))["schema"]
        responses[code] = entry
    out["responses"] = responses
    for key, value in op.items():
        if key.startswith("x-"):
            out[key] = value
    return _v2_schema(out)  # type: ignore[no-any-return]


def openapi_v2_document(
    schema_for: SchemaFor, *, definitions: Mapping[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The Swagger 2.0 document of everything served."""
    defs = all_definitions(schema_for) if definitions is None else definitions
    paths: dict[str, Any] = {}
    for info in resources.RESOURCES:
        for path, item in resource_paths(info).items():
            converted: dict[str, Any] = {}
            for method, op in item.items():
                if method == "parameters":
                    converted[method] = [_v2_parameter(p) for p in op]
                else:
                    converted[method] = _v2_operation(op)
            paths[path] = converted
    return {
        "swagger": "2.0",
        "info": {"title": TITLE, "version": discovery.GIT_VERSION},
        "paths": dict(sorted(paths.items())),
        "definitions": _v2_schema(dict(sorted(defs.items()))),
        "securityDefinitions": {"BearerToken": _SECURITY_SCHEME},
        "security": [{"BearerToken": []}],
    }


def group_version_key(group: str, version: str) -> str:
    """The index key of a group version: ``api/v1``, ``apis/apps/v1``."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _encode(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def _hash(body: bytes) -> str:
    """kube-openapi's ``computeETag``: upper-case hex sha512."""
    return hashlib.sha512(body).hexdigest().upper()


@attrs.frozen
class OpenAPIDocuments:
    """The OpenAPI documents, encoded once (they change only with the code) with their
    hashes, and :meth:`serve` to answer their paths as kube-openapi's handlers do."""

    v2: bytes
    v2_proto: bytes
    v3: Mapping[str, bytes]  # "api/v1" -> the document

    @classmethod
    def build(cls, schema_for: SchemaFor) -> OpenAPIDocuments:
        defs = all_definitions(schema_for)
        v3: dict[str, bytes] = {}
        for group, version in sorted({(r.group, r.version) for r in resources.RESOURCES}):
            doc = openapi_v3_document(group, version, schema_for, definitions=defs)
            assert doc is not None
            v3[group_version_key(group, version)] = _encode(doc)
        v2 = openapi_v2_document(schema_for, definitions=defs)
        return cls(_encode(v2), openapi_proto.document(v2), v3)

    def v3_url(self, key: str) -> str:
        return f"/openapi/v3/{key}?hash={_hash(self.v3[key])}"

    def v3_index(self) -> dict[str, Any]:
        """``GET /openapi/v3``: where each group version's document is, with the hash that
        lets clients cache it for good."""
        return {"paths": {key: {"serverRelativeURL": self.v3_url(key)} for key in self.v3}}

    def serve(self, req: Request) -> Response | None:
        """The answer to ``GET /openapi/v2``, ``/openapi/v3`` or ``/openapi/v3/{gv}``; None
        for any other path (or an unknown group version), for the caller's 404."""
        path = req.path.rstrip("/")
        if path == "/openapi/v2":
            return self._content(req, self.v2, {}, proto=self.v2_proto)
        if path == "/openapi/v3":
            return Response(200, (("content-type", accept.JSON),), _encode(self.v3_index()))
        key = path.removeprefix("/openapi/v3/")
        if key == path or key not in self.v3:
            return None
        body = self.v3[key]
        wanted = req.param("hash")
        if wanted and wanted != _hash(body):
            # an outdated cached URL: send the client to the current one, as kube-openapi does
            return Response(301, (("location", self.v3_url(key)),), b"")
        extra = {"cache-control": "public, immutable"} if wanted else {}
        return self._content(req, body, extra)

    @staticmethod
    def _content(
        req: Request, body: bytes, extra: Mapping[str, str], *, proto: bytes | None = None
    ) -> Response:
        """The first form the ``Accept`` header takes: JSON, or for ``/openapi/v2`` protobuf
        (the response then named with kube-openapi's current media type); a bare 406 when it
        takes neither, as kube-openapi answers. With the ETag of the bytes sent."""
        for clause in accept.parse_accept(req.headers.get("accept", "")):
            if clause.matches(accept.JSON):
                content_type, data = accept.JSON, body
                break
            if proto is not None and any(clause.matches(t) for t in _PROTOBUF_V2_TYPES):
                content_type, data = PROTOBUF_V2_RESPONSE, proto
                break
        else:
            return Response(406, (("vary", "Accept"),), b"")
        tag = '"' + _hash(data) + '"'
        headers = [("content-type", content_type), ("etag", tag), ("vary", "Accept")]
        headers.extend(extra.items())
        if req.headers.get("if-none-match") == tag:
            return Response(304, tuple(headers), b"")
        return Response(200, tuple(headers), data)
