"""OpenAPI documents: what kubectl looks up in them, looked up the way kubectl does.

The unit tests replay kubectl 1.32's own lookups (``queryParamVerifierV3``,
``gvkSupportsPatchOpenAPIV3``, ``PatchMetaFromOpenAPIV3``, the explain template's path
search) on the documents. The last test runs the real kubectl, where installed, against a small
HTTP server that answers discovery, OpenAPI and a pod collection from these modules: ``kubectl
explain``, ``kubectl apply`` (create, then a strategic merge patch computed from our schema)
with default validation, a ``kind: List`` validated on the client from the protobuf
``/openapi/v2`` (accepted, then refused for an unknown field), and ``kubectl get`` (a
server-side Table).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from raftkube.apiserver import accept, discovery, kinds, resources, tables
from raftkube.apiserver.openapi import (
    PROTOBUF_V2,
    PROTOBUF_V2_RESPONSE,
    OpenAPIDocuments,
    group_version_key,
    openapi_v2_document,
    openapi_v3_document,
)
from raftkube.apiserver.openapi_paths import definition_name
from raftkube.apiserver.request import Request
from raftkube.apiserver.resources import ResourceInfo

CONTAINERS = {
    "description": "List of containers belonging to the pod.",
    "type": "array",
    "items": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "description": "Name of the container."},
            "image": {"type": "string", "description": "Container image name."},
        },
    },
    "x-kubernetes-patch-merge-key": "name",
    "x-kubernetes-patch-strategy": "merge",
}


def schema_for(info: ResourceInfo) -> dict[str, Any]:
    """A small stand-in for the per-kind schemas: a real-looking Pod, a free-form spec for
    the others."""
    if info.kind == "Pod":
        return {
            "description": "Pod is a collection of containers that can run on a host.",
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {"containers": CONTAINERS}},
                "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
            },
        }
    return {
        "type": "object",
        "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    }


@pytest.fixture(scope="module")
def docs() -> OpenAPIDocuments:
    return OpenAPIDocuments.build(schema_for)


def v3(group: str, version: str) -> dict[str, Any]:
    doc = openapi_v3_document(group, version, schema_for)
    assert doc is not None
    return doc


def _gv_infos() -> list[tuple[str, str]]:
    return sorted({(r.group, r.version) for r in resources.RESOURCES})


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("$ref"), str):
            yield value["$ref"]
        for v in value.values():
            yield from _refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _refs(v)


def test_definition_names_follow_upstream() -> None:
    assert definition_name("", "v1", "Pod") == "io.k8s.api.core.v1.Pod"
    assert definition_name("apps", "v1", "Deployment") == "io.k8s.api.apps.v1.Deployment"
    assert definition_name("rbac.authorization.k8s.io", "v1", "Role") == "io.k8s.api.rbac.v1.Role"
    assert definition_name("coordination.k8s.io", "v1", "Lease") == (
        "io.k8s.api.coordination.v1.Lease"
    )


@pytest.mark.parametrize(("group", "version"), _gv_infos())
def test_every_reference_resolves_in_each_v3_document(group: str, version: str) -> None:
    doc = v3(group, version)
    assert doc["openapi"] == "3.0.0"
    schemas = doc["components"]["schemas"]
    for target in _refs(doc):
        assert target.startswith("#/components/schemas/")
        assert target.removeprefix("#/components/schemas/") in schemas, target
    for info in resources.in_group(group, version):
        listed = "list" in info.verbs
        assert (definition_name(group, version, info.list_kind) in schemas) is listed
        for kind in (info.kind, info.list_kind) if listed else (info.kind,):
            schema = schemas[definition_name(group, version, kind)]
            assert schema["x-kubernetes-group-version-kind"] == [
                {"group": group, "kind": kind, "version": version}
            ]


def _patch_for(doc: dict[str, Any], group: str, version: str, kind: str) -> dict[str, Any] | None:
    """kubectl's search: the first PATCH whose single GVK extension names the kind."""
    want = {"group": group, "version": version, "kind": kind}
    for item in doc["paths"].values():
        op = item.get("patch")
        if op is not None and op.get("x-kubernetes-group-version-kind") == want:
            return dict(op)
    return None


