"""Deployments, ReplicaSets and ReplicationControllers: defaults, selectors, generation."""

from __future__ import annotations

import copy
from typing import Any

from raftkube.apiserver import kinds, resources
from raftkube.apiserver.kinds.workloads import selector_matches
from tests.helpers.kinds import errors_of, text

DEPLOYMENTS = resources.lookup("apps", "v1", "deployments")
REPLICASETS = resources.lookup("apps", "v1", "replicasets")
RCS = resources.lookup("", "v1", "replicationcontrollers")
assert DEPLOYMENTS is not None and REPLICASETS is not None and RCS is not None


def template(labels: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
    }


def deployment(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": template({"app": "web"}),
            **spec,
        },
    }


def test_deployment_defaults() -> None:
    body = deployment()
    kinds.strategy_for(DEPLOYMENTS).default(body)
    spec = body["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert spec["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    # A template is not a pod: no priority, no service links flag.
    assert "priority" not in spec["template"]["spec"]


def test_rc_selector_and_labels_come_from_the_template() -> None:
    body: dict[str, Any] = {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"template": template({"app": "web"})},
    }
    kinds.strategy_for(RCS).default(body)
    assert body["spec"]["selector"] == {"app": "web"}
    assert body["metadata"]["labels"] == {"app": "web"}
    assert body["spec"]["replicas"] == 1
    assert text(kinds.strategy_for(RCS).validate_create(body)) == []


def test_valid_objects_pass() -> None:
    assert errors_of(DEPLOYMENTS, deployment()) == []
    rs = deployment()
    rs["kind"] = "ReplicaSet"
    assert errors_of(REPLICASETS, rs) == []


def test_selector_is_required_and_must_match_the_template() -> None:
    body = deployment()
    del body["spec"]["selector"]
    assert errors_of(DEPLOYMENTS, body) == ["spec.selector: Required value"]
    body = deployment(selector={"matchLabels": {"app": "other"}})
    assert errors_of(DEPLOYMENTS, body) == [
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
        "`selector` does not match template `labels`"
    ]
    body = deployment(selector={})
    assert errors_of(DEPLOYMENTS, body) == [
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for "
        "deployment"
    ]
    body = deployment(selector={"matchExpressions": [{"key": "app", "operator": "In"}]})
    assert errors_of(DEPLOYMENTS, body) == [
        "spec.selector.matchExpressions[0].values: Required value: must be specified when "
        "`operator` is 'In' or 'NotIn'",
        "spec.template.metadata.labels: Invalid value: "
        'map[string]string{"app":"web"}: `selector` does not match template `labels`',
    ]


def test_selector_values_are_label_values() -> None:
    expressions = [{"key": "app", "operator": "In", "values": ["web", "not valid"]}]
    body = deployment(selector={"matchExpressions": expressions})
    [message] = errors_of(DEPLOYMENTS, body)
    assert message.startswith(
        'spec.selector.matchExpressions[0].values[1]: Invalid value: "not valid": a valid label '
        "must be an empty string or consist of"
    )


def test_template_rules() -> None:
    body = deployment()
    body["spec"]["template"]["spec"].update(restartPolicy="Never", activeDeadlineSeconds=5)
    assert errors_of(DEPLOYMENTS, body) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in "
        "ReplicaSet is not Supported",
    ]
    body = deployment()
    body["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    assert errors_of(DEPLOYMENTS, body) == [
        "spec.template.spec.containers[0].image: Required value"
    ]


def test_rolling_update_parameters() -> None:
    body = deployment(
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}
    )
    assert errors_of(DEPLOYMENTS, body) == [
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when "
        "`maxSurge` is 0"
    ]
    body = deployment(strategy={"rollingUpdate": {"maxUnavailable": "110%", "maxSurge": "x"}})
    assert errors_of(DEPLOYMENTS, body) == [
        "spec.strategy.rollingUpdate.maxSurge: Invalid value: x: a valid percent string must "
        "be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for "
        "validation is '[0-9]+%')",
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 110%: must not be greater "
        "than 100%",
    ]
    body = deployment(strategy={"type": "Recreate", "rollingUpdate": {}})
    assert errors_of(DEPLOYMENTS, body) == [
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is "
        "'Recreate'"
    ]
    body = deployment(progressDeadlineSeconds=10, minReadySeconds=10)
    assert errors_of(DEPLOYMENTS, body) == [
        "spec.progressDeadlineSeconds: Invalid value: 10: must be greater than minReadySeconds"
    ]


