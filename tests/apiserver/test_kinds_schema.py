"""The kinds' schemas: upstream's field names (checked against the official client's models),
patch merge keys, and the unknown-field report for fieldValidation=Strict."""

from __future__ import annotations

import copy
import re
from typing import Any

import kubernetes.client as kc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftkube.apiserver import kinds, resources
from raftkube.apiserver.kinds.schema import Schema, unknown_fields

# Fields the client (generated from a newer Kubernetes than the 1.32 this server follows) has
# and these schemas do not define yet: all are alpha fields added after 1.32.
NEWER_THAN_132 = (
    "restartPolicyRules",
    "fileKeyRef",
    "bindMountOptions",
    "httpGet.protocol",
    "grpc.mode",
    "evictionResponders",
    "hostnameOverride",
    "schedulingGroup",
    "emptyDir.mode",
    "defaultUser",
    ".user",
    "podCertificate",
    "podPreemptionPolicy",
    "declaredFeatures",
    "runningInUserNamespace",
    "status.allocatedResources",
    "status.resources",
    "extendedResourceClaimStatus",
    "nodeAllocatableResourceClaimStatuses",
    "volumeHealth",
)


def _compare(model: str, schema: Schema, path: str, out: list[tuple[str, str]]) -> None:
    cls = getattr(kc, model, None)
    properties = schema.get("properties")
    if cls is None or properties is None:
        return
    client = {cls.attribute_map[a]: t for a, t in cls.openapi_types.items()}
    out += [("missing", f"{path}.{n}") for n in client if n not in properties]
    for name, sub in properties.items():
        if name not in client:
            out.append(("extra", f"{path}.{name}"))
            continue
        listed = re.fullmatch(r"List\[(\w+)\]", client[name])
        if listed and sub.get("type") == "array":
            _compare(listed.group(1), sub.get("items", {}), f"{path}.{name}[]", out)
        elif re.fullmatch(r"V\w+", client[name]):
            _compare(client[name], sub, f"{path}.{name}", out)


@pytest.mark.parametrize("info", resources.RESOURCES, ids=lambda r: r.resource)
def test_field_names_are_upstreams(info: resources.ResourceInfo) -> None:
    found: list[tuple[str, str]] = []
    _compare("V1" + info.kind, kinds.schema_for(info), info.kind, found)
    assert [p for what, p in found if what == "extra"] == []
    missing = [p for what, p in found if what == "missing"]
    assert [
        p
        for p in missing
        if not any(p.endswith(s) or s + "." in p or s + "[" in p for s in NEWER_THAN_132)
    ] == []


def _at(schema: Schema, *path: str) -> Any:
    for name in path:
        schema = schema["items"] if name == "[]" else schema["properties"][name]
    return schema


def test_patch_merge_keys_are_upstreams() -> None:
    pod = kinds.schema_for(resources.lookup("", "v1", "pods"))  # type: ignore[arg-type]
    expected = {
        ("spec", "containers"): "name",
        ("spec", "initContainers"): "name",
        ("spec", "volumes"): "name",
        ("spec", "containers", "[]", "env"): "name",
        ("spec", "containers", "[]", "ports"): "containerPort",
        ("spec", "containers", "[]", "volumeMounts"): "mountPath",
        ("spec", "imagePullSecrets"): "name",
        ("status", "conditions"): "type",
        ("metadata", "ownerReferences"): "uid",
    }
    for path, key in expected.items():
        assert _at(pod, *path)["x-kubernetes-patch-merge-key"] == key, path
        assert _at(pod, *path)["x-kubernetes-patch-strategy"].startswith("merge")
    assert "x-kubernetes-patch-merge-key" not in _at(pod, "spec", "tolerations")
    service = kinds.schema_for(resources.lookup("", "v1", "services"))  # type: ignore[arg-type]
    assert _at(service, "spec", "ports")["x-kubernetes-patch-merge-key"] == "port"


