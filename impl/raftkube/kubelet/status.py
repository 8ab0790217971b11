"""A pod's status from what the runtime reports: upstream's ``generateAPIPodStatus``,
``getPhase``, ``convertToAPIContainerStatuses`` and the ``status`` package's conditions.

Pure functions: the pod worker gathers the runtime's containers, the probe results and the
reasons it is holding a container back, and this module says what the API should show.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from raftkube.runtime.interface import ContainerState, ContainerStatus

Obj = dict[str, Any]


def rfc3339(wall: float) -> str:
    """A ``metav1.Time`` as the API serialises it (whole seconds, UTC)."""
    return datetime.datetime.fromtimestamp(int(wall), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.frozen
class ContainerView:
    """What the kubelet knows of one container of the spec: the latest and the one before
    in the runtime, a waiting reason it imposes (``CrashLoopBackOff``, ``CreateContainerError``,
    ``PodInitializing``) with its message, and whether its readiness probe passes."""

    latest: ContainerStatus | None = None
    previous: ContainerStatus | None = None
    waiting: tuple[str, str] | None = None
    ready: bool = False


@attrs.frozen
class PodView:
    pod_ip: str
    host_ip: str
    sandbox_ready: bool
    init: Mapping[str, ContainerView]
    containers: Mapping[str, ContainerView]
    start_time: str
    runtime_name: str


def _terminated(status: ContainerStatus, to_wall: Callable[[float], str], scheme: str) -> Obj:
    out: Obj = {
        "exitCode": status.exit_code,
        "reason": status.reason or ("Completed" if status.exit_code == 0 else "Error"),
        "startedAt": to_wall(status.started_at) if status.started_at is not None else None,
        "finishedAt": to_wall(status.finished_at or status.created_at),
        "containerID": f"{scheme}://{status.id}",
    }
    if status.message:
        out["message"] = status.message
    return out


def container_status(
    spec: Obj, view: ContainerView, to_wall: Callable[[float], str], scheme: str
) -> Obj:
    """One entry of ``containerStatuses`` (or ``initContainerStatuses``)."""
    latest, previous = view.latest, view.previous
    out: Obj = {
        "name": spec["name"],
        "image": spec.get("image", ""),
        "imageID": "",
        "restartCount": latest.attempt if latest else 0,
        "ready": False,
        "started": False,
        "lastState": {},
    }
    if latest is not None:
        out["containerID"] = f"{scheme}://{latest.id}"
    if latest is not None and latest.state is ContainerState.RUNNING:
        assert latest.started_at is not None
        out["state"] = {"running": {"startedAt": to_wall(latest.started_at)}}
        out["ready"] = view.ready
        out["started"] = True
        if previous is not None:
            out["lastState"] = {"terminated": _terminated(previous, to_wall, scheme)}
    elif latest is not None and latest.state is ContainerState.EXITED and view.waiting is None:
        out["state"] = {"terminated": _terminated(latest, to_wall, scheme)}
        if previous is not None:
            out["lastState"] = {"terminated": _terminated(previous, to_wall, scheme)}
    else:
        reason, message = view.waiting or ("ContainerCreating", "")
        waiting: Obj = {"reason": reason}
        if message:
            waiting["message"] = message
        out["state"] = {"waiting": waiting}
        last = latest if latest is not None and latest.state is ContainerState.EXITED else previous
        if last is not None:
            out["lastState"] = {"terminated": _terminated(last, to_wall, scheme)}
    return out


def get_phase(spec: Obj, init: list[Obj], containers: list[Obj]) -> str:
    """Upstream's ``getPhase`` (without sidecar init containers)."""
    restart = spec.get("restartPolicy") or "Always"
    pending_init = failed_init = 0
    for status in init:
        state, last = status.get("state") or {}, status.get("lastState") or {}
        if "terminated" in state:
            if state["terminated"].get("exitCode") == 0:
                continue
            failed_init += 1
        elif "waiting" in state and (last.get("terminated") or {}).get("exitCode", 0) != 0:
            failed_init += 1
        else:
            pending_init += 1
    if failed_init and restart == "Never":
        return "Failed"
    if pending_init or failed_init:
        return "Pending"
    unknown = running = waiting = stopped = succeeded = 0
    for status in containers:
        state, last = status.get("state") or {}, status.get("lastState") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"].get("exitCode") == 0
        elif "waiting" in state:
            if "terminated" in last:
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    if waiting:
        return "Pending"
    if running and not unknown:
        return "Running"
    if not running and stopped and not unknown:
        if restart == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(old: Obj, kind: str, ok: bool, reason: str, message: str, now: str) -> Obj:
    previous: Obj = next((c for c in old.get("conditions") or [] if c.get("type") == kind), {})
    status = "True" if ok else "False"
    out: Obj = {"type": kind, "status": status, "lastProbeTime": None}
    out["lastTransitionTime"] = (
        previous.get("lastTransitionTime") if previous.get("status") == status else now
    ) or now
    if not ok and reason:
        out["reason"] = reason
        if message:
            out["message"] = message
    return out


def pod_status(pod: Obj, view: PodView, to_wall: Callable[[float], str], now: str) -> Obj:
    """The whole ``status`` the kubelet writes for ``pod``."""
    spec, old = pod.get("spec") or {}, pod.get("status") or {}
    scheme = view.runtime_name
    init = [
        container_status(c, view.init.get(c["name"], ContainerView()), to_wall, scheme)
        for c in spec.get("initContainers") or []
    ]
    containers = [
        container_status(c, view.containers.get(c["name"], ContainerView()), to_wall, scheme)
        for c in spec.get("containers") or []
    ]
    phase = get_phase(spec, init, containers)
    incomplete = [
        s["name"] for s in init if (s["state"].get("terminated") or {}).get("exitCode", 1)
    ]
    unready = [s["name"] for s in containers if not s["ready"]]
    done = phase in ("Succeeded", "Failed")
    not_ready = (
        ("PodCompleted", "")
        if done
        else ("ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]")
    )
    ready = not unready and not done
    conditions = [
        _condition(old, "PodReadyToStartContainers", view.sandbox_ready, "", "", now),
        _condition(
            old,
            "Initialized",
            not incomplete or done,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(incomplete)}]",
            now,
        ),
        _condition(old, "Ready", ready, *not_ready, now),
        _condition(old, "ContainersReady", ready, *not_ready, now),
        _condition(old, "PodScheduled", True, "", "", now),
    ]
    status: Obj = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": view.host_ip,
        "hostIPs": [{"ip": view.host_ip}],
        "startTime": old.get("startTime") or view.start_time,
        "containerStatuses": containers,
    }
    if init:
        status["initContainerStatuses"] = init
    if view.pod_ip:
        status["podIP"] = view.pod_ip
        status["podIPs"] = [{"ip": view.pod_ip}]
    if old.get("qosClass"):
        status["qosClass"] = old["qosClass"]
    return status
