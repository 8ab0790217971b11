"""kubectl's columns and cells for every kind, and ages as upstream's HumanDuration.

Expected cells are worked out by hand from upstream's printers (kubernetes 1.32
``pkg/printers/internalversion/printers.go``), which these tests mirror case by case: the pod's
STATUS column above all, since it is what people read as a pod's state.
"""

from __future__ import annotations

from typing import Any

import pytest

from raftkube.apiserver.printing import human_duration, human_duration_ns, selector_string
from raftkube.apiserver.tables import to_table
from tests.helpers.tables import NOW, ago, info, obj


def cells(group: str, kind: str, o: dict[str, Any]) -> list[Any]:
    table = to_table(info(group, kind), [o], now=NOW)
    row_cells: list[Any] = table["rows"][0]["cells"]
    return row_cells


def header(group: str, kind: str, wide: bool = False) -> list[str]:
    table = to_table(info(group, kind), [], now=NOW)
    return [c["name"].upper() for c in table["columnDefinitions"] if wide or c["priority"] == 0]


# ---- ages -----------------------------------------------------------------------------------

_S = 1_000_000_000
_M = 60 * _S
_H = 60 * _M


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (_S, "1s"),
        (70 * _S, "70s"),
        (119 * _S, "119s"),
        (2 * _M, "2m"),
        (2 * _M + _S, "2m1s"),
        (10 * _M - _S, "9m59s"),
        (10 * _M, "10m"),
        (10 * _M + _S, "10m"),
        (_H - _S, "59m"),
        (3 * _H - _S, "179m"),
        (3 * _H, "3h"),
        (3 * _H + _M, "3h1m"),
        (8 * _H - _S, "7h59m"),
        (8 * _H, "8h"),
        (8 * _H + 59 * _M, "8h"),
        (48 * _H - _S, "47h"),
        (48 * _H, "2d"),
        (49 * _H, "2d1h"),
        (192 * _H - _S, "7d23h"),
        (192 * _H, "8d"),
        (24 * 365 * 2 * _H - _S, "729d"),
        (24 * 365 * 2 * _H, "2y"),
        (24 * 365 * 2 * _H + 24 * _H, "2y1d"),
        (24 * 365 * 8 * _H - _S, "7y364d"),
        (24 * 365 * 8 * _H, "8y"),
        (-_S, "0s"),
        (-2 * _S, "<invalid>"),
        (0, "0s"),
    ],
)
def test_human_duration_matches_upstream(ns: int, text: str) -> None:
    assert human_duration_ns(ns) == text


def test_human_duration_seconds() -> None:
    assert human_duration(182) == "3m2s"
    assert human_duration(2 * 86400 + 3 * 3600) == "2d3h"


# ---- pods -----------------------------------------------------------------------------------


def pod(status: dict[str, Any], spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    spec = spec or {"containers": [{"name": "app", "image": "nginx"}]}
    return obj(meta, spec=spec, status=status)


def running(name: str = "app", ready: bool = True, restarts: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "ready": ready,
        "restartCount": restarts,
        "state": {"running": {"startedAt": ago(60)}},
    }


def pod_status(o: dict[str, Any]) -> tuple[str, str, str]:
    c = cells("", "Pod", o)
    return c[1], c[2], c[3]


def test_pod_header_and_wide_columns() -> None:
    assert header("", "Pod") == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert header("", "Pod", wide=True)[5:] == ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]


def test_pending_pod_without_statuses() -> None:
    c = cells("", "Pod", pod({"phase": "Pending"}))
    assert c == ["x", "0/1", "Pending", "0", "2m2s", "<none>", "<none>", "<none>", "<none>"]


def test_container_creating() -> None:
    waiting = {
        "name": "app",
        "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": "ContainerCreating"}},
    }
    status = {"phase": "Pending", "containerStatuses": [waiting]}
    assert pod_status(pod(status)) == ("0/1", "ContainerCreating", "0")


def test_running_pod_with_ip_node_and_gates() -> None:
    spec = {
        "containers": [{"name": "a"}, {"name": "b"}],
        "nodeName": "node-1",
        "readinessGates": [{"conditionType": "example.com/gate"}],
    }
    status = {
        "phase": "Running",
        "podIPs": [{"ip": "10.1.0.5"}],
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "example.com/gate", "status": "True"},
        ],
        "containerStatuses": [running("a"), running("b", ready=False)],
    }
    c = cells("", "Pod", pod(status, spec))
    assert c == ["x", "1/2", "Running", "0", "2m2s", "10.1.0.5", "node-1", "<none>", "1/1"]


