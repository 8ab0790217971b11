"""RBAC kinds and the review kinds."""

from __future__ import annotations

import copy
from typing import Any

from raftkube.apiserver import kinds
from tests.helpers.kinds import errors_of, resource_info, text

GROUP = "rbac.authorization.k8s.io"


ROLES = resource_info(GROUP, "roles")
CLUSTER_ROLES = resource_info(GROUP, "clusterroles")
BINDINGS = resource_info(GROUP, "rolebindings")
CLUSTER_BINDINGS = resource_info(GROUP, "clusterrolebindings")


def test_role_names_are_path_segments() -> None:
    role = {"metadata": {"name": "system:kube-scheduler"}, "rules": []}
    assert errors_of(CLUSTER_ROLES, role) == []
    role = {"metadata": {"name": "a/b", "namespace": "default"}}
    assert errors_of(ROLES, role) == ["metadata.name: Invalid value: \"a/b\": may not contain '/'"]


def test_policy_rules() -> None:
    role = {
        "metadata": {"name": "r", "namespace": "default"},
        "rules": [
            {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
            {"verbs": []},
            {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
        ],
    }
    assert errors_of(ROLES, role) == [
        "rules[1].verbs: Required value: verbs must contain at least one value",
        "rules[1].apiGroups: Required value: resource rules must supply at least one api group",
        "rules[1].resources: Required value: resource rules must supply at least one resource",
        'rules[2].nonResourceURLs: Invalid value: []string{"/healthz"}: namespaced rules cannot '
        "apply to non-resource URLs",
    ]
    cluster_role = {"metadata": {"name": "r"}, "rules": role["rules"][2:]}
    assert errors_of(CLUSTER_ROLES, cluster_role) == []


def binding(**fields: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "b", "namespace": "default"},
        "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [
            {"kind": "User", "name": "alice"},
            {"kind": "ServiceAccount", "name": "default", "namespace": "default"},
        ],
        **fields,
    }


def test_binding_defaults_and_validation() -> None:
    body = binding()
    kinds.strategy_for(BINDINGS).default(body)
    assert body["roleRef"]["apiGroup"] == GROUP
    assert body["subjects"][0]["apiGroup"] == GROUP
    assert body["subjects"][1]["apiGroup"] == ""
    assert errors_of(BINDINGS, body) == []
    bad = binding(
        roleRef={"kind": "Thing", "name": ""},
        subjects=[{"kind": "Robot", "name": "r"}, {"kind": "ServiceAccount", "name": "x"}],
    )
    assert errors_of(BINDINGS, bad) == [
        'roleRef.kind: Unsupported value: "Thing": supported values: "Role", "ClusterRole"',
        "roleRef.name: Required value",
        'subjects[0].kind: Unsupported value: "Robot": supported values: "ServiceAccount", '
        '"User", "Group"',
    ]
    cluster = binding(roleRef={"kind": "Role", "name": "x"})
    del cluster["metadata"]["namespace"]
    assert errors_of(CLUSTER_BINDINGS, cluster) == [
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"'
    ]
    unnamespaced = binding(subjects=[{"kind": "ServiceAccount", "name": "x"}])
    del unnamespaced["metadata"]["namespace"]
    assert errors_of(CLUSTER_BINDINGS, unnamespaced) == ["subjects[0].namespace: Required value"]


def test_role_ref_never_changes() -> None:
    old = binding()
    kinds.strategy_for(BINDINGS).default(old)
    new = copy.deepcopy(old)
    new["roleRef"]["name"] = "edit"
    new["subjects"] = []
    assert text(kinds.strategy_for(BINDINGS).validate_update(new, old)) == [
        'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", '
        'Kind:"ClusterRole", Name:"edit"}: cannot change roleRef'
    ]


def test_reviews_need_no_name_and_check_their_request() -> None:
    ssar = resource_info("authorization.k8s.io", "selfsubjectaccessreviews")
    strategy = kinds.strategy_for(ssar)
    body: dict[str, Any] = {"spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}}
    assert strategy.validate_create(body) == []
    assert text(strategy.validate_create({"spec": {}})) == [
        "spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes or "
        "resourceAttributes must be specified"
    ]
    ssr = kinds.strategy_for(resource_info("authentication.k8s.io", "selfsubjectreviews"))
    assert ssr.validate_create({"apiVersion": "authentication.k8s.io/v1"}) == []
    token = kinds.strategy_for(resource_info("authentication.k8s.io", "tokenreviews"))
    assert text(token.validate_create({"spec": {}})) == ["spec.token: Required value"]