@pytest.mark.parametrize("info", resources.RESOURCES, ids=lambda r: r.qualified)
def test_kubectl_finds_server_side_field_validation_and_strategic_merge_patch(
    info: ResourceInfo,
) -> None:
    doc = v3(info.group, info.version)
    ops = [
        item["patch"]
        for item in doc["paths"].values()
        if "patch" in item
        and item["patch"]["x-kubernetes-group-version-kind"]
        == {"group": info.group, "version": info.version, "kind": info.kind}
    ]
    if "patch" not in info.verbs:
        assert ops == []
        return
    # every PATCH of the kind (the object's and its status's), since kubectl takes the first
    # one it meets in map order
    assert ops
    for op in ops:
        params = {(p["name"], p["in"]) for p in op["parameters"]}
        assert ("fieldValidation", "query") in params
        assert "application/strategic-merge-patch+json" in op["requestBody"]["content"]


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """``resolve`` of strategicpatch's ``PatchMetaFromOpenAPIV3``: allOf[0], then $ref."""
    if schema.get("allOf"):
        schema = schema["allOf"][0]
    target = schema.get("$ref")
    if target:
        resolved: dict[str, Any] = schemas[target.removeprefix("#/components/schemas/")]
        return resolved
    return schema


def test_strategic_merge_patch_metadata_is_found_as_kubectl_looks_it_up() -> None:
    doc = v3("", "v1")
    schemas = doc["components"]["schemas"]
    pod = next(
        s
        for s in schemas.values()
        if {"group": "", "version": "v1", "kind": "Pod"}
        in s.get("x-kubernetes-group-version-kind", [])
    )
    containers = _resolve(pod, schemas)["properties"]["spec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    meta = _resolve(pod["properties"]["metadata"], schemas)
    owners = meta["properties"]["ownerReferences"]
    assert (owners["x-kubernetes-patch-merge-key"], owners["x-kubernetes-patch-strategy"]) == (
        "uid",
        "merge",
    )
    assert meta["properties"]["finalizers"]["x-kubernetes-patch-strategy"] == "merge"
    assert meta["properties"]["labels"]["additionalProperties"]["type"] == "string"


def test_schema_for_fields_are_kept_and_completed() -> None:
    schemas = v3("", "v1")["components"]["schemas"]
    pod = schemas["io.k8s.api.core.v1.Pod"]
    assert pod["description"].startswith("Pod is a collection")
    assert pod["properties"]["spec"]["properties"]["containers"] == CONTAINERS
    assert set(pod["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    own_meta = {"type": "object", "properties": {"name": {"type": "string"}}}
    doc = openapi_v3_document(
        "", "v1", lambda info: {"type": "object", "properties": {"metadata": own_meta}}
    )
    assert doc is not None
    assert doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"]["properties"]["metadata"] == (
        own_meta
    )
    pod_list = schemas["io.k8s.api.core.v1.PodList"]
    assert pod_list["required"] == ["items"]
    assert pod_list["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/io.k8s.api.core.v1.Pod"
    }


def test_explain_finds_each_resource_by_its_paths() -> None:
    """The plaintext explain template looks for the list or item path of the resource, with
    or without the namespace, and reads the GVK of its first operation."""
    for info in resources.RESOURCES:
        doc = v3(info.group, info.version)
        prefix = f"/apis/{info.group}" if info.group else "/api"
        base = f"{prefix}/{info.version}"
        candidates = [
            f"{base}/{info.resource}",
            f"{base}/{info.resource}/{{name}}",
            f"{base}/namespaces/{{namespace}}/{info.resource}",
            f"{base}/namespaces/{{namespace}}/{info.resource}/{{name}}",
        ]
        found = [doc["paths"][p] for p in candidates if p in doc["paths"]]
        assert found, info.qualified
        op = next(found[0][m] for m in ("get", "post", "put", "patch", "delete") if m in found[0])
        assert op["x-kubernetes-group-version-kind"]["kind"] == info.kind


def test_operations_are_named_as_upstream() -> None:
    ids = {
        op["operationId"]: (path, method, op)
        for group, version in _gv_infos()
        for path, item in v3(group, version)["paths"].items()
        for method, op in item.items()
        if method != "parameters"
    }
    expect = {
        "listCoreV1NamespacedPod": ("/api/v1/namespaces/{namespace}/pods", "get", "list"),
        "listCoreV1PodForAllNamespaces": ("/api/v1/pods", "get", "list"),
        "patchCoreV1NamespacedPodStatus": (
            "/api/v1/namespaces/{namespace}/pods/{name}/status",
            "patch",
            "patch",
        ),
        "createCoreV1NamespacedPodEviction": (
            "/api/v1/namespaces/{namespace}/pods/{name}/eviction",
            "post",
            "post",
        ),
        "readCoreV1NamespacedPodLog": (
            "/api/v1/namespaces/{namespace}/pods/{name}/log",
            "get",
            "connect",
        ),
        "replaceCoreV1NamespaceFinalize": ("/api/v1/namespaces/{name}/finalize", "put", "put"),
        "deleteCoreV1CollectionNode": ("/api/v1/nodes", "delete", "deletecollection"),
        "readAppsV1NamespacedDeploymentScale": (
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale",
            "get",
            "get",
        ),
        "createCoreV1NamespacedServiceAccountToken": (
            "/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            "post",
            "post",
        ),
        "createAuthorizationV1SelfSubjectAccessReview": (
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            "post",
            "post",
        ),
        "patchRbacAuthorizationV1ClusterRole": (
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}",
            "patch",
            "patch",
        ),
    }
    for op_id, (path, method, action) in expect.items():
        got_path, got_method, op = ids[op_id]
        assert (got_path, got_method, op["x-kubernetes-action"]) == (path, method, action)
    scale = ids["readAppsV1NamespacedDeploymentScale"][2]
    assert scale["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling",
        "version": "v1",
        "kind": "Scale",
    }
    assert ids["patchRbacAuthorizationV1ClusterRole"][2]["tags"] == ["rbacAuthorization_v1"]
    assert "/api/v1/namespaces/{namespace}/bindings/{name}" not in v3("", "v1")["paths"]


def test_swagger_v2_document() -> None:
    doc = openapi_v2_document(schema_for)
    assert doc["swagger"] == "2.0"
    defs = doc["definitions"]
    for target in _refs(doc):
        assert target.startswith("#/definitions/")
        assert target.removeprefix("#/definitions/") in defs, target
    patch = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in patch["consumes"]
    assert patch["parameters"][0] == {
        "name": "body",
        "in": "body",
        "required": True,
        "schema": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"},
    }
    field_validation = next(p for p in patch["parameters"] if p["name"] == "fieldValidation")
    assert field_validation["type"] == "string" and field_validation["in"] == "query"
    assert patch["responses"]["200"]["schema"] == {"$ref": "#/definitions/io.k8s.api.core.v1.Pod"}
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "Pod"}