def test_crash_loop_back_off_shows_restarts_with_their_age() -> None:
    cs = {
        "name": "app",
        "ready": False,
        "restartCount": 5,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(185)}},
    }
    assert pod_status(pod({"phase": "Running", "containerStatuses": [cs]})) == (
        "0/1",
        "CrashLoopBackOff",
        "5 (3m5s ago)",
    )


def test_completed_pod_and_its_row_condition() -> None:
    cs = {
        "name": "app",
        "ready": False,
        "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
    }
    o = pod({"phase": "Succeeded", "containerStatuses": [cs]})
    assert pod_status(o) == ("0/1", "Completed", "0")
    row = to_table(info("", "Pod"), [o], now=NOW)["rows"][0]
    assert row["conditions"] == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]
    failed = pod({"phase": "Failed", "containerStatuses": [cs]})
    assert to_table(info("", "Pod"), [failed], now=NOW)["rows"][0]["conditions"][0]["reason"] == (
        "Failed"
    )
    assert (
        "conditions"
        not in to_table(info("", "Pod"), [pod({"phase": "Running"})], now=NOW)["rows"][0]
    )


@pytest.mark.parametrize(
    ("terminated", "expected"),
    [
        ({"exitCode": 1}, "ExitCode:1"),
        ({"exitCode": 137, "signal": 9}, "Signal:9"),
        ({"exitCode": 1, "reason": "Error"}, "Error"),
    ],
)
def test_terminated_container_without_reason(terminated: dict[str, Any], expected: str) -> None:
    cs = {"name": "app", "restartCount": 0, "state": {"terminated": terminated}}
    assert pod_status(pod({"phase": "Failed", "containerStatuses": [cs]}))[1] == expected


def test_completed_container_beside_a_running_one() -> None:
    spec = {"containers": [{"name": "a"}, {"name": "b"}]}
    done = {
        "name": "b",
        "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
    }
    status = {
        "phase": "Running",
        "containerStatuses": [running("a"), done],
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    assert pod_status(pod(status, spec))[:2] == ("1/2", "Running")
    status["conditions"] = [{"type": "Ready", "status": "False"}]
    assert pod_status(pod(status, spec))[:2] == ("1/2", "NotReady")


def test_init_containers() -> None:
    spec = {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "app"}]}
    done = {"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 0}}}
    pending_init = {
        "name": "i2",
        "restartCount": 0,
        "state": {"waiting": {"reason": "PodInitializing"}},
    }
    status = {"phase": "Pending", "initContainerStatuses": [done, pending_init]}
    assert pod_status(pod(status, spec)) == ("0/1", "Init:1/2", "0")
    crashing = {
        "name": "i2",
        "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
    }
    status = {"phase": "Pending", "initContainerStatuses": [done, crashing]}
    assert pod_status(pod(status, spec)) == ("0/1", "Init:CrashLoopBackOff", "3")
    failed = {"name": "i2", "restartCount": 0, "state": {"terminated": {"exitCode": 2}}}
    status = {"phase": "Pending", "initContainerStatuses": [done, failed]}
    assert pod_status(pod(status, spec))[1] == "Init:ExitCode:2"


def test_sidecar_init_container_counts_as_a_container() -> None:
    spec = {
        "initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
        "containers": [{"name": "app"}],
    }
    sidecar = {
        "name": "proxy",
        "ready": True,
        "started": True,
        "restartCount": 1,
        "state": {"running": {}},
    }
    status = {
        "phase": "Running",
        "initContainerStatuses": [sidecar],
        "containerStatuses": [running("app")],
        "conditions": [
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "True"},
        ],
    }
    assert pod_status(pod(status, spec)) == ("2/2", "Running", "1")


def test_terminating_unknown_and_gated_pods() -> None:
    status = {"phase": "Running", "containerStatuses": [running()]}
    assert pod_status(pod(status, deletionTimestamp=ago(5)))[1] == "Terminating"
    lost = {"phase": "Running", "reason": "NodeLost", "containerStatuses": [running()]}
    assert pod_status(pod(lost, deletionTimestamp=ago(5)))[1] == "Unknown"
    done = {"phase": "Succeeded"}
    assert pod_status(pod(done, deletionTimestamp=ago(5)))[1] == "Succeeded"
    gated = {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
    }
    assert pod_status(pod(gated))[1] == "SchedulingGated"
    evicted = {"phase": "Failed", "reason": "Evicted"}
    assert pod_status(pod(evicted))[1] == "Evicted"


# ---- other kinds ----------------------------------------------------------------------------


