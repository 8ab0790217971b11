"""Score plugins of upstream's default profile, with its weights and integer arithmetic.

Every plugin scores each feasible node from 0 to ``MAX_NODE_SCORE`` (normalising across the
feasible nodes where upstream does), the score is multiplied by the plugin's weight, and a
node's total is the sum: upstream's ``RunScorePlugins``.

- **NodeResourcesFit** (weight 1), strategy LeastAllocated over CPU and memory (weight 1
  each): ``(allocatable - requested) * 100 / allocatable`` per resource, the weighted mean,
  all in integers; *requested* here is the node's non-zero requests plus the pod's.
- **NodeResourcesBalancedAllocation** (weight 1): ``(1 - std) * 100`` of the CPU and memory
  fractions (each capped at 1) the node would have with the pod, by actual requests. As in
  1.32: best-effort pods are scored too (1.33 skips them, kubernetes #129138).
- **TaintToleration** (weight 3): the ``PreferNoSchedule`` taints the pod's
  ``PreferNoSchedule`` (or effect-less) tolerations leave untolerated, normalised in reverse
  (fewest is best).
- **NodeAffinity** (weight 2): the summed weights of the preferred terms a node matches,
  normalised; skipped for a pod without preferred terms.

Left out: PodTopologySpread scoring (system default spreading applies only to pods owned by
Services and controllers), InterPodAffinity and ImageLocality.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from raftkube.scheduler.filters import node_selector_term_matches, tolerated
from raftkube.scheduler.nodeinfo import NodeInfo, PodInfo

Obj = dict[str, Any]

MAX_NODE_SCORE = 100
WEIGHT_TAINT_TOLERATION = 3
WEIGHT_NODE_AFFINITY = 2
WEIGHT_NODE_RESOURCES_FIT = 1
WEIGHT_BALANCED_ALLOCATION = 1


def _least_requested(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return ((capacity - requested) * MAX_NODE_SCORE) // capacity


def least_allocated(pod: PodInfo, node: NodeInfo) -> int:
    """NodeResourcesFit's score with the LeastAllocated strategy."""
    total = weights = 0
    alloc = node.allocatable
    if alloc.milli_cpu:
        total += _least_requested(node.non_zero_cpu + pod.non_zero_cpu, alloc.milli_cpu)
        weights += 1
    if alloc.memory:
        total += _least_requested(node.non_zero_memory + pod.non_zero_memory, alloc.memory)
        weights += 1
    return total // weights if weights else 0


def balanced_allocation(pod: PodInfo, node: NodeInfo) -> int:
    """NodeResourcesBalancedAllocation's score."""
    alloc, requested, want = node.allocatable, node.requested, pod.requests
    fractions = []
    if alloc.milli_cpu:
        fractions.append(min(1.0, (requested.milli_cpu + want.milli_cpu) / alloc.milli_cpu))
    if alloc.memory:
        fractions.append(min(1.0, (requested.memory + want.memory) / alloc.memory))
    std = abs((fractions[0] - fractions[1]) / 2) if len(fractions) == 2 else 0.0
    return int((1 - std) * MAX_NODE_SCORE)


def prefer_no_schedule_tolerations(spec: Obj) -> list[Obj]:
    """The tolerations TaintToleration's score considers."""
    return [
        t
        for t in spec.get("tolerations") or []
        if isinstance(t, dict) and (t.get("effect") or "") in ("", "PreferNoSchedule")
    ]


def intolerable_prefer_no_schedule(node: NodeInfo, tolerations: Sequence[Obj]) -> int:
    """TaintToleration's raw score: untolerated ``PreferNoSchedule`` taints."""
    return sum(
        1
        for taint in node.taints
        if taint.get("effect") == "PreferNoSchedule" and not tolerated(taint, tolerations)
    )


def preferred_terms(spec: Obj) -> list[tuple[int, Obj]]:
    """NodeAffinity's preferred terms with a non-zero weight."""
    affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    terms = affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []
    return [
        (int(t.get("weight") or 0), t.get("preference") or {})
        for t in terms
        if isinstance(t, dict) and t.get("weight")
    ]


def node_affinity_raw(node: NodeInfo, terms: Sequence[tuple[int, Obj]]) -> int:
    return sum(weight for weight, term in terms if node_selector_term_matches(term, node))


def default_normalize(scores: list[int], reverse: bool) -> list[int]:
    """Upstream's ``helper.DefaultNormalizeScore`` with ``MaxNodeScore``."""
    highest = max(scores, default=0)
    if highest == 0:
        return [MAX_NODE_SCORE] * len(scores) if reverse else scores
    out = [MAX_NODE_SCORE * s // highest for s in scores]
    return [MAX_NODE_SCORE - s for s in out] if reverse else out


def score_nodes(pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
    """Each node's total weighted score, in ``nodes``' order."""
    spec = pod.spec
    signature = pod.signature
    totals = []
    for node in nodes:
        score = node.score_memo.get(signature) if signature is not None else None
        if score is None:
            score = WEIGHT_NODE_RESOURCES_FIT * least_allocated(
                pod, node
            ) + WEIGHT_BALANCED_ALLOCATION * balanced_allocation(pod, node)
            if signature is not None:
                node.score_memo[signature] = score
        totals.append(score)
    if any(node.taints for node in nodes):
        tolerations = prefer_no_schedule_tolerations(spec)
        taints = [intolerable_prefer_no_schedule(node, tolerations) if node.taints else 0
                  for node in nodes]  # fmt: skip
        for i, score in enumerate(default_normalize(taints, reverse=True)):
            totals[i] += WEIGHT_TAINT_TOLERATION * score
    else:
        # No taint anywhere: every node's TaintToleration score is the same maximum.
        totals = [t + WEIGHT_TAINT_TOLERATION * MAX_NODE_SCORE for t in totals]
    terms = preferred_terms(spec)
    if terms:
        raw = [node_affinity_raw(node, terms) for node in nodes]
        for i, score in enumerate(default_normalize(raw, reverse=False)):
            totals[i] += WEIGHT_NODE_AFFINITY * score
    return totals