def _get(path: str, **headers: str) -> Request:
    split = urlsplit(path)
    query = {k: tuple(v) for k, v in parse_qs(split.query).items()}
    return Request("GET", split.path, query, {k.replace("_", "-"): v for k, v in headers.items()})


def test_v3_index_and_documents_are_served_with_their_hashes(docs: OpenAPIDocuments) -> None:
    index = docs.serve(_get("/openapi/v3", accept="application/json, */*"))
    assert index is not None and index.status == 200
    paths = json.loads(index.body)["paths"]
    assert set(paths) == {group_version_key(g, v) for g, v in _gv_infos()}
    url = paths["api/v1"]["serverRelativeURL"]
    got = docs.serve(_get(url, accept="application/json"))
    assert got is not None and got.status == 200
    assert json.loads(got.body) == v3("", "v1")
    headers = dict(got.headers)
    assert headers["cache-control"] == "public, immutable"
    assert url.endswith("hash=" + headers["etag"].strip('"'))
    stale = docs.serve(_get("/openapi/v3/api/v1?hash=0123", accept="application/json"))
    assert stale is not None and stale.status == 301
    assert dict(stale.headers)["location"] == url
    again = docs.serve(_get(url, accept="application/json", if_none_match=headers["etag"]))
    assert again is not None and again.status == 304
    plain = docs.serve(_get("/openapi/v3/apis/apps/v1"))
    assert plain is not None and plain.status == 200 and "cache-control" not in dict(plain.headers)
    proto = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"
    refused = docs.serve(_get("/openapi/v3/apis/apps/v1", accept=proto))
    assert refused is not None and refused.status == 406
    assert docs.serve(_get("/openapi/v3/apis/batch/v1")) is None
    assert docs.serve(_get("/openapi/v4")) is None