def test_nodes() -> None:
    assert header("", "Node") == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    node = obj(
        {
            "labels": {
                "node-role.kubernetes.io/worker": "",
                "node-role.kubernetes.io/infra": "",
                "kubernetes.io/role": "edge",
            }
        },
        spec={"unschedulable": True},
        status={
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "False"},
            ],
            "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian"},
            "addresses": [{"type": "InternalIP", "address": "10.0.0.9"}],
        },
    )
    assert cells("", "Node", node) == [
        "x",
        "NotReady,SchedulingDisabled",
        "edge,infra,worker",
        "2m2s",
        "v1.32.0",
        "10.0.0.9",
        "<none>",
        "Debian",
        "<unknown>",
        "<unknown>",
    ]
    bare = obj(status={"conditions": [{"type": "Ready", "status": "True"}]})
    assert cells("", "Node", bare)[1:3] == ["Ready", "<none>"]
    assert cells("", "Node", obj())[1] == "Unknown"


def service(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return obj(spec=spec, status=status or {})


def test_services() -> None:
    assert header("", "Service") == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    svc = service(
        {
            "type": "ClusterIP",
            "clusterIPs": ["127.0.10.1"],
            "selector": {"b": "2", "a": "1"},
            "ports": [{"port": 80, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
        }
    )
    assert cells("", "Service", svc) == [
        "x",
        "ClusterIP",
        "127.0.10.1",
        "<none>",
        "80/TCP,53/UDP",
        "2m2s",
        "a=1,b=2",
    ]
    node_port = service(
        {
            "type": "NodePort",
            "clusterIPs": ["127.0.10.2"],
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
        }
    )
    assert cells("", "Service", node_port)[3:5] == ["<none>", "80:30080/TCP"]
    lb = service({"type": "LoadBalancer", "clusterIPs": ["127.0.10.3"]})
    assert cells("", "Service", lb)[3:5] == ["<pending>", "<none>"]
    lb_ready = service(
        {"type": "LoadBalancer"},
        {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "lb.example"}]}},
    )
    assert cells("", "Service", lb_ready)[2:4] == ["<none>", "1.2.3.4,lb.example"]
    external = service({"type": "ExternalName", "externalName": "db.example.com"})
    assert cells("", "Service", external)[3] == "db.example.com"
    headless = service({"type": "ClusterIP", "clusterIPs": ["None"], "externalIPs": ["5.6.7.8"]})
    assert cells("", "Service", headless)[2:4] == ["None", "5.6.7.8"]


def test_endpoints() -> None:
    ep = obj(
        subsets=[
            {
                "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                "ports": [{"port": 80}, {"port": 443}],
            },
        ]
    )
    assert cells("", "Endpoints", ep) == [
        "x",
        "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...",
        "2m2s",
    ]
    assert cells("", "Endpoints", obj())[1] == "<none>"
    headless = obj(subsets=[{"addresses": [{"ip": "fd00::1"}]}])
    assert cells("", "Endpoints", headless)[1] == "fd00::1"
    v6 = obj(subsets=[{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}])
    assert cells("", "Endpoints", v6)[1] == "[fd00::1]:80"


TEMPLATE = {
    "spec": {
        "containers": [{"name": "web", "image": "nginx:1"}, {"name": "log", "image": "busybox"}]
    }
}


