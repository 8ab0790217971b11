"""The Deployment's status and conditions: upstream's ``calculateStatus``,
``syncRolloutStatus`` (``progress.go``) and the condition helpers of
``pkg/controller/deployment/util``, as plain functions of the Deployment, its ReplicaSets and
the wall time.

*Available* is True while at least ``replicas - maxUnavailable`` pods are available.
*Progressing* (only with a ``progressDeadlineSeconds``) says ``NewReplicaSetAvailable`` once the
rollout is complete, ``ReplicaSetUpdated`` whenever a sync sees progress (more updated, ready or
available pods, or fewer old ones), and ``ProgressDeadlineExceeded`` (status False) when the
deadline passes after its last update without progress; ``kubectl rollout status`` reads these.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from raftkube.controllers import deployment_util as du
from raftkube.controllers.controller_utils import parse_time, rfc3339

Obj = dict[str, Any]

AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"
MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
MINIMUM_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
REPLICA_SET_UPDATED = "ReplicaSetUpdated"
NEW_REPLICA_SET = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
FAILED_RS_CREATE = "ReplicaSetCreateError"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"


def get_condition(status: Obj, kind: str) -> Obj | None:
    for condition in status.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == kind:
            return condition
    return None


def new_condition(kind: str, status: str, reason: str, message: str, now: float) -> Obj:
    stamp = rfc3339(now)
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def set_condition(status: Obj, condition: Obj) -> None:
    """``SetDeploymentCondition``: same status and reason changes nothing; same status keeps
    the transition time."""
    current = get_condition(status, condition["type"])
    if current is not None and (current.get("status"), current.get("reason")) == (
        condition["status"],
        condition["reason"],
    ):
        return
    if current is not None and current.get("status") == condition["status"]:
        condition = {**condition, "lastTransitionTime": current.get("lastTransitionTime")}
    remove_condition(status, condition["type"])
    status.setdefault("conditions", []).append(condition)


def remove_condition(status: Obj, kind: str) -> None:
    kept = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


def has_progress_deadline(deployment: Obj) -> bool:
    deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
    return deadline is not None and int(deadline) != du.MAX_INT32


def calculate_status(
    all_rss: Sequence[Obj | None], new_rs: Obj | None, deployment: Obj, now: float
) -> Obj:
    """``calculateStatus``: counts over the ReplicaSets and the Available condition."""
    available_pods = du.available_replica_count(all_rss)
    old = deployment.get("status") or {}
    status: Obj = {
        "observedGeneration": int((deployment.get("metadata") or {}).get("generation") or 0),
        "replicas": du.actual_replica_count(all_rss),
        "updatedReplicas": du.actual_replica_count([new_rs]),
        "readyReplicas": du.ready_replica_count(all_rss),
        "availableReplicas": available_pods,
        "unavailableReplicas": max(0, du.replica_count(all_rss) - available_pods),
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = copy.deepcopy(old["conditions"])
    if available_pods >= du.replicas(deployment) - du.max_unavailable(deployment):
        condition = new_condition(
            AVAILABLE,
            "True",
            MINIMUM_REPLICAS_AVAILABLE,
            "Deployment has minimum availability.",
            now,
        )
    else:
        condition = new_condition(
            AVAILABLE,
            "False",
            MINIMUM_REPLICAS_UNAVAILABLE,
            "Deployment does not have minimum availability.",
            now,
        )
    set_condition(status, condition)
    return status


def deployment_complete(deployment: Obj, status: Obj) -> bool:
    want = du.replicas(deployment)
    generation = int((deployment.get("metadata") or {}).get("generation") or 0)
    return (
        int(status.get("updatedReplicas") or 0) == want
        and int(status.get("replicas") or 0) == want
        and int(status.get("availableReplicas") or 0) == want
        and int(status.get("observedGeneration") or 0) >= generation
    )


def deployment_progressing(deployment: Obj, status: Obj) -> bool:
    old = deployment.get("status") or {}

    def n(s: Obj, f: str) -> int:
        return int(s.get(f) or 0)

    return (
        n(status, "updatedReplicas") > n(old, "updatedReplicas")
        or n(status, "replicas") - n(status, "updatedReplicas")
        < n(old, "replicas") - n(old, "updatedReplicas")
        or n(status, "readyReplicas") > n(old, "readyReplicas")
        or n(status, "availableReplicas") > n(old, "availableReplicas")
    )


def deployment_timed_out(deployment: Obj, status: Obj, now: float) -> bool:
    if not has_progress_deadline(deployment):
        return False
    condition = get_condition(status, PROGRESSING)
    if condition is None or condition.get("reason") == NEW_RS_AVAILABLE:
        return False
    if condition.get("reason") == TIMED_OUT:
        return True
    since = parse_time(condition.get("lastUpdateTime")) or 0.0
    deadline = int((deployment.get("spec") or {}).get("progressDeadlineSeconds") or 0)
    return since + deadline < now


def rollout_status(
    deployment: Obj, all_rss: Sequence[Obj | None], new_rs: Obj | None, now: float
) -> Obj:
    """``syncRolloutStatus``'s new status: counts, Available, Progressing (complete, making
    progress, or past its deadline) and the ReplicaSets' ReplicaFailure."""
    status = calculate_status(all_rss, new_rs, deployment, now)
    name = deployment["metadata"]["name"]
    subject = f'ReplicaSet "{new_rs["metadata"]["name"]}"' if new_rs else f'Deployment "{name}"'
    if not has_progress_deadline(deployment):
        remove_condition(status, PROGRESSING)
    current = get_condition(deployment.get("status") or {}, PROGRESSING)
    complete_before = (
        status["replicas"] == status["updatedReplicas"]
        and current is not None
        and current.get("reason") == NEW_RS_AVAILABLE
    )
    if has_progress_deadline(deployment) and not complete_before:
        if deployment_complete(deployment, status):
            set_condition(
                status,
                new_condition(
                    PROGRESSING,
                    "True",
                    NEW_RS_AVAILABLE,
                    f"{subject} has successfully progressed.",
                    now,
                ),
            )
        elif deployment_progressing(deployment, status):
            condition = new_condition(
                PROGRESSING, "True", REPLICA_SET_UPDATED, f"{subject} is progressing.", now
            )
            if current is not None:
                if current.get("status") == "True":
                    condition["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(status, PROGRESSING)
            set_condition(status, condition)
        elif deployment_timed_out(deployment, status, now):
            set_condition(
                status,
                new_condition(
                    PROGRESSING, "False", TIMED_OUT, f"{subject} has timed out progressing.", now
                ),
            )
    failure = replica_failure(all_rss, new_rs)
    if failure is not None:
        set_condition(status, failure)
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def replica_failure(all_rss: Sequence[Obj | None], new_rs: Obj | None) -> Obj | None:
    """``getReplicaFailures``: the first ReplicaSet ReplicaFailure (the new one's first) as a
    Deployment condition."""
    for rs in [new_rs, *all_rss]:
        if rs is None:
            continue
        condition = get_condition(rs.get("status") or {}, REPLICA_FAILURE)
        if condition is not None:
            stamp = condition.get("lastTransitionTime")
            return {
                "type": REPLICA_FAILURE,
                "status": condition.get("status"),
                "lastUpdateTime": stamp,
                "lastTransitionTime": stamp,
                "reason": condition.get("reason"),
                "message": condition.get("message"),
            }
    return None


def requeue_after_for_deadline(deployment: Obj, status: Obj, now: float) -> float | None:
    """``requeueStuckDeployment``: when to look again for a timeout (None: no need)."""
    current = get_condition(deployment.get("status") or {}, PROGRESSING)
    if not has_progress_deadline(deployment) or current is None:
        return None
    if deployment_complete(deployment, status) or current.get("reason") == TIMED_OUT:
        return None
    since = parse_time(current.get("lastUpdateTime")) or 0.0
    deadline = int((deployment.get("spec") or {}).get("progressDeadlineSeconds") or 0)
    after = since + deadline - now
    return 0.0 if after < 1 else after + 1


def _significant(status: Obj) -> Obj:
    return {k: v for k, v in status.items() if v not in (0, None, [], {})}


def status_equal(a: Obj, b: Obj) -> bool:
    """Whether two statuses say the same, a zero count and an absent one alike (the API
    server may leave zero counts out, as Go's ``omitempty`` does)."""
    return _significant(a) == _significant(b)