def test_v2_is_protobuf_or_json_as_asked(docs: OpenAPIDocuments) -> None:
    proto = docs.serve(_get("/openapi/v2", accept=PROTOBUF_V2))
    assert proto is not None and proto.status == 200
    assert dict(proto.headers)["content-type"] == PROTOBUF_V2_RESPONSE
    assert proto.body == docs.v2_proto
    served = docs.serve(_get("/openapi/v2", accept="application/json"))
    assert served is not None and served.status == 200
    assert json.loads(served.body)["swagger"] == "2.0"
    assert dict(served.headers)["content-type"] == "application/json"
    either = docs.serve(_get("/openapi/v2", accept=f"application/json;q=0.5, {PROTOBUF_V2}"))
    assert either is not None and either.body == docs.v2_proto
    refused = docs.serve(_get("/openapi/v2", accept="text/html"))
    assert refused is not None and (refused.status, refused.body) == (406, b"")


def _fields(data: bytes) -> list[tuple[int, Any]]:
    """A protobuf message's fields in order: varints as ints, length-delimited as bytes."""
    out: list[tuple[int, Any]] = []
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out.append((number, varint()))
        elif wire == 2:
            size = varint()
            out.append((number, data[i : i + size]))
            i += size
        elif wire == 1:
            out.append((number, data[i : i + 8]))
            i += 8
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def _named(data: bytes, number: int) -> dict[str, bytes]:
    """The ``Named*`` entries (name = 1, value = 2) of repeated field ``number``."""
    out = {}
    for n, entry in _fields(data):
        if n == number:
            parts = dict(_fields(entry))
            out[parts[1].decode()] = parts.get(2, b"")
    return out


def test_v2_protobuf_uses_gnostics_field_numbers(docs: OpenAPIDocuments) -> None:
    top = dict(_fields(docs.v2_proto))
    assert top[1] == b"2.0"
    definitions = _named(top[9], 1)
    assert set(definitions) == set(openapi_v2_document(schema_for)["definitions"])
    pod = dict(_fields(definitions["io.k8s.api.core.v1.Pod"]))
    assert dict(_fields(pod[22]))[1] == b"object"  # type
    extensions = _named(definitions["io.k8s.api.core.v1.Pod"], 31)
    gvk_yaml = dict(_fields(extensions["x-kubernetes-group-version-kind"]))[2]
    assert json.loads(gvk_yaml) == [{"group": "", "kind": "Pod", "version": "v1"}]
    props = _named(pod[25], 1)
    spec = _named(dict(_fields(props["spec"]))[25], 1)
    containers = _named(spec["containers"], 31)
    assert json.loads(dict(_fields(containers["x-kubernetes-patch-merge-key"]))[2]) == "name"
    paths = _named(top[8], 2)
    item = dict(_fields(paths["/api/v1/namespaces/{namespace}/pods/{name}"]))
    patch = _fields(item[8])
    consumes = [v.decode() for n, v in patch if n == 7]
    assert "application/strategic-merge-patch+json" in consumes
    # kubectl's v2 check reads parameters[].parameter.non_body_parameter.query...name
    names = []
    for n, value in patch:
        if n == 8:
            parameter = dict(_fields(dict(_fields(value))[1]))
            if 2 in parameter:
                query = dict(_fields(parameter[2])).get(3)
                if query is not None:
                    names.append(dict(_fields(query))[4].decode())
    assert "fieldValidation" in names