def test_deployments() -> None:
    assert header("apps", "Deployment") == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    d = obj(
        spec={
            "replicas": 3,
            "template": TEMPLATE,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}],
            },
        },
        status={"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    )
    assert cells("apps", "Deployment", d) == [
        "x",
        "2/3",
        3,
        2,
        "2m2s",
        "web,log",
        "nginx:1,busybox",
        "app=web,tier in (a,b)",
    ]
    fresh = obj(spec={"replicas": 1, "template": TEMPLATE}, status={})
    assert cells("apps", "Deployment", fresh)[1:4] == ["0/1", 0, 0]


def test_replica_sets_and_controllers() -> None:
    assert header("apps", "ReplicaSet") == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    rs = obj(
        spec={
            "replicas": 3,
            "template": TEMPLATE,
            "selector": {"matchExpressions": [{"key": "legacy", "operator": "DoesNotExist"}]},
        },
        status={"replicas": 3, "readyReplicas": 1},
    )
    assert cells("apps", "ReplicaSet", rs) == [
        "x",
        3,
        3,
        1,
        "2m2s",
        "web,log",
        "nginx:1,busybox",
        "!legacy",
    ]
    no_selector = obj(spec={"replicas": 0, "template": TEMPLATE}, status={})
    assert cells("apps", "ReplicaSet", no_selector)[-1] == "<none>"
    rc = obj(
        spec={"replicas": 2, "selector": {"app": "web"}, "template": TEMPLATE},
        status={"replicas": 2, "readyReplicas": 2},
    )
    assert header("", "ReplicationController") == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert cells("", "ReplicationController", rc)[1:4] == [2, 2, 2]
    assert cells("", "ReplicationController", rc)[-1] == "app=web"


def test_selector_strings() -> None:
    assert selector_string(None) == ""
    assert selector_string({}) == ""
    sel = {
        "matchLabels": {"z": "1"},
        "matchExpressions": [
            {"key": "a", "operator": "NotIn", "values": ["y", "x"]},
            {"key": "m", "operator": "Exists"},
        ],
    }
    assert selector_string(sel) == "a notin (x,y),m,z=1"
    assert selector_string({"matchExpressions": [{"key": "a", "operator": "Near"}]}) is None


def test_configuration_and_account_kinds() -> None:
    assert header("", "Namespace") == ["NAME", "STATUS", "AGE"]
    assert cells("", "Namespace", obj(status={"phase": "Active"})) == ["x", "Active", "2m2s"]
    assert header("", "Secret") == ["NAME", "TYPE", "DATA", "AGE"]
    secret = obj(type="kubernetes.io/tls", data={"tls.crt": "", "tls.key": ""})
    assert cells("", "Secret", secret) == ["x", "kubernetes.io/tls", 2, "2m2s"]
    assert header("", "ConfigMap") == ["NAME", "DATA", "AGE"]
    cm = obj(data={"a": "1"}, binaryData={"b": "AA=="})
    assert cells("", "ConfigMap", cm) == ["x", 2, "2m2s"]
    assert cells("", "ConfigMap", obj()) == ["x", 0, "2m2s"]
    assert header("", "ServiceAccount") == ["NAME", "SECRETS", "AGE"]
    assert cells("", "ServiceAccount", obj(secrets=[{"name": "t"}])) == ["x", 1, "2m2s"]
    assert header("coordination.k8s.io", "Lease") == ["NAME", "HOLDER", "AGE"]
    lease = obj(spec={"holderIdentity": "node-1"})
    assert cells("coordination.k8s.io", "Lease", lease) == ["x", "node-1", "2m2s"]


def test_events() -> None:
    assert header("", "Event") == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    ev = obj(
        type="Warning",
        reason="BackOff",
        message=" Back-off restarting \n",
        count=4,
        involvedObject={"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{app}"},
        source={"component": "kubelet", "host": "node-1"},
        firstTimestamp=ago(600),
        lastTimestamp=ago(30),
    )
    assert cells("", "Event", ev) == [
        "30s",
        "Warning",
        "BackOff",
        "pod/web-1",
        "spec.containers{app}",
        "kubelet, node-1",
        "Back-off restarting",
        "10m",
        4,
        "x",
    ]
    new_api = obj(
        type="Normal",
        reason="Scheduled",
        eventTime="2026-01-01T11:59:00.123456Z",
        reportingComponent="default-scheduler",
        involvedObject={"kind": "Node"},
    )
    c = cells("", "Event", new_api)
    # 59.88 s ago: Go's duration truncates to whole seconds
    assert (c[0], c[3], c[5], c[7], c[8]) == ("59s", "node", "default-scheduler", "59s", 1)
    series = obj(
        firstTimestamp=ago(900),
        count=2,
        series={"count": 9, "lastObservedTime": "2026-01-01T11:59:50.000000Z"},
    )
    c = cells("", "Event", series)
    assert (c[0], c[8]) == ("10s", 9)


def test_bindings_and_default_printer() -> None:
    assert header("rbac.authorization.k8s.io", "RoleBinding") == ["NAME", "ROLE", "AGE"]
    rb = obj(
        roleRef={"kind": "ClusterRole", "name": "admin"},
        subjects=[
            {"kind": "User", "name": "alice"},
            {"kind": "User", "name": "bob"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "ci", "namespace": "build"},
        ],
    )
    assert cells("rbac.authorization.k8s.io", "RoleBinding", rb) == [
        "x",
        "ClusterRole/admin",
        "2m2s",
        "alice, bob",
        "devs",
        "build/ci",
    ]
    assert cells("rbac.authorization.k8s.io", "ClusterRoleBinding", rb)[1] == "ClusterRole/admin"
    for kind in ("Role", "ClusterRole"):
        table = to_table(info("rbac.authorization.k8s.io", kind), [obj()], now=NOW)
        assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Created At"]
        assert table["columnDefinitions"][1]["type"] == "date"
        assert table["rows"][0]["cells"] == ["x", "2026-01-01T11:57:58Z"]
