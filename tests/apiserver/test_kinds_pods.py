"""Pods: upstream's defaults, validation messages, update rules and field labels."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from raftkube.apiserver import kinds, resources
from raftkube.apiserver.kinds.pods import POD_UPDATE_FORBIDDEN, pod_requests, qos_class
from raftkube.apiserver.quantity import parse_quantity
from tests.helpers.kinds import text

PODS = resources.lookup("", "v1", "pods")
BINDINGS = resources.lookup("", "v1", "bindings")
assert PODS is not None and BINDINGS is not None
STRATEGY = kinds.strategy_for(PODS)


def pod(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}], **spec},
    }
    return body


def defaulted(body: dict[str, Any]) -> dict[str, Any]:
    STRATEGY.default(body)
    return body


def errors_of(body: dict[str, Any]) -> list[str]:
    return text(STRATEGY.validate_create(defaulted(body)))


def test_defaults_are_upstreams() -> None:
    body = pod()
    body["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    body["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"port": 80}}
    spec = defaulted(body)["spec"]
    assert {k: v for k, v in spec.items() if k != "containers"} == {
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
        "terminationGracePeriodSeconds": 30,
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "enableServiceLinks": True,
        "priority": 0,
        "preemptionPolicy": "PreemptLowerPriority",
    }
    assert spec["containers"][0] == {
        "name": "app",
        "image": "nginx:1.27",
        "imagePullPolicy": "IfNotPresent",
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "resources": {},
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
            "timeoutSeconds": 1,
            "periodSeconds": 10,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
    }


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("localhost:5000/nginx", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("localhost:5000/nginx:1", "IfNotPresent"),
        ("nginx@sha256:0123", "IfNotPresent"),
    ],
)
def test_image_pull_policy_follows_the_tag(image: str, policy: str) -> None:
    body = pod()
    body["spec"]["containers"][0]["image"] = image
    assert defaulted(body)["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_requests_default_to_limits_and_quantities_are_canonical() -> None:
    body = pod()
    body["spec"]["containers"][0]["resources"] = {"limits": {"cpu": 0.5, "memory": "1.5Gi"}}
    resources_ = defaulted(body)["spec"]["containers"][0]["resources"]
    assert resources_ == {
        "limits": {"cpu": "500m", "memory": "1536Mi"},
        "requests": {"cpu": "500m", "memory": "1536Mi"},
    }


def test_volumes_get_default_modes_and_a_sourceless_one_is_an_empty_dir() -> None:
    body = pod(volumes=[{"name": "a"}, {"name": "b", "secret": {"secretName": "s"}}])
    volumes = defaulted(body)["spec"]["volumes"]
    assert volumes == [
        {"name": "a", "emptyDir": {}},
        {"name": "b", "secret": {"secretName": "s", "defaultMode": 420}},
    ]


def test_a_valid_pod_passes() -> None:
    body = pod(
        volumes=[{"name": "data", "emptyDir": {}}],
        tolerations=[
            {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}
        ],
        nodeSelector={"kubernetes.io/os": "linux"},
    )
    body["spec"]["containers"][0].update(
        ports=[{"name": "http", "containerPort": 8080}],
        env=[{"name": "MY_VAR", "value": "1"}],
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
        resources={"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "128Mi"}},
        livenessProbe={"tcpSocket": {"port": 8080}},
    )
    assert errors_of(body) == []


def test_required_fields() -> None:
    body = pod()
    body["spec"]["containers"] = []
    assert errors_of(body) == ["spec.containers: Required value"]
    body = pod()
    body["spec"]["containers"] = [{"name": "a"}]
    assert errors_of(body) == ["spec.containers[0].image: Required value"]
    body = pod()
    del body["spec"]
    assert text(STRATEGY.validate_create(body)) == ["spec: Required value"]


def test_enums_are_refused_with_the_supported_values() -> None:
    assert errors_of(pod(restartPolicy="Sometimes")) == [
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
        '"OnFailure", "Never"'
    ]
    assert errors_of(pod(dnsPolicy="Custom")) == [
        'spec.dnsPolicy: Unsupported value: "Custom": supported values: '
        '"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"'
    ]
    body = pod()
    body["spec"]["containers"][0]["imagePullPolicy"] = "Sometimes"
    assert errors_of(body) == [
        'spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported '
        'values: "Always", "IfNotPresent", "Never"'
    ]
    body = pod()
    body["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "protocol": "HTTP"}]
    assert errors_of(body) == [
        'spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: '
        '"SCTP", "TCP", "UDP"'
    ]


def test_names_ports_and_duplicates() -> None:
    body = pod()
    body["spec"]["containers"].append({"name": "app", "image": "x"})
    body["spec"]["containers"][0]["ports"] = [
        {"containerPort": 0},
        {"containerPort": 70000, "hostPort": 70000},
        {"name": "http", "containerPort": 1},
        {"name": "http", "containerPort": 2},
    ]
    assert errors_of(body) == [
        "spec.containers[0].ports[0].containerPort: Required value",
        "spec.containers[0].ports[1].containerPort: Invalid value: 70000: must be between 1 "
        "and 65535, inclusive",
        "spec.containers[0].ports[1].hostPort: Invalid value: 70000: must be between 1 and "
        "65535, inclusive",
        'spec.containers[0].ports[3].name: Duplicate value: "http"',
        'spec.containers[1].name: Duplicate value: "app"',
    ]


def test_resources_must_parse_and_requests_may_not_exceed_limits() -> None:
    body = pod()
    body["spec"]["containers"][0]["resources"] = {
        "limits": {"cpu": "500m", "memory": "lots"},
        "requests": {"cpu": "1", "gpus": "1"},
    }
    assert errors_of(body) == [
        'spec.containers[0].resources.limits[memory]: Invalid value: "lots": quantities must '
        "match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        'spec.containers[0].resources.requests: Invalid value: "1": must be less than or equal '
        "to cpu limit of 500m",
        'spec.containers[0].resources.requests[gpus]: Invalid value: "gpus": must be a standard '
        "resource for containers",
        # Defaulting copied the unparseable limit into the requests.
        'spec.containers[0].resources.requests[memory]: Invalid value: "lots": quantities must '
        "match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
    ]
    body = pod()
    body["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "-1"}}
    assert errors_of(body) == [
        'spec.containers[0].resources.requests[cpu]: Invalid value: "-1": must be greater '
        "than or equal to 0"
    ]


def test_mounts_probes_volumes_and_tolerations() -> None:
    body = pod(
        volumes=[{"name": "v", "emptyDir": {}, "hostPath": {"path": "/"}}],
        tolerations=[{"operator": "Equal", "value": "x"}, {"key": "k", "tolerationSeconds": 5}],
    )
    body["spec"]["containers"][0].update(
        volumeMounts=[{"name": "missing", "mountPath": "/a"}],
        livenessProbe={"exec": {"command": ["true"]}, "successThreshold": 2},
        readinessProbe={},
    )
    assert errors_of(body) == [
        "spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type",
        'spec.containers[0].volumeMounts[0].name: Not found: "missing"',
        "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        "spec.containers[0].readinessProbe: Required value: must specify a handler type",
        'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when '
        '`key` is empty, which means "match all values and all keys"',
        "spec.tolerations[1].effect: Invalid value: \"\": effect must be 'NoExecute' when "
        "`tolerationSeconds` is set",
    ]


def test_qos_classes() -> None:
    def qos(*resources_: dict[str, Any]) -> str:
        containers = [
            {"name": str(i), "image": "x", "resources": r} for i, r in enumerate(resources_)
        ]
        body = {"metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": containers}}
        STRATEGY.default(body)
        return qos_class(body["spec"])

    assert qos({}) == "BestEffort"
    assert qos({"limits": {"cpu": "1", "memory": "1Gi"}}) == "Guaranteed"
    assert qos({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}) == (
        "Burstable"
    )
    assert qos({"limits": {"cpu": "1", "memory": "1Gi"}}, {}) == "Burstable"
    assert qos({"requests": {"cpu": "0"}}) == "BestEffort"


def test_create_resets_status_to_pending() -> None:
    body = defaulted(pod())
    body["status"] = {"phase": "Running"}
    kinds.prepare_create(PODS, body, "2026-01-01T00:00:00Z", "uid-1")
    assert body["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    assert body["metadata"]["uid"] == "uid-1"
    assert body["metadata"]["creationTimestamp"] == "2026-01-01T00:00:00Z"
    assert "generation" not in body["metadata"]


def stored() -> dict[str, Any]:
    body = defaulted(pod(tolerations=[{"key": "a", "operator": "Exists"}]))
    kinds.prepare_create(PODS, body, "2026-01-01T00:00:00Z", "uid-1")
    return body


def update_errors(change: Any) -> list[str]:
    old = stored()
    new = copy.deepcopy(old)
    change(new["spec"])
    kinds.prepare_update(PODS, new, old)
    return text(STRATEGY.validate_update(new, old))


def test_images_deadline_and_new_tolerations_may_change() -> None:
    def change(spec: dict[str, Any]) -> None:
        spec["containers"][0]["image"] = "nginx:1.28"
        spec["activeDeadlineSeconds"] = 100
        spec["tolerations"].append({"key": "b", "operator": "Exists"})

    assert update_errors(change) == []


def test_other_spec_changes_are_forbidden() -> None:
    [message] = update_errors(lambda spec: spec.update(nodeName="node-1"))
    assert message.startswith(f"spec: Forbidden: {POD_UPDATE_FORBIDDEN}\n")
    assert 'spec.nodeName: null -> "node-1"' in message
    assert update_errors(lambda spec: spec["containers"].append({"name": "b", "image": "x"})) == [
        "spec.containers: Forbidden: pod updates may not add or remove containers"
    ]
    assert update_errors(lambda spec: spec.update(tolerations=[])) == [
        "spec.tolerations: Forbidden: existing toleration can not be modified except its "
        "tolerationSeconds"
    ]


def test_main_update_keeps_status_and_status_update_keeps_spec() -> None:
    old = stored()
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Running"}
    kinds.prepare_update(PODS, new, old)
    assert new["status"] == old["status"]

    new = copy.deepcopy(old)
    new["status"] = {"phase": "Running", "podIP": "10.0.0.5"}
    new["spec"]["nodeName"] = "elsewhere"
    new["metadata"]["ownerReferences"] = [{"kind": "X"}]
    new["metadata"]["labels"] = {"ready": "yes"}
    kinds.prepare_update(PODS, new, old, "status")
    assert new["spec"] == old["spec"]
    assert "ownerReferences" not in new["metadata"]
    assert new["metadata"]["labels"] == {"ready": "yes"}
    assert new["status"] == {"phase": "Running", "podIP": "10.0.0.5", "qosClass": "BestEffort"}


def test_field_labels() -> None:
    body = stored()
    body["spec"]["nodeName"] = "n1"
    body["status"]["podIPs"] = [{"ip": "10.0.0.5"}]
    labels = STRATEGY.field_labels(body)
    assert labels == {
        "metadata.name": "web",
        "metadata.namespace": "default",
        "spec.nodeName": "n1",
        "spec.restartPolicy": "Always",
        "spec.schedulerName": "default-scheduler",
        "spec.serviceAccountName": "",
        "spec.hostNetwork": "false",
        "status.phase": "Pending",
        "status.podIP": "10.0.0.5",
        "status.nominatedNodeName": "",
    }
    assert set(labels) == set(STRATEGY.field_label_names())


def test_binding_target() -> None:
    strategy = kinds.strategy_for(BINDINGS)
    binding = {"metadata": {"name": "web", "namespace": "default"}, "target": {"kind": "Pod"}}
    assert text(strategy.validate_create(binding)) == [
        'target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>"',
        "target.name: Required value",
    ]
    binding["target"] = {"kind": "Node", "name": "n1"}
    assert strategy.validate_create(binding) == []


def test_env_and_image_details() -> None:
    body = pod()
    body["spec"]["containers"][0].update(
        image=" nginx",
        env=[
            {"name": "1_RELAXED.NAME-OK", "value": "x"},
            {"name": "A=B"},
            {"name": "", "value": "x"},
            {"name": "FROM", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "x"}}},
            {"name": "EMPTY", "valueFrom": {}},
            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "s"}}},
        ],
    )
    assert errors_of(body) == [
        'spec.containers[0].image: Invalid value: " nginx": must not have leading or trailing '
        "whitespace",
        'spec.containers[0].env[1].name: Invalid value: "A=B": a valid environment variable '
        "name must consist only of printable ASCII characters other than '='",
        "spec.containers[0].env[2].name: Required value",
        'spec.containers[0].env[2].name: Invalid value: "": environment variable name must be '
        "non-empty",
        'spec.containers[0].env[3].valueFrom: Invalid value: "": may not be specified when '
        "`value` is not empty",
        'spec.containers[0].env[4].valueFrom: Invalid value: "": must specify one of: '
        "`fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        "spec.containers[0].env[5].valueFrom.secretKeyRef.key: Required value",
    ]


def test_status_writes_are_checked() -> None:
    old = stored()
    new = copy.deepcopy(old)
    new["status"] = {
        "phase": "Running",
        "podIPs": [{"ip": "10.0.0.5"}, {"ip": "x"}],
        "nominatedNodeName": "Node_1",
    }
    kinds.prepare_update(PODS, new, old, "status")
    causes = text(STRATEGY.validate_status_update(new, old))
    assert causes[0].startswith('status.nominatedNodeName: Invalid value: "Node_1": a lowercase')
    assert causes[1:] == [
        'status.podIPs[1].ip: Invalid value: "x": must be a valid IP address, (e.g. 10.9.8.7 '
        "or 2001:db8::ffff)"
    ]


def test_plain_init_containers_take_no_probes_or_hooks() -> None:
    body = pod()
    body["spec"]["initContainers"] = [
        {
            "name": "init",
            "image": "x",
            "lifecycle": {"preStop": {"exec": {"command": ["a"]}}},
            "startupProbe": {"exec": {"command": ["a"]}},
        },
        {
            "name": "sidecar",
            "image": "x",
            "restartPolicy": "Always",
            "readinessProbe": {"exec": {"command": ["a"]}},
        },
    ]
    assert errors_of(body) == [
        "spec.initContainers[0].lifecycle: Forbidden: may not be set for init containers "
        "without restartPolicy=Always",
        "spec.initContainers[0].startupProbe: Forbidden: may not be set for init containers "
        "without restartPolicy=Always",
    ]


def test_extended_resources_are_requested_at_their_limit() -> None:
    body = pod()
    body["spec"]["initContainers"] = [
        {"name": "i", "image": "x", "resources": {"requests": {"example.com/gpu": "1"}}},
    ]
    body["spec"]["containers"][0]["resources"] = {
        "limits": {"example.com/gpu": "2"},
        "requests": {"example.com/gpu": "1"},
    }
    assert errors_of(body) == [
        'spec.containers[0].resources.requests: Invalid value: "1": must be equal to '
        "example.com/gpu limit of 2",
        "spec.initContainers[0].resources.limits: Required value: Limit must be set for non "
        "overcommitable resources",
    ]


def test_pod_requests_follow_upstreams_sidecar_rule() -> None:
    def requests(cpu: str) -> dict[str, Any]:
        return {"resources": {"requests": {"cpu": cpu}}}

    spec = {
        "containers": [{"name": "a", **requests("100m")}, {"name": "b", **requests("200m")}],
        "initContainers": [
            {"name": "sidecar", "restartPolicy": "Always", **requests("50m")},
            {"name": "big-init", **requests("1")},
        ],
        "overhead": {"cpu": "10m", "memory": "1Mi"},
    }
    totals = pod_requests(spec)
    # max(100m + 200m + 50m, 50m + 1) + 10m overhead
    assert totals["cpu"] == parse_quantity("1060m")
    assert totals["memory"] == parse_quantity("1Mi")
    assert pod_requests({"containers": [{"name": "a"}]}) == {}


def test_a_gated_pod_says_why_it_is_not_scheduled() -> None:
    body = defaulted(pod(schedulingGates=[{"name": "example.com/wait"}]))
    kinds.prepare_create(PODS, body, "2026-01-01T00:00:00Z", "uid-1")
    assert body["status"]["conditions"] == [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "SchedulingGated",
            "message": "Scheduling is blocked due to non-empty scheduling gates",
        }
    ]
