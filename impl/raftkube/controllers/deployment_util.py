"""The Deployment controller's arithmetic and bookkeeping as plain functions: upstream's
``pkg/controller/deployment/util`` and the decisions of ``rolling.go``, ``recreate.go`` and
``sync.go`` that do not write (the status and conditions are :mod:`.deployment_progress`'s).

Objects are JSON dicts; a ReplicaSet's ``spec.replicas`` is read with :func:`replicas`.
Percentages resolve as ``intstr.GetScaledValueFromIntOrPercent``: maxSurge rounds up,
maxUnavailable rounds down, and if both come to zero maxUnavailable becomes 1.

Simplified: the pod-template hash is FNV-32a over the template's canonical JSON (upstream hashes
Go's printed form of the struct, so the names differ from a real cluster's, in the same
``SafeEncodeString`` alphabet).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Sequence
from typing import Any

from raftkube.controllers.controller_utils import controller_ref_of, new_controller_ref, parse_time

Obj = dict[str, Any]

POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
MAX_REVISION_HISTORY_CHARS = 2000
MAX_INT32 = 2**31 - 1


_SKIP_COPY = frozenset(
    {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO}
)
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


# --- numbers -------------------------------------------------------------------------------------


def replicas(obj: Obj | None) -> int:
    """``*spec.replicas`` (a Deployment or ReplicaSet; 0 for none)."""
    if obj is None:
        return 0
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def status_int(obj: Obj | None, field: str) -> int:
    return int(((obj or {}).get("status") or {}).get(field) or 0)


def scaled_value(value: Any, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        return int(text)
    percent = int(text[:-1])
    exact = percent * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def is_rolling_update(deployment: Obj) -> bool:
    strategy = (deployment.get("spec") or {}).get("strategy") or {}
    return (strategy.get("type") or "RollingUpdate") == "RollingUpdate"


def _rolling(deployment: Obj) -> Obj:
    strategy = (deployment.get("spec") or {}).get("strategy") or {}
    return strategy.get("rollingUpdate") or {}


def resolve_fenceposts(deployment: Obj) -> tuple[int, int]:
    """``ResolveFenceposts``: (maxSurge, maxUnavailable) as numbers of pods."""
    desired = replicas(deployment)
    rolling = _rolling(deployment)
    surge = scaled_value(rolling.get("maxSurge", 0), desired, True)
    unavailable = scaled_value(rolling.get("maxUnavailable", 0), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # rounding made both zero: allow one, as upstream does
    return surge, unavailable


def max_surge(deployment: Obj) -> int:
    return resolve_fenceposts(deployment)[0] if is_rolling_update(deployment) else 0


def max_unavailable(deployment: Obj) -> int:
    if not is_rolling_update(deployment) or replicas(deployment) == 0:
        return 0
    return min(resolve_fenceposts(deployment)[1], replicas(deployment))


def replica_count(rss: Sequence[Obj | None]) -> int:
    """``GetReplicaCountForReplicaSets``: the sum of ``spec.replicas``."""
    return sum(replicas(rs) for rs in rss if rs is not None)


def actual_replica_count(rss: Sequence[Obj | None]) -> int:
    return sum(status_int(rs, "replicas") for rs in rss if rs is not None)


def ready_replica_count(rss: Sequence[Obj | None]) -> int:
    return sum(status_int(rs, "readyReplicas") for rs in rss if rs is not None)


def available_replica_count(rss: Sequence[Obj | None]) -> int:
    return sum(status_int(rs, "availableReplicas") for rs in rss if rs is not None)


def active(rss: Sequence[Obj | None]) -> list[Obj]:
    """``FilterActiveReplicaSets``: those asked for at least one pod."""
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def new_rs_new_replicas(deployment: Obj, all_rss: Sequence[Obj | None], new_rs: Obj) -> int:
    """``NewRSNewReplicas``: how far the new ReplicaSet may grow now."""
    if not is_rolling_update(deployment):
        return replicas(deployment)
    surge = scaled_value(_rolling(deployment).get("maxSurge", 0), replicas(deployment), True)
    most = replicas(deployment) + surge
    current = replica_count(all_rss)
    if current >= most:
        return replicas(new_rs)
    grow = min(most - current, replicas(deployment) - replicas(new_rs))
    return replicas(new_rs) + grow


def max_scaled_down(deployment: Obj, all_rss: Sequence[Obj | None], new_rs: Obj) -> int:
    """``reconcileOldReplicaSets``' bound on how many old pods may go now."""
    min_available = replicas(deployment) - max_unavailable(deployment)
    new_unavailable = replicas(new_rs) - status_int(new_rs, "availableReplicas")
    return replica_count(all_rss) - min_available - new_unavailable


