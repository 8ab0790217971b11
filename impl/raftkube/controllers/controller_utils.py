"""What the workload controllers share: upstream's ``pkg/controller/controller_utils.go`` and
``controller_ref_manager.go`` as plain functions of objects, plus the few calls that write.

- pod state: :func:`is_pod_active`, :func:`is_pod_ready`, :func:`is_pod_available` (ready for
  ``minReadySeconds``, judged by the Ready condition's ``lastTransitionTime``);
- labels: :func:`label_selector_matches` and :func:`selects` (a non-empty selector matches);
- owner references: :func:`controller_ref_of` (``metav1.GetControllerOf``) and
  :func:`new_controller_ref` (claiming is :mod:`.ref_manager`'s);
- which pods to delete first: :func:`pods_to_delete` with upstream's ranking
  (``ActivePodsWithRanks``, LogarithmicScaleDown and PodDeletionCost on, as by default);
- creating many things without flooding the server: :func:`slow_start_batch`;
- :class:`PodControl`: create pods from a template and delete them, recording the Events
  upstream's ``RealPodControl`` records.
"""

from __future__ import annotations

import copy
import datetime
import functools
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs
import trio

from raftkube.controllers.events import NORMAL, WARNING, EventRecorder
from raftkube.controllers.resources import resource
from raftkube.controllers.store import meta_namespace_key
from raftkube.kubeclient import KubeAPIError, KubeClient

Obj = dict[str, Any]

PODS = resource("", "v1", "pods")

POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
SLOW_START_INITIAL_BATCH_SIZE = 1
NAMESPACE_TERMINATING_CAUSE = "NamespaceTerminating"

SUCCESSFUL_CREATE = "SuccessfulCreate"
FAILED_CREATE = "FailedCreate"
SUCCESSFUL_DELETE = "SuccessfulDelete"
FAILED_DELETE = "FailedDelete"

_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


# --- time and labels ---------------------------------------------------------------------------


def parse_time(text: Any) -> float | None:
    """An RFC 3339 timestamp as seconds since the epoch (None when absent or unreadable)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def rfc3339(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(int(seconds), datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def labels_of(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def label_selector_matches(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """``metav1.LabelSelectorAsSelector(selector).Matches(labels)``: None selects nothing and
    an empty selector everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for req in selector.get("matchExpressions") or []:
        value = labels.get(str(req.get("key") or ""))
        operator, values = req.get("operator"), req.get("values") or []
        if operator == "In" and (value is None or value not in values):
            return False
        if operator == "NotIn" and value is not None and value in values:
            return False
        if operator == "Exists" and value is None:
            return False
        if operator == "DoesNotExist" and value is not None:
            return False
    return True


