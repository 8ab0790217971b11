"""Namespaces, Nodes, Secrets, ConfigMaps, Events and Leases."""

from __future__ import annotations

import base64
import copy
from typing import Any

from raftkube.apiserver import kinds, resources
from tests.helpers.kinds import errors_of, resource_info, text

NAMESPACES = resource_info("", "namespaces")
NODES = resource_info("", "nodes")
SECRETS = resource_info("", "secrets")
CONFIGMAPS = resource_info("", "configmaps")
EVENTS = resource_info("", "events")
LEASES = resource_info("coordination.k8s.io", "leases")
NOW = "2026-01-01T00:00:00Z"


def created(resource: resources.ResourceInfo, body: dict[str, Any]) -> dict[str, Any]:
    kinds.strategy_for(resource).default(body)
    kinds.prepare_create(resource, body, NOW, "uid-1")
    return body


def test_namespace_create() -> None:
    ns = created(NAMESPACES, {"metadata": {"name": "team-a"}, "status": {"phase": "Gone"}})
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert text(kinds.strategy_for(NAMESPACES).validate_create(ns)) == []
    assert errors_of(NAMESPACES, {"metadata": {"name": "a.b"}}) == [
        'metadata.name: Invalid value: "a.b": must not contain dots'
    ]


def test_namespace_name_label_follows_a_generated_name() -> None:
    ns: dict[str, Any] = {"metadata": {"generateName": "ns-"}}
    kinds.strategy_for(NAMESPACES).default(ns)
    ns["metadata"]["name"] = "ns-x7k2p"  # the handler generates the name
    kinds.prepare_create(NAMESPACES, ns, NOW, "uid-1")
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "ns-x7k2p"}


def test_namespace_updates_keep_finalizers_except_through_finalize() -> None:
    old = created(NAMESPACES, {"metadata": {"name": "team-a"}})
    new = copy.deepcopy(old)
    new["spec"]["finalizers"] = []
    new["metadata"]["labels"] = {}
    kinds.prepare_update(NAMESPACES, new, old)
    assert new["spec"]["finalizers"] == ["kubernetes"]
    assert new["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    finalize = copy.deepcopy(old)
    finalize["spec"]["finalizers"] = []
    finalize["status"] = {"phase": "Whatever"}
    kinds.prepare_update(NAMESPACES, finalize, old, "finalize")
    assert finalize["spec"]["finalizers"] == []
    assert finalize["status"] == {"phase": "Active"}
    labels = kinds.strategy_for(NAMESPACES).field_labels(old)
    assert labels == {"metadata.name": "team-a", "status.phase": "Active", "name": "team-a"}


def node(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "node-1"},
        "spec": spec,
        "status": {"capacity": {"cpu": "4", "memory": "8388608Ki", "pods": 110}},
    }


def test_node_keeps_its_status_on_create_and_allocatable_defaults_to_capacity() -> None:
    body = node(configSource={"configMap": {"name": "c"}})
    body["status"]["config"] = {"error": "x"}
    body = created(NODES, body)
    assert "configSource" not in body["spec"]
    assert "config" not in body["status"]
    assert body["status"]["capacity"] == {"cpu": "4", "memory": "8Gi", "pods": "110"}
    assert body["status"]["allocatable"] == body["status"]["capacity"]
    assert text(kinds.strategy_for(NODES).validate_create(body)) == []


def test_node_taints_and_cidrs() -> None:
    body = node(
        taints=[
            {"key": "a", "effect": "Sometimes"},
            {"key": "b"},
            {"key": "c", "effect": "NoSchedule"},
            {"key": "c", "effect": "NoSchedule"},
        ],
        podCIDRs=["10.0.0.0/24", "10.0.1.0"],
    )
    assert errors_of(NODES, body) == [
        'spec.taints[0].effect: Unsupported value: "Sometimes": supported values: '
        '"NoSchedule", "PreferNoSchedule", "NoExecute"',
        "spec.taints[1].effect: Required value",
        'spec.taints[3]: Duplicate value: core.Taint{Key:"c", Value:"", Effect:"NoSchedule", '
        "TimeAdded:<nil>}: taints must be unique by key and effect pair",
        'spec.podCIDRs[1]: Invalid value: "10.0.1.0": must be a valid CIDR value, (e.g. '
        "10.9.8.0/24 or 2001:db8::/64)",
    ]
    old = created(NODES, node(podCIDRs=["10.0.0.0/24"]))
    new = copy.deepcopy(old)
    new["spec"]["podCIDRs"] = ["10.0.9.0/24"]
    new["spec"]["unschedulable"] = True
    kinds.prepare_update(NODES, new, old)
    assert text(kinds.strategy_for(NODES).validate_update(new, old)) == [
        'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid'
    ]
    assert kinds.strategy_for(NODES).field_labels(new) == {
        "metadata.name": "node-1",
        "spec.unschedulable": "true",
    }