def cleanup_unhealthy_plan(old_rss: Sequence[Obj], limit: int) -> list[tuple[Obj, int]]:
    """``cleanupUnhealthyReplicas``: old ReplicaSets (oldest first) scaled down by their
    unavailable pods, at most ``limit`` in all; (ReplicaSet, new size) pairs. Raises
    ValueError for a ReplicaSet whose status shows more available pods than it asks for."""
    plan: list[tuple[Obj, int]] = []
    done = 0
    for rs in sorted(old_rss, key=created_key):
        if done >= limit:
            break
        size, available_pods = replicas(rs), status_int(rs, "availableReplicas")
        if size == 0 or size == available_pods:
            continue
        down = min(limit - done, size - available_pods)
        if down < 0:
            # Its status counts more available pods than it asks for (it is being scaled
            # down and its status lags): refuse, as upstream does, rather than scale it up.
            meta = rs.get("metadata") or {}
            raise ValueError(
                "when cleaning up unhealthy replicas, got invalid request to scale down "
                f"{meta.get('namespace')}/{meta.get('name')} {size} -> {size - down}"
            )
        plan.append((rs, size - down))
        done += down
    return plan


def scale_down_old_plan(
    deployment: Obj, all_rss: Sequence[Obj | None], old_rss: Sequence[Obj]
) -> list[tuple[Obj, int]]:
    """``scaleDownOldReplicaSetsForRollingUpdate``: old ReplicaSets (oldest first) scaled down
    by as many available pods as exceed the minimum availability."""
    min_available = replicas(deployment) - max_unavailable(deployment)
    available_pods = available_replica_count(all_rss)
    if available_pods <= min_available:
        return []
    total = available_pods - min_available
    plan: list[tuple[Obj, int]] = []
    done = 0
    for rs in sorted(old_rss, key=created_key):
        if done >= total:
            break
        if replicas(rs) == 0:
            continue
        down = min(replicas(rs), total - done)
        plan.append((rs, replicas(rs) - down))
        done += down
    return plan


def created_key(rs: Obj) -> tuple[float, str]:
    """``ReplicaSetsByCreationTimestamp``: older first, then by name."""
    meta = rs.get("metadata") or {}
    return parse_time(meta.get("creationTimestamp")) or 0.0, str(meta.get("name") or "")


def _go_round(value: float) -> int:
    """Go's ``math.Round``: halves away from zero."""
    return math.floor(abs(value) + 0.5) * (1 if value >= 0 else -1)


def annotation_int(rs: Obj, key: str) -> int | None:
    text = ((rs.get("metadata") or {}).get("annotations") or {}).get(key)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def proportion(rs: Obj, deployment: Obj, to_add: int, added: int) -> int:
    """``GetProportion``: this ReplicaSet's share of a scaling of ``to_add`` replicas, of which
    ``added`` are already given out."""
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    if replicas(deployment) == 0:
        fraction = -replicas(rs)
    else:
        most = replicas(deployment) + max_surge(deployment)
        before = annotation_int(rs, MAX_REPLICAS) or 0
        if before == 0:
            before = status_int(deployment, "replicas")
        fraction = _go_round(replicas(rs) * most / before) - replicas(rs) if before else 0
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def proportional_sizes(
    deployment: Obj, new_rs: Obj | None, old_rss: Sequence[Obj]
) -> list[tuple[Obj, int]]:
    """``scale``'s rolling-update case: every active ReplicaSet's new size when the Deployment
    is resized mid-rollout, shares in proportion, leftovers to the largest."""
    all_active = active([*old_rss, new_rs])
    allowed = replicas(deployment) + max_surge(deployment) if replicas(deployment) > 0 else 0
    to_add = allowed - replica_count(all_active)
    if to_add > 0:  # by size, newer first among equals
        all_active.sort(key=created_key, reverse=True)
        all_active.sort(key=lambda rs: -replicas(rs))
    elif to_add < 0:  # by size, older first among equals
        all_active.sort(key=created_key)
        all_active.sort(key=lambda rs: -replicas(rs))
    sizes: list[tuple[Obj, int]] = []
    added = 0
    for rs in all_active:
        share = proportion(rs, deployment, to_add, added) if to_add else 0
        sizes.append((rs, replicas(rs) + share))
        added += share
    if sizes and to_add:
        first, size = sizes[0]
        sizes[0] = (first, max(0, size + to_add - added))
    return sizes


# --- templates, hashes and revisions -------------------------------------------------------------


def _fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def compute_hash(template: Obj, collision_count: int | None) -> str:
    """``controller.ComputeHash`` (see the module docstring for how it departs)."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += collision_count.to_bytes(4, "little")
    digits = str(_fnv32a(data))
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in digits)


def without_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
        if not labels:
            t["metadata"].pop("labels")
    return t


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    """``EqualIgnoreHash``: the templates are equal but for the ``pod-template-hash`` label."""
    return without_hash(a) == without_hash(b)


def template_of(obj: Obj) -> Obj:
    return (obj.get("spec") or {}).get("template") or {}


def find_new_replica_set(deployment: Obj, rss: Sequence[Obj]) -> Obj | None:
    """``FindNewReplicaSet``: the oldest ReplicaSet whose template is the Deployment's."""
    for rs in sorted(rss, key=created_key):
        if equal_ignore_hash(template_of(rs), template_of(deployment)):
            return rs
    return None


def revision(rs: Obj) -> int:
    return annotation_int(rs, REVISION) or 0