def test_unknown_fields_are_reported_with_strict_decodings_paths() -> None:
    info = resources.lookup("apps", "v1", "deployments")
    assert info is not None
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"any": "label"}, "bogus": 1},
        "spec": {
            "foo": True,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "a", "image": "nginx", "resources": {"limits": {"cpu": 1}}},
                        {"name": "b", "image": "nginx", "imagePullPolicyy": "Always"},
                    ]
                },
            },
        },
    }
    assert kinds.strategy_for(info).unknown_fields(deployment) == [
        "metadata.bogus",
        "spec.foo",
        "spec.template.spec.containers[1].imagePullPolicyy",
    ]


def test_free_form_fields_are_not_looked_into() -> None:
    schema: Schema = {
        "type": "object",
        "properties": {
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "map": {
                "type": "object",
                "additionalProperties": {"type": "object", "properties": {"a": {}}},
            },
        },
    }
    value = {"free": {"x": {"y": 1}}, "map": {"k": {"a": 1, "b": 2}}}
    assert unknown_fields(schema, value) == ["map.k.b"]


def test_every_served_resource_has_a_strategy_and_a_schema() -> None:
    for info in resources.RESOURCES:
        strategy = kinds.strategy_for(info)
        assert strategy.info is info
        schema = kinds.schema_for(info)
        assert {"apiVersion", "kind", "metadata"} <= set(schema["properties"])


_PLACES = {
    "metadata": ("metadata",),
    "spec": ("spec",),
    "spec.containers[0]": ("spec", "containers", 0),
    "spec.containers[0].resources": ("spec", "containers", 0, "resources"),
    "spec.containers[0].ports[0]": ("spec", "containers", 0, "ports", 0),
    "spec.volumes[0].configMap": ("spec", "volumes", 0, "configMap"),
    "status": ("status",),
}


@given(st.lists(st.sampled_from(sorted(_PLACES)), unique=True), st.sampled_from(["x", "Foo"]))
def test_exactly_the_planted_unknown_fields_are_reported(places: list[str], name: str) -> None:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"x": "y"}},
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "image": "x",
                    "resources": {"limits": {"x": "1"}},
                    "ports": [{"containerPort": 80}],
                }
            ],
            "volumes": [{"name": "v", "configMap": {"name": "c"}}],
        },
        "status": {"phase": "Pending"},
    }
    for place in places:
        target: Any = body
        for step in _PLACES[place]:
            target = target[step]
        target[name] = 1
    pods = resources.lookup("", "v1", "pods")
    assert pods is not None
    reported = kinds.strategy_for(pods).unknown_fields(body)
    assert sorted(reported) == sorted(f"{p}.{name}" for p in places)


def test_wrong_json_types_are_decode_errors() -> None:
    info = resources.lookup("apps", "v1", "deployments")
    assert info is not None
    strategy = kinds.strategy_for(info)
    body: dict[str, Any] = {
        "metadata": {"name": "web", "namespace": "default", "labels": {"a": 1}},
        "spec": {
            "replicas": "3",
            "paused": None,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": True}},
            "template": {"spec": {"containers": {"name": "a"}}},
        },
    }
    assert strategy.decode_errors(body) == [
        "json: cannot unmarshal number into Go struct field metadata.labels.a of type string",
        "json: cannot unmarshal string into Go struct field spec.replicas of type int32",
        "json: cannot unmarshal bool into Go struct field spec.strategy.rollingUpdate."
        "maxUnavailable of type IntOrString",
        "json: cannot unmarshal object into Go struct field spec.template.spec.containers of "
        "type []struct",
    ]
    # Defaulting leaves such an object alone and validation reports the types, not a crash.
    before = copy.deepcopy(body)
    strategy.default(body)
    assert body == before
    causes = strategy.validate_create(body)
    assert [(c.field, c.reason) for c in causes][1] == ("spec.replicas", "FieldValueTypeInvalid")
    assert causes[1].message == 'Invalid value: "string": must be of type int32'


def test_quantities_accept_json_numbers() -> None:
    pods = resources.lookup("", "v1", "pods")
    assert pods is not None
    body = {"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": 0.5}}}]}}
    assert kinds.strategy_for(pods).decode_errors(body) == []