def secret(**fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": "s", "namespace": "default"}, **fields}


def test_secret_defaults_and_string_data() -> None:
    body = created(SECRETS, secret(stringData={"password": "hunter2"}))
    assert body["type"] == "Opaque"
    assert "stringData" not in body
    assert base64.b64decode(body["data"]["password"]) == b"hunter2"
    assert kinds.strategy_for(SECRETS).field_labels(body)["type"] == "Opaque"


def test_secret_validation() -> None:
    assert errors_of(SECRETS, secret(data={"bad key": "aGk=", "ok": "not base64!"})) == [
        'data[bad key]: Invalid value: "bad key": a valid config key must consist of '
        "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
        "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        'data[ok]: Invalid value: "<secret contents redacted>": must be valid base64',
    ]
    assert errors_of(SECRETS, secret(type="kubernetes.io/tls", data={"tls.crt": "aGk="})) == [
        "data[tls.key]: Required value"
    ]


def test_immutable_secrets_and_config_maps() -> None:
    old = created(SECRETS, secret(data={"a": "aGk="}, immutable=True))
    new = copy.deepcopy(old)
    new["data"] = {"a": "aG8="}
    new["type"] = "example.com/custom"
    assert text(kinds.strategy_for(SECRETS).validate_update(new, old)) == [
        'type: Invalid value: "example.com/custom": field is immutable',
        "data: Forbidden: field is immutable when `immutable` is set",
    ]
    old_cm = created(CONFIGMAPS, secret(data={"a": "1"}, immutable=True))
    new_cm = copy.deepcopy(old_cm)
    new_cm["immutable"] = False
    assert text(kinds.strategy_for(CONFIGMAPS).validate_update(new_cm, old_cm)) == [
        "immutable: Forbidden: field is immutable when `immutable` is set"
    ]
    mutable = created(CONFIGMAPS, secret(data={"a": "1"}))
    changed = copy.deepcopy(mutable)
    changed["data"]["a"] = "2"
    assert kinds.strategy_for(CONFIGMAPS).validate_update(changed, mutable) == []


def test_config_map_keys_and_size() -> None:
    body = secret(data={"a": "1", "..": "x"}, binaryData={"a": "aGk="})
    assert errors_of(CONFIGMAPS, body) == [
        "data[..]: Invalid value: \"..\": must not be '..'",
        'binaryData[a]: Invalid value: "a": duplicate of key present in data',
    ]
    assert errors_of(CONFIGMAPS, secret(data={"big": "x" * (1024 * 1024 + 1)})) == [
        ": Too long: must have at most 1048576 bytes"
    ]


def event(**fields: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u"},
        "reason": "Scheduled",
        "source": {"component": "default-scheduler"},
        "type": "Normal",
        **fields,
    }


def test_events() -> None:
    strategy = kinds.strategy_for(EVENTS)
    assert text(strategy.validate_create(event())) == []
    wrong = event(involvedObject={"kind": "Pod", "namespace": "other", "name": "web"})
    assert text(strategy.validate_create(wrong)) == [
        'involvedObject.namespace: Invalid value: "other": does not match event.namespace'
    ]
    node_event = event(involvedObject={"kind": "Node", "name": "node-1"})
    assert text(strategy.validate_create(node_event)) == []
    labels = strategy.field_labels(event())
    assert labels["involvedObject.name"] == "web"
    assert labels["involvedObject.kind"] == "Pod"
    assert labels["source"] == "default-scheduler"
    assert labels["reason"] == "Scheduled"
    assert labels["type"] == "Normal"
    assert set(labels) == set(strategy.field_label_names())


def test_leases() -> None:
    body = {
        "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 0, "leaseTransitions": -1},
    }
    assert errors_of(LEASES, body) == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
    ]
    body["spec"].update(leaseDurationSeconds=40, leaseTransitions=0)
    assert errors_of(LEASES, body) == []
