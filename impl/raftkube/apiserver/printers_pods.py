"""kubectl's columns for pods and nodes, computed on the server as upstream does.

``printPod`` and ``printNode`` of kubernetes ``pkg/printers/internalversion/printers.go`` (1.32),
split from :mod:`raftkube.apiserver.printers` for their size: the pod's STATUS column alone
re-derives what ``kubectl get pods`` users read as the pod's state. Node roles are sorted where
upstream joins a Go set in map order.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from raftkube.apiserver.printing import (
    AGE,
    NAME,
    Cells,
    Column,
    Object,
    Printer,
    age,
    as_int,
    as_list,
    as_str,
    creation_age,
    field,
    meta,
    name_of,
    parse_time,
)

# ---- pods -----------------------------------------------------------------------------------

_POD_SUCCEEDED = [
    {
        "type": "Completed",
        "status": "True",
        "reason": "Succeeded",
        "message": "The pod has completed successfully.",
    }
]
_POD_FAILED = [
    {"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}
]
NODE_UNREACHABLE_POD_REASON = "NodeLost"


def _is_restartable_init(container: Any) -> bool:
    return as_str(field(container, "restartPolicy")) == "Always"


def _condition_true(conditions: list[Any], kind: str) -> bool:
    return any(field(c, "type") == kind and field(c, "status") == "True" for c in conditions)


def _later(current: datetime | None, candidate: Any) -> datetime | None:
    ts = parse_time(candidate)
    if ts is None:
        return current
    return ts if current is None or ts > current else current


def _terminated_reason(state: Any, prefix: str = "") -> str:
    reason = as_str(field(state, "reason"))
    if reason:
        return prefix + reason
    signal = as_int(field(state, "signal"))
    if signal:
        return f"{prefix}Signal:{signal}"
    return f"{prefix}ExitCode:{as_int(field(state, 'exitCode'))}"


def pod_cells(pod: Object, now: datetime) -> Cells:
    """``printPod``: NAME READY STATUS RESTARTS AGE | IP NODE NOMINATED NODE READINESS GATES.

    STATUS is the phase, overridden by ``status.reason``, then by the first init container
    still at work (``Init:0/2``, ``Init:CrashLoopBackOff``, ``Init:Error``), then by the last
    container with a waiting or terminated reason (``ContainerCreating``,
    ``CrashLoopBackOff``, ``Completed``, ``Error``, ``ExitCode:1``), ``Running`` again when a
    completed pod still has a ready running container (``NotReady`` without the Ready
    condition), and ``Terminating`` (``Unknown`` on a lost node) once deletion has begun.
    """
    spec = pod.get("spec") if isinstance(pod.get("spec"), Mapping) else {}
    status = pod.get("status") if isinstance(pod.get("status"), Mapping) else {}
    assert isinstance(spec, Mapping) and isinstance(status, Mapping)
    conditions = as_list(status.get("conditions"))
    init_specs = {
        as_str(c.get("name")): c
        for c in as_list(spec.get("initContainers"))
        if isinstance(c, Mapping)
    }
    total = len(as_list(spec.get("containers")))
    total += sum(1 for c in init_specs.values() if _is_restartable_init(c))
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    phase = as_str(status.get("phase"))
    reason = as_str(status.get("reason")) or phase
    for c in conditions:
        if field(c, "type") == "PodScheduled" and field(c, "reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_statuses = as_list(status.get("initContainerStatuses"))
    initializing = False
    for i, cs in enumerate(init_statuses):
        restarts += as_int(field(cs, "restartCount"))
        finished = field(cs, "lastState", "terminated", "finishedAt")
        last_restart = _later(last_restart, finished)
        sidecar = _is_restartable_init(init_specs.get(as_str(field(cs, "name"))))
        if sidecar:
            sidecar_restarts += as_int(field(cs, "restartCount"))
            last_sidecar_restart = _later(last_sidecar_restart, finished)
        terminated = field(cs, "state", "terminated")
        waiting_reason = as_str(field(cs, "state", "waiting", "reason"))
        if isinstance(terminated, Mapping) and as_int(terminated.get("exitCode")) == 0:
            continue
        if sidecar and field(cs, "started") is True:
            if field(cs, "ready") is True:
                ready += 1
            continue
        if isinstance(terminated, Mapping):
            reason = _terminated_reason(terminated, "Init:")
        elif waiting_reason and waiting_reason != "PodInitializing":
            reason = "Init:" + waiting_reason
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(conditions, "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(as_list(status.get("containerStatuses"))):
            restarts += as_int(field(cs, "restartCount"))
            last_restart = _later(last_restart, field(cs, "lastState", "terminated", "finishedAt"))
            waiting_reason = as_str(field(cs, "state", "waiting", "reason"))
            terminated = field(cs, "state", "terminated")
            if waiting_reason:
                reason = waiting_reason
            elif isinstance(terminated, Mapping):
                reason = _terminated_reason(terminated)
            elif field(cs, "ready") is True and isinstance(field(cs, "state", "running"), Mapping):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    deleting = meta(pod).get("deletionTimestamp") is not None
    if deleting and as_str(status.get("reason")) == NODE_UNREACHABLE_POD_REASON:
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts and last_restart is not None:
        restarts_cell = f"{restarts} ({age(last_restart, now)} ago)"

    pod_ips = as_list(status.get("podIPs"))
    pod_ip = as_str(field(pod_ips[0], "ip")) if pod_ips else ""
    gates = as_list(spec.get("readinessGates"))
    gates_cell = "<none>"
    if gates:
        true_count = 0
        for gate in gates:
            wanted = field(gate, "conditionType")
            match = next((c for c in conditions if field(c, "type") == wanted), None)
            if match is not None and field(match, "status") == "True":
                true_count += 1
        gates_cell = f"{true_count}/{len(gates)}"
    return [
        name_of(pod),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        creation_age(pod, now),
        pod_ip or "<none>",
        as_str(spec.get("nodeName")) or "<none>",
        as_str(status.get("nominatedNodeName")) or "<none>",
        gates_cell,
    ]


def _pod_conditions(pod: Object) -> list[dict[str, str]]:
    phase = field(pod, "status", "phase")
    if phase == "Succeeded":
        return [dict(c) for c in _POD_SUCCEEDED]
    if phase == "Failed":
        return [dict(c) for c in _POD_FAILED]
    return []


POD = Printer(
    (
        NAME,
        Column(
            "Ready", description="The aggregate readiness state of this pod for accepting traffic."
        ),
        Column("Status", description="The aggregate status of the containers in this pod."),
        Column(
            "Restarts",
            description="The number of times the containers in this pod have been "
            "restarted and when the last container in this pod has restarted.",
        ),
        AGE,
        Column("IP", priority=1, description="podIP address allocated to the pod."),
        Column("Node", priority=1, description="NodeName is the node the pod is bound to."),
        Column(
            "Nominated Node",
            priority=1,
            description="nominatedNodeName is set only when "
            "this pod preempts other pods on the node.",
        ),
        Column(
            "Readiness Gates",
            priority=1,
            description="If specified, all readiness gates will be evaluated for pod readiness.",
        ),
    ),
    pod_cells,
    _pod_conditions,
)


# ---- nodes ----------------------------------------------------------------------------------

_ROLE_PREFIX = "node-role.kubernetes.io/"
_ROLE_LABEL = "kubernetes.io/role"


def node_roles(node: Object) -> list[str]:
    """``findNodeRoles``: from ``node-role.kubernetes.io/<role>`` labels and the
    ``kubernetes.io/role`` label (sorted, see the module docstring)."""
    roles: set[str] = set()
    labels = meta(node).get("labels")
    for key, value in labels.items() if isinstance(labels, Mapping) else ():
        if key.startswith(_ROLE_PREFIX) and key[len(_ROLE_PREFIX) :]:
            roles.add(key[len(_ROLE_PREFIX) :])
        elif key == _ROLE_LABEL and value:
            roles.add(str(value))
    return sorted(roles)


def _node_address(node: Object, kind: str) -> str:
    for address in as_list(field(node, "status", "addresses")):
        if field(address, "type") == kind:
            return as_str(field(address, "address"))
    return "<none>"


def node_cells(node: Object, now: datetime) -> Cells:
    """``printNode``: STATUS is ``Ready``/``NotReady`` from the Ready condition
    (``Unknown`` without one), plus ``SchedulingDisabled`` when cordoned."""
    status: list[str] = []
    ready = next(
        (c for c in as_list(field(node, "status", "conditions")) if field(c, "type") == "Ready"),
        None,
    )
    if ready is not None:
        status.append("Ready" if field(ready, "status") == "True" else "NotReady")
    else:
        status.append("Unknown")
    if field(node, "spec", "unschedulable") is True:
        status.append("SchedulingDisabled")
    info = field(node, "status", "nodeInfo")
    return [
        name_of(node),
        ",".join(status),
        ",".join(node_roles(node)) or "<none>",
        creation_age(node, now),
        as_str(field(info, "kubeletVersion")),
        _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"),
        as_str(field(info, "osImage")) or "<unknown>",
        as_str(field(info, "kernelVersion")) or "<unknown>",
        as_str(field(info, "containerRuntimeVersion")) or "<unknown>",
    ]


NODE = Printer(
    (
        NAME,
        Column("Status", description="The status of the node"),
        Column("Roles", description="The roles of the node"),
        AGE,
        Column("Version", description="Kubelet Version reported by the node."),
        Column("Internal-IP", priority=1, description="List of addresses reachable to the node."),
        Column("External-IP", priority=1, description="List of addresses reachable to the node."),
        Column("OS-Image", priority=1, description="OS Image reported by the node."),
        Column("Kernel-Version", priority=1, description="Kernel Version reported by the node."),
        Column(
            "Container-Runtime",
            priority=1,
            description="ContainerRuntime Version reported by the node.",
        ),
    ),
    node_cells,
)