def _kube_openapi_parse(schema: dict[str, Any], defs: dict[str, Any], path: str) -> None:
    """The checks of kube-openapi's ``proto.ParseSchema``, which reads kubectl's copy of
    ``/openapi/v2``: a single bad definition makes kubectl's whole client-side validation fail."""
    if "$ref" in schema:
        assert "properties" not in schema and "type" not in schema, path
        assert schema["$ref"].removeprefix("#/definitions/") in defs, path
        return
    kind = schema.get("type")
    types = [] if kind is None else [kind] if isinstance(kind, str) else kind
    assert len(types) <= 1, path
    if types == ["array"]:
        items = schema.get("items")
        assert isinstance(items, dict), f"{path}: an array needs exactly one item schema"
        _kube_openapi_parse(items, defs, path + "[]")
    elif types in ([], ["object"]) and "properties" in schema:
        for name, sub in schema["properties"].items():
            _kube_openapi_parse(sub, defs, f"{path}.{name}")
    elif types == ["object"] and isinstance(schema.get("additionalProperties"), dict):
        _kube_openapi_parse(schema["additionalProperties"], defs, path + "{}")
    elif types and types != ["object"]:
        assert types[0] in ("string", "number", "integer", "boolean"), path


def test_the_served_kinds_schemas_pass_kubectls_v2_reader() -> None:
    for bad in ({"type": "array"}, {"type": "date"}, {"$ref": "#/definitions/x", "type": "object"}):
        with pytest.raises(AssertionError):
            _kube_openapi_parse(bad, {"x": {}}, "bad")
    doc = openapi_v2_document(kinds.schema_for)
    defs = doc["definitions"]
    for name, schema in defs.items():
        _kube_openapi_parse(schema, defs, name)
    for group, version in _gv_infos():
        v3doc = openapi_v3_document(group, version, kinds.schema_for)
        assert v3doc is not None
        for target in _refs(v3doc):
            assert target.removeprefix("#/components/schemas/") in v3doc["components"]["schemas"]


# ---- real kubectl ---------------------------------------------------------------------------