def max_revision(rss: Sequence[Obj]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def set_replicas_annotations(rs: Obj, desired: int, most: int) -> bool:
    annotations = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(most))):
        if annotations.get(key) != value:
            annotations[key] = value
            changed = True
    return changed


def replicas_annotations_need_update(rs: Obj, desired: int, most: int) -> bool:
    annotations = (rs.get("metadata") or {}).get("annotations") or {}
    return annotations.get(DESIRED_REPLICAS) != str(desired) or annotations.get(
        MAX_REPLICAS
    ) != str(most)


def set_new_replica_set_annotations(
    deployment: Obj, rs: Obj, new_revision: int, exists: bool
) -> bool:
    """``SetNewReplicaSetAnnotations``: the Deployment's own annotations copied, the revision
    raised to ``new_revision`` (the old one kept in the revision history), and for a new
    ReplicaSet the replicas annotations; whether anything changed."""
    annotations = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for key, value in ((deployment.get("metadata") or {}).get("annotations") or {}).items():
        if key not in _SKIP_COPY and annotations.get(key) != value:
            annotations[key] = value
            changed = True
    old_text = annotations.get(REVISION)
    try:
        old = int(old_text) if old_text is not None else 0
    except ValueError:
        return changed
    if old < new_revision:
        annotations[REVISION] = str(new_revision)
        changed = True
        if old_text is not None:
            history = annotations.get(REVISION_HISTORY, "")
            kept = history.split(",") if history else []
            total = len(history) + len(old_text) + 1
            while kept and total > MAX_REVISION_HISTORY_CHARS:
                total -= len(kept.pop(0)) + 1
            if total <= MAX_REVISION_HISTORY_CHARS:
                annotations[REVISION_HISTORY] = ",".join([*kept, old_text])
    desired = replicas(deployment)
    if not exists and set_replicas_annotations(rs, desired, desired + max_surge(deployment)):
        changed = True
    return changed


def cleanup_candidates(deployment: Obj, old_rss: Sequence[Obj]) -> list[Obj]:
    """``cleanupDeployment``: the old ReplicaSets beyond ``revisionHistoryLimit`` (lowest
    revisions first) that are empty, settled and not already being deleted."""
    limit = (deployment.get("spec") or {}).get("revisionHistoryLimit")
    if limit is None:
        return []
    alive = [rs for rs in old_rss if not (rs.get("metadata") or {}).get("deletionTimestamp")]
    excess = len(alive) - int(limit)
    if excess <= 0:
        return []
    alive.sort(key=created_key)
    alive.sort(key=revision)
    return [
        rs
        for rs in alive[:excess]
        if status_int(rs, "replicas") == 0
        and replicas(rs) == 0
        and int(rs["metadata"].get("generation") or 0) <= status_int(rs, "observedGeneration")
    ]


def new_replica_set(deployment: Obj, old_rss: Sequence[Obj]) -> Obj:
    """The new ReplicaSet ``getNewReplicaSet`` creates: named by the template's hash, sized by
    :func:`new_rs_new_replicas`, annotated with the next revision."""
    spec = deployment.get("spec") or {}
    collisions = (deployment.get("status") or {}).get("collisionCount")
    template = copy.deepcopy(spec.get("template") or {})
    pod_hash = compute_hash(template, collisions)
    template.setdefault("metadata", {}).setdefault("labels", {})[POD_TEMPLATE_HASH] = pod_hash
    selector = copy.deepcopy(spec.get("selector") or {})
    selector.setdefault("matchLabels", {})[POD_TEMPLATE_HASH] = pod_hash
    meta = deployment["metadata"]
    rs: Obj = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta['name']}-{pod_hash}",
            "namespace": meta.get("namespace") or "",
            "ownerReferences": [new_controller_ref(deployment)],
            "labels": dict(template["metadata"]["labels"]),
        },
        "spec": {
            "replicas": 0,
            "minReadySeconds": int(spec.get("minReadySeconds") or 0),
            "selector": selector,
            "template": template,
        },
    }
    rs["spec"]["replicas"] = new_rs_new_replicas(deployment, [*old_rss, rs], rs)
    set_new_replica_set_annotations(deployment, rs, max_revision(old_rss) + 1, False)
    return rs


def is_saturated(deployment: Obj, rs: Obj) -> bool:
    """``IsSaturated``: the new ReplicaSet asks for, was sized for and has every pod."""
    return (
        replicas(rs) == replicas(deployment)
        and annotation_int(rs, DESIRED_REPLICAS) == replicas(deployment)
        and status_int(rs, "availableReplicas") == replicas(deployment)
    )


def old_pods_running(old_rss: Sequence[Obj], pods: Sequence[Obj]) -> bool:
    """``oldPodsRunning``: an old ReplicaSet reports pods, or one of ``pods`` (the namespace's)
    controlled by an old ReplicaSet has not finished: Recreate waits for them."""
    if actual_replica_count(old_rss) > 0:
        return True
    old_uids = {rs["metadata"]["uid"] for rs in old_rss}
    for pod in pods:
        ref = controller_ref_of(pod)
        finished = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if ref is not None and ref.get("uid") in old_uids and not finished:
            return True
    return False