def stored(info: resources.ResourceInfo, body: dict[str, Any]) -> dict[str, Any]:
    kinds.strategy_for(info).default(body)
    kinds.prepare_create(info, body, "2026-01-01T00:00:00Z", "uid-1")
    return body


def test_generation_counts_spec_and_annotation_changes() -> None:
    old = stored(DEPLOYMENTS, deployment())
    assert old["metadata"]["generation"] == 1
    assert old["status"] == {}

    def updated(change: Any, subresource: str = "") -> dict[str, Any]:
        new = copy.deepcopy(old)
        change(new)
        kinds.prepare_update(DEPLOYMENTS, new, old, subresource)
        return new

    assert updated(lambda d: d["spec"].update(replicas=3))["metadata"]["generation"] == 2
    assert (
        updated(lambda d: d["metadata"].update(annotations={"a": "b"}))["metadata"]["generation"]
        == 2
    )
    assert updated(lambda d: d["metadata"].update(labels={"a": "b"}))["metadata"]["generation"] == 1
    # The main resource ignores status; /status ignores the spec and the labels.
    new = updated(lambda d: d.update(status={"replicas": 3}))
    assert new["status"] == {} and new["metadata"]["generation"] == 1

    def status_write(d: dict[str, Any]) -> None:
        d["status"] = {"replicas": 3}
        d["spec"]["replicas"] = 7
        d["metadata"]["labels"] = {"x": "y"}

    new = updated(status_write, "status")
    assert new["status"] == {"replicas": 3}
    assert new["spec"]["replicas"] == 1
    assert "labels" not in new["metadata"]
    assert new["metadata"]["generation"] == 1


def test_apps_selectors_are_immutable_but_rc_selectors_are_not() -> None:
    old = stored(DEPLOYMENTS, deployment())
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "x"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    kinds.prepare_update(DEPLOYMENTS, new, old)
    assert text(kinds.strategy_for(DEPLOYMENTS).validate_update(new, old)) == [
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string"
        '{"app":"web", "tier":"x"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: '
        "field is immutable"
    ]
    rc_body: dict[str, Any] = {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"template": template({"app": "web"})},
    }
    old_rc = stored(RCS, rc_body)
    assert old_rc["status"] == {"replicas": 0}
    new_rc = copy.deepcopy(old_rc)
    new_rc["spec"]["selector"] = {"app": "web", "tier": "x"}
    new_rc["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    assert text(kinds.strategy_for(RCS).validate_update(new_rc, old_rc)) == []


def test_field_labels_and_selector_matching() -> None:
    rs = stored(REPLICASETS, deployment())
    assert kinds.strategy_for(REPLICASETS).field_labels(rs)["status.replicas"] == "0"
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "NotIn", "values": ["db"]},
            {"key": "env", "operator": "Exists"},
        ],
    }
    assert selector_matches(selector, {"app": "web", "env": "prod"})
    assert not selector_matches(selector, {"app": "web", "env": "prod", "tier": "db"})
    assert not selector_matches(selector, {"app": "web"})


def test_status_counts_must_be_consistent() -> None:
    old = stored(DEPLOYMENTS, deployment())
    new = copy.deepcopy(old)
    new["status"] = {
        "replicas": 2,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "updatedReplicas": -1,
    }
    assert text(kinds.strategy_for(DEPLOYMENTS).validate_status_update(new, old)) == [
        "status.updatedReplicas: Invalid value: -1: must be greater than or equal to 0",
        "status.readyReplicas: Invalid value: 3: cannot be greater than status.replicas",
        "status.availableReplicas: Invalid value: 3: cannot be greater than status.replicas",
    ]
    rs_old = stored(REPLICASETS, deployment())
    rs_new = copy.deepcopy(rs_old)
    rs_new["status"] = {"replicas": 3, "readyReplicas": 1, "availableReplicas": 2}
    assert text(kinds.strategy_for(REPLICASETS).validate_status_update(rs_new, rs_old)) == [
        "status.availableReplicas: Invalid value: 2: cannot be greater than readyReplicas"
    ]