class _FakeAPIServer(BaseHTTPRequestHandler):
    """Discovery, OpenAPI and a pod collection in ``default``, from the modules under test;
    every request line is recorded."""

    docs: OpenAPIDocuments
    pods: dict[str, dict[str, Any]]
    seen: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, body: Any, headers: tuple[tuple[str, str], ...] = ()) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers or (("content-type", "application/json"),):
            self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        split = urlsplit(self.path)
        query = {k: tuple(v) for k, v in parse_qs(split.query).items()}
        length = int(self.headers.get("content-length") or 0)
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(self.command, split.path, query, headers, self.rfile.read(length))
        self.seen.append(f"{req.method} {self.path} {headers.get('content-type', '')}")
        done = discovery.serve_discovery(req, "127.0.0.1") if req.method == "GET" else None
        done = done or self.docs.serve(req)
        if done is None and req.path == "/version":
            done = discovery.serve_version()
        if done is not None:
            return self._answer(done.status, done.body, done.headers)
        pods = "/api/v1/namespaces/default/pods"
        name = req.path.removeprefix(pods + "/")
        if req.path == pods and req.method == "GET":
            info = resources.lookup("", "v1", "pods")
            assert info is not None
            wanted = accept.negotiate_object(headers.get("accept", ""))
            assert wanted.transform is accept.Transform.TABLE
            now = datetime.now(UTC)
            return self._answer(200, tables.to_table(info, self.pods.values(), now=now))
        if req.path == pods and req.method == "POST":
            pod = json.loads(req.body)
            pod["metadata"].update(namespace="default", resourceVersion="1", uid="u-1")
            pod["status"] = {"phase": "Pending"}
            self.pods[pod["metadata"]["name"]] = pod
            return self._answer(201, pod)
        if name in self.pods and req.method in ("GET", "PATCH"):
            if req.method == "PATCH":
                self.seen.append("PATCH-BODY " + req.body.decode())
            return self._answer(200, self.pods[name])
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "not found",
            "reason": "NotFound",
            "code": 404,
        }
        return self._answer(404, status)

    do_GET = do_POST = do_PATCH = _handle


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
def test_real_kubectl_explains_applies_and_gets(docs: OpenAPIDocuments, tmp_path: Path) -> None:
    handler = type("Handler", (_FakeAPIServer,), {"docs": docs, "pods": {}, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "t",
                    "clusters": [
                        {
                            "name": "t",
                            "cluster": {"server": f"http://127.0.0.1:{server.server_port}"},
                        }
                    ],
                    "contexts": [
                        {
                            "name": "t",
                            "context": {"cluster": "t", "user": "u", "namespace": "default"},
                        }
                    ],
                    "users": [{"name": "u", "user": {"token": "t"}}],
                }
            )
        )
        pod_file = tmp_path / "pod.yaml"

        def kubectl(*args: str) -> str:
            cmd = [str(KUBECTL), "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path)]
            done = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            return done.stdout

        explained = kubectl("explain", "pods.spec.containers")
        assert "KIND:       Pod" in explained and "Container image name." in explained
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "app", "image": "nginx:1"}]},
        }
        pod_file.write_text(json.dumps(pod))
        assert kubectl("apply", "-f", str(pod_file)).strip() == "pod/web created"
        pod["spec"]["containers"][0]["image"] = "nginx:2"  # type: ignore[index]
        pod_file.write_text(json.dumps(pod))
        assert kubectl("apply", "-f", str(pod_file)).strip() == "pod/web configured"
        # a List is validated on the client, from the protobuf /openapi/v2
        as_list = {"apiVersion": "v1", "kind": "List", "items": [pod]}
        pod["metadata"] = {"name": "web-2"}
        pod_file.write_text(json.dumps(as_list))
        assert kubectl("apply", "-f", str(pod_file)).strip() == "pod/web-2 created"
        pod["spec"]["containers"][0]["bogus"] = 1  # type: ignore[index]
        pod["metadata"] = {"name": "web-3"}
        pod_file.write_text(json.dumps(as_list))
        cmd = [str(KUBECTL), "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path)]
        refused = subprocess.run(
            [*cmd, "apply", "-f", str(pod_file)], capture_output=True, text=True, timeout=60
        )
        assert refused.returncode == 1
        assert 'unknown field "bogus"' in refused.stderr
        listing = kubectl("get", "pods").splitlines()
        assert listing[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        assert listing[1].split()[:4] == ["web", "0/1", "Pending", "0"]
        assert [line.split()[0] for line in listing[1:]] == ["web", "web-2"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    seen = handler.seen
    # for single objects, validation is left to the server, judged from OpenAPI v3 alone
    assert any(
        s.startswith("POST /api/v1/namespaces/default/pods?") and "fieldValidation=Strict" in s
        for s in seen
    )
    patch = next(s for s in seen if s.startswith("PATCH /api/v1/namespaces/default/pods/web"))
    first_v2 = next(i for i, s in enumerate(seen) if s.startswith("GET /openapi/v2"))
    assert first_v2 > seen.index(patch)  # only once the List needed it
    assert "application/strategic-merge-patch+json" in patch
    read_schema = next(
        i for i, s in enumerate(seen) if s.startswith("GET /openapi/v3/api/v1?hash=")
    )
    assert read_schema < seen.index(patch)
    body = json.loads(
        next(s for s in seen if s.startswith("PATCH-BODY ")).removeprefix("PATCH-BODY ")
    )
    # containers merged by their key, as the schema says
    assert body["spec"]["$setElementOrder/containers"] == [{"name": "app"}]
    assert body["spec"]["containers"] == [{"name": "app", "image": "nginx:2"}]