def selects(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """Whether a non-empty ``selector`` matches ``labels``: an empty one claims nothing, as
    upstream's controllers skip a selector that is ``Empty()``."""
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return False
    return label_selector_matches(selector, labels)


def is_being_deleted(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


# --- pods ----------------------------------------------------------------------------------------


def is_pod_active(pod: Obj) -> bool:
    """``controller.IsPodActive``: not finished and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not is_being_deleted(pod)


def pod_ready_condition(pod: Obj) -> Obj | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            return condition
    return None


def is_pod_ready(pod: Obj) -> bool:
    condition = pod_ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def is_pod_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """``podutil.IsPodAvailable``: ready, and for more than ``min_ready_seconds``."""
    condition = pod_ready_condition(pod)
    if condition is None or condition.get("status") != "True":
        return False
    if min_ready_seconds == 0:
        return True
    since = parse_time(condition.get("lastTransitionTime"))
    return since is not None and since + min_ready_seconds < now


def pod_key(pod: Obj) -> str:
    """``controller.PodKey``: ``namespace/name``."""
    return meta_namespace_key(pod)


# --- owner references ------------------------------------------------------------------------


def controller_ref_of(obj: Obj) -> Obj | None:
    """``metav1.GetControllerOf``: the owner reference with ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def new_controller_ref(owner: Obj) -> Obj:
    """``metav1.NewControllerRef``: controller and blocking the owner's foreground deletion."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_from_template(template: Obj, owner: Obj, ref: Obj) -> Obj:
    """``GetPodFromTemplate``: the template's labels, annotations, finalizers and spec, named
    ``{owner}-`` plus a suffix the server generates, owned through ``ref``."""
    meta = template.get("metadata") or {}
    pod_meta: Obj = {"generateName": f"{owner['metadata']['name']}-", "ownerReferences": [ref]}
    for field in ("labels", "annotations", "finalizers"):
        if meta.get(field):
            pod_meta[field] = copy.deepcopy(meta[field])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


# --- which pods go first -------------------------------------------------------------------------


def _deletion_cost(pod: Obj) -> int:
    text = ((pod.get("metadata") or {}).get("annotations") or {}).get(POD_DELETION_COST)
    try:
        return int(text) if text is not None else 0
    except ValueError:
        return 0


def _max_restarts(pod: Obj) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def _log_rank(then: float, now: float) -> int:
    """``logarithmicRankDiff``'s per-pod term: log2 of the age in nanoseconds, -1 if none."""
    age = (now - then) * 1e9
    return int(math.log2(age)) if age > 0 else -1


def _compare_times(t1: float | None, t2: float | None, now: float, uid1: str, uid2: str) -> int:
    """Negative when the first pod should go first: the younger (by powers of two), unknown
    times first; equal ranks fall back to the uid (upstream's LogarithmicScaleDown)."""
    if t1 is None or t2 is None:
        return -1 if t1 is None and t2 is not None else (1 if t2 is None and t1 is not None else 0)
    diff = _log_rank(t1, now) - _log_rank(t2, now)
    if diff == 0:
        return -1 if uid1 < uid2 else (1 if uid1 > uid2 else 0)
    return -1 if diff < 0 else 1


def compare_for_deletion(a: Obj, rank_a: int, b: Obj, rank_b: int, now: float) -> int:
    """``ActivePodsWithRanks.Less`` as a three-way comparison (negative: ``a`` goes first):
    unscheduled, then Pending < Unknown < Running, not ready, lower deletion cost, more pods
    of the same family on its node, ready for less time, more restarts, younger."""
    node_a, node_b = (a.get("spec") or {}).get("nodeName"), (b.get("spec") or {}).get("nodeName")
    if node_a != node_b and (not node_a or not node_b):
        return -1 if not node_a else 1
    phase_a = _PHASE_ORDINAL.get((a.get("status") or {}).get("phase") or "", 0)
    phase_b = _PHASE_ORDINAL.get((b.get("status") or {}).get("phase") or "", 0)
    if phase_a != phase_b:
        return -1 if phase_a < phase_b else 1
    ready_a, ready_b = is_pod_ready(a), is_pod_ready(b)
    if ready_a != ready_b:
        return -1 if not ready_a else 1
    cost_a, cost_b = _deletion_cost(a), _deletion_cost(b)
    if cost_a != cost_b:
        return -1 if cost_a < cost_b else 1
    if rank_a != rank_b:
        return -1 if rank_a > rank_b else 1
    uid_a, uid_b = str(a["metadata"].get("uid") or ""), str(b["metadata"].get("uid") or "")
    if ready_a and ready_b:
        since_a = parse_time((pod_ready_condition(a) or {}).get("lastTransitionTime"))
        since_b = parse_time((pod_ready_condition(b) or {}).get("lastTransitionTime"))
        if since_a != since_b:
            verdict = _compare_times(since_a, since_b, now, uid_a, uid_b)
            if verdict:
                return verdict
    restarts_a, restarts_b = _max_restarts(a), _max_restarts(b)
    if restarts_a != restarts_b:
        return -1 if restarts_a > restarts_b else 1
    created_a = parse_time(a["metadata"].get("creationTimestamp"))
    created_b = parse_time(b["metadata"].get("creationTimestamp"))
    if created_a != created_b:
        return _compare_times(created_a, created_b, now, uid_a, uid_b)
    return 0


def pods_to_delete(pods: Sequence[Obj], related: Sequence[Obj], diff: int, now: float) -> list[Obj]:
    """``getPodsToDelete``: the first ``diff`` of ``pods`` in deletion order, where a pod's
    rank is how many active ``related`` pods (its owner's family) share its node."""
    on_node: dict[str, int] = {}
    for pod in related:
        if is_pod_active(pod):
            node = (pod.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    ranked = [(pod, on_node.get((pod.get("spec") or {}).get("nodeName") or "", 0)) for pod in pods]

    def order(x: tuple[Obj, int], y: tuple[Obj, int]) -> int:
        return compare_for_deletion(x[0], x[1], y[0], y[1], now)

    if diff < len(pods):
        ranked.sort(key=functools.cmp_to_key(order))
    return [pod for pod, _ in ranked[:diff]]


# --- writing -------------------------------------------------------------------------------------


async def _collect_failure(fn: Callable[[], Awaitable[None]], failures: list[Exception]) -> None:
    try:
        await fn()
    except Exception as exc:
        failures.append(exc)


async def slow_start_batch(
    count: int, initial_batch_size: int, fn: Callable[[], Awaitable[None]]
) -> tuple[int, BaseException | None]:
    """``slowStartBatch``: call ``fn`` ``count`` times in batches of 1, 2, 4... concurrently,
    stopping after the first batch with a failure, so a call that fails for all (quota, a
    refused template) fails once rather than ``count`` times. Returns the successes and the
    first failure."""
    remaining, successes = count, 0
    batch = min(remaining, initial_batch_size)
    while batch > 0:
        failures: list[Exception] = []
        async with trio.open_nursery() as nursery:
            for _ in range(batch):
                nursery.start_soon(_collect_failure, fn, failures)
        successes += batch - len(failures)
        if failures:
            return successes, failures[0]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None


def error_text(exc: BaseException) -> str:
    """What Go's ``err.Error()`` shows: an API error's message, else the exception's text."""
    return exc.message if isinstance(exc, KubeAPIError) else str(exc)


def has_status_cause(exc: KubeAPIError, cause_type: str) -> bool:
    """client-go's ``HasStatusCause``."""
    causes = (exc.status.get("details") or {}).get("causes") or []
    return any(isinstance(c, dict) and c.get("type") == cause_type for c in causes)


@attrs.define
class PodControl:
    """upstream's ``RealPodControl``: pod writes that record an Event on the owner."""

    client: KubeClient
    recorder: EventRecorder

    async def create_pods(self, namespace: str, template: Obj, owner: Obj, ref: Obj) -> Obj:
        pod = pod_from_template(template, owner, ref)
        if not (pod["metadata"].get("labels") or {}):
            raise ValueError("unable to create pods, no labels")
        try:
            created = await self.client.create(PODS, pod, namespace=namespace)
        except KubeAPIError as exc:
            if not has_status_cause(exc, NAMESPACE_TERMINATING_CAUSE):
                message = f"Error creating: {error_text(exc)}"
                await self.recorder.event(owner, WARNING, FAILED_CREATE, message)
            raise
        name = created["metadata"]["name"]
        await self.recorder.event(owner, NORMAL, SUCCESSFUL_CREATE, f"Created pod: {name}")
        return created

    async def delete_pod(self, namespace: str, name: str, owner: Obj) -> None:
        try:
            await self.client.delete(PODS, name, namespace=namespace)
        except KubeAPIError as exc:
            if exc.code != 404:
                message = f"Error deleting: {error_text(exc)}"
                await self.recorder.event(owner, WARNING, FAILED_DELETE, message)
            raise
        await self.recorder.event(owner, NORMAL, SUCCESSFUL_DELETE, f"Deleted pod: {name}")

    async def patch_pod(self, namespace: str, name: str, patch: Obj) -> Obj:
        return await self.client.patch(PODS, name, patch, namespace=namespace)
