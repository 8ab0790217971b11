"""No body, however malformed, makes a strategy raise: the server must answer 422 or accept,
never fail with a 500. Hypothesis replaces one value anywhere in a valid object of each kind
with arbitrary JSON and runs every strategy step on it."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from raftkube.apiserver import kinds, resources

_CONTAINER = {
    "name": "a",
    "image": "nginx",
    "ports": [{"containerPort": 80, "name": "http"}],
    "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
    "resources": {"limits": {"cpu": "1"}, "requests": {"memory": "1Gi"}},
    "livenessProbe": {"httpGet": {"port": 80}},
    "volumeMounts": [{"name": "v", "mountPath": "/v"}],
}
_POD_SPEC = {
    "containers": [_CONTAINER],
    "volumes": [{"name": "v", "configMap": {"name": "c"}}],
    "tolerations": [{"key": "k", "operator": "Exists"}],
    "nodeSelector": {"a": "b"},
}
_TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": _POD_SPEC}
_META = {
    "name": "x",
    "namespace": "default",
    "labels": {"a": "b"},
    "annotations": {"c": "d"},
    "finalizers": ["a.io/b"],
    "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "y", "uid": "u"}],
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "pods": {"spec": _POD_SPEC, "status": {"podIPs": [{"ip": "10.0.0.1"}]}},
    "services": {"spec": {"ports": [{"port": 80, "targetPort": "http"}], "selector": {"a": "b"},
                          "clusterIP": "10.0.0.1"}},
    "endpoints": {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]},
    "deployments": {"spec": {"selector": {"matchLabels": {"app": "web"},
                                          "matchExpressions": [{"key": "a", "operator": "In",
                                                                "values": ["b"]}]},
                             "template": _TEMPLATE,
                             "strategy": {"rollingUpdate": {"maxSurge": "10%"}}},
                    "status": {"replicas": 1, "collisionCount": 1}},
    "replicasets": {"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": _TEMPLATE},
                    "status": {"replicas": 1}},
    "replicationcontrollers": {"spec": {"selector": {"app": "web"}, "template": _TEMPLATE}},
    "namespaces": {"spec": {"finalizers": ["kubernetes"]}},
    "nodes": {"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}],
                       "podCIDRs": ["10.0.0.0/24"]},
              "status": {"capacity": {"cpu": "1"}}},
    "secrets": {"data": {"a": "aGk="}, "stringData": {"b": "c"}, "type": "Opaque"},
    "configmaps": {"data": {"a": "b"}, "binaryData": {"c": "aGk="}, "immutable": True},
    "events": {"involvedObject": {"kind": "Pod", "namespace": "default"}, "source": {}},
    "leases": {"spec": {"leaseDurationSeconds": 10, "leaseTransitions": 0}},
    "roles": {"rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]},
    "rolebindings": {"roleRef": {"kind": "Role", "name": "r"},
                     "subjects": [{"kind": "User", "name": "u"}]},
    "selfsubjectaccessreviews": {"spec": {"resourceAttributes": {"verb": "get"}}},
}  # fmt: skip

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                               max_size=3),
    max_leaves=6,
)  # fmt: skip


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*path, i))
    return found


def _info(resource: str) -> resources.ResourceInfo:
    return next(r for r in resources.RESOURCES if r.resource == resource)


@st.composite
def broken_objects(draw: st.DrawFn) -> tuple[resources.ResourceInfo, dict[str, Any]]:
    resource = draw(st.sampled_from(sorted(EXAMPLES)))
    info = _info(resource)
    body = copy.deepcopy({"metadata": dict(_META), **EXAMPLES[resource]})
    if not info.namespaced:
        del body["metadata"]["namespace"]
    path = draw(st.sampled_from(_paths(body)[1:]))
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = draw(_JSON)
    return info, body


@settings(max_examples=300)
@given(broken_objects())
def test_strategies_never_raise(case: tuple[resources.ResourceInfo, dict[str, Any]]) -> None:
    info, body = case
    strategy = kinds.strategy_for(info)
    old = copy.deepcopy({"metadata": dict(_META), **EXAMPLES[info.resource]})
    if not info.namespaced:
        del old["metadata"]["namespace"]
    strategy.default(old)
    kinds.prepare_create(info, old, "2026-01-01T00:00:00Z", "uid")
    strategy.default(body)
    new = copy.deepcopy(body)
    kinds.prepare_create(info, body, "2026-01-01T00:00:00Z", "uid")
    strategy.validate_create(body)
    strategy.field_labels(body)
    strategy.unknown_fields(body)
    for subresource in ("", "status"):
        update = copy.deepcopy(new)
        kinds.prepare_update(info, update, old, subresource)
        strategy.validate_update(update, old)
        strategy.validate_status_update(update, old)
