"""One scheduling decision: upstream's ``schedulePod`` as a plain function.

:func:`schedule_pod` takes the pod, the nodes in the cache's order (with the pods bound *and
assumed* on them), the index to start the walk at and a random source, and returns a
:class:`Decision`: the chosen node, or the :class:`FitError` saying why none fits, and the
index the next decision starts at. Nothing else is read, so the same inputs always give the
same decision, and a checker can ask what the spec allows from the same view.

1. **Filter** (``findNodesThatFitPod``): walk the nodes round-robin from the start index and
   stop once ``num_feasible_nodes_to_find`` nodes fit (upstream's adaptive
   percentageOfNodesToScore: all nodes below 100, 50% minus 1% per 125 nodes above, never
   below 5% or 100 nodes); the next decision starts after the last node looked at.
2. **Score** the feasible nodes (:mod:`.scores`); a lone feasible node is taken unscored.
3. **Select** the best total; among ``k`` tied nodes the one at ``rng.randrange(k)`` in walk
   order. Upstream's ``selectHost`` samples a reservoir (one ``rand.Intn`` per further tie):
   the same uniform choice, drawn with one random number instead of ``k - 1``.

When no node fits, the message is upstream's ``FitError``: ``0/N nodes are available:`` and
a sorted histogram of the filters' reasons, then what preemption concluded
(``preemption: 0/N nodes are available: ...`` ending in upstream's double period). This
scheduler never evicts: the preemption part is upstream's dry run (nodes rejected for an
unresolvable reason are "not helpful", nodes without lower-priority pods have "no victims",
the others are filtered again without their lower-priority pods, ignoring
PodDisruptionBudgets and leaving the topology spread counts as they were);
if some node would fit after evictions, upstream would preempt and its message then has no
preemption part, which is what is reported here (with no eviction).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import attrs

from raftkube.scheduler.filters import (
    UNSCHEDULABLE_AND_UNRESOLVABLE,
    FilterState,
    Status,
    run_filters,
)
from raftkube.scheduler.nodeinfo import NodeInfo, PodInfo
from raftkube.scheduler.scores import score_nodes

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
BASE_PERCENTAGE_OF_NODES_TO_SCORE = 50
NO_NODES_AVAILABLE = "no nodes available to schedule pods"
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
PREEMPT_NEVER = "not eligible due to preemptionPolicy=Never."
_UNKNOWN: Any = object()


def num_feasible_nodes_to_find(num_all_nodes: int, percentage: int = 0) -> int:
    """How many feasible nodes to find before scoring (upstream's
    ``numFeasibleNodesToFind``; ``percentage`` 0 is the adaptive default)."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    if percentage == 0:
        percentage = BASE_PERCENTAGE_OF_NODES_TO_SCORE - num_all_nodes // 125
        percentage = max(percentage, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    if percentage >= 100:
        return num_all_nodes
    return max(num_all_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


def fit_message(num_all_nodes: int, reasons: Counter[str]) -> str:
    """``0/N nodes are available: <count> <reason>, ....`` with the reasons sorted as strings
    (count first), as upstream's ``FitError.Error`` before its PostFilter part."""
    message = f"0/{num_all_nodes} nodes are available:"
    histogram = sorted(f"{count} {reason}" for reason, count in reasons.items())
    if histogram:
        message += f" {', '.join(histogram)}."
    return message


@attrs.frozen
class FitError:
    """No node fits: the filters' verdict per node and what preemption concluded."""

    num_all_nodes: int
    node_to_status: dict[str, Status]
    post_filter_message: str = ""
    error: str = ""
    """Set instead of the statuses when there was nothing to filter (no nodes at all)."""

    def message(self) -> str:
        if self.error:
            return self.error
        reasons: Counter[str] = Counter()
        for status in self.node_to_status.values():
            reasons.update(status.reasons)
        message = fit_message(self.num_all_nodes, reasons)
        if self.post_filter_message:
            message += f" {self.post_filter_message}."
        return message


@attrs.frozen
class Decision:
    """The outcome of :func:`schedule_pod`: ``node`` or ``error``, and the next start."""

    node: str | None
    error: FitError | None
    next_start_index: int
    evaluated_nodes: int
    feasible_nodes: int


def select_host(names: Sequence[str], scores: Sequence[int], rng: random.Random) -> str:
    """The best-scored name; a tie is broken uniformly by one draw of ``rng``."""
    best = max(scores)
    ties = [name for name, score in zip(names, scores, strict=True) if score == best]
    return ties[0] if len(ties) == 1 else ties[rng.randrange(len(ties))]


def _without_lower_priority(node: NodeInfo, priority: int) -> NodeInfo | None:
    """``node`` as it would be with every pod of lower priority evicted; None if it has
    none."""
    victims = [p for p in node.pods.values() if p.priority < priority]
    if not victims:
        return None
    trial = NodeInfo(node.name, node.node, node.allocatable, labels=node.labels,
                     taints=node.taints, unschedulable=node.unschedulable)  # fmt: skip
    for info in node.pods.values():
        if info.priority >= priority:
            trial.add_pod(info)
    return trial


def preemption_message(
    state: FilterState, nodes: Sequence[NodeInfo], statuses: dict[str, Status]
) -> str:
    """What upstream's DefaultPreemption PostFilter reports; "" when it would preempt."""
    pod = state.pod
    if pod.spec.get("preemptionPolicy") == "Never":
        return f"preemption: {PREEMPT_NEVER}"
    reasons: Counter[str] = Counter()
    for node in nodes:
        status = statuses[node.name]
        if status.code == UNSCHEDULABLE_AND_UNRESOLVABLE:
            reasons[PREEMPTION_NOT_HELPFUL] += 1
            continue
        trial = _without_lower_priority(node, pod.priority)
        if trial is None:
            reasons[NO_VICTIMS] += 1
            continue
        after = run_filters(state, trial)
        if after is None:
            return ""
        reasons.update(after.reasons)
    return f"preemption: {fit_message(len(nodes), reasons)}"


def schedule_pod(
    pod: PodInfo,
    nodes: Sequence[NodeInfo],
    start_index: int,
    rng: random.Random,
    percentage_of_nodes_to_score: int = 0,
) -> Decision:
    """See the module docstring."""
    count = len(nodes)
    if count == 0:
        return Decision(None, FitError(0, {}, error=NO_NODES_AVAILABLE), start_index, 0, 0)
    start_index %= count
    to_find = num_feasible_nodes_to_find(count, percentage_of_nodes_to_score)
    state = FilterState.of(pod, nodes)
    feasible: list[NodeInfo] = []
    statuses: dict[str, Status] = {}
    signature = pod.signature
    for node in [*nodes[start_index:], *nodes[:start_index]]:
        if signature is None:
            status = run_filters(state, node)
        else:
            memo = node.filter_memo
            status = memo.get(signature, _UNKNOWN)
            if status is _UNKNOWN:
                status = memo[signature] = run_filters(state, node)
        if status is None:
            feasible.append(node)
            if len(feasible) >= to_find:
                break
        else:
            statuses[node.name] = status
    processed = len(feasible) + len(statuses)
    next_start = (start_index + processed) % count
    if not feasible:
        post = preemption_message(state, nodes, statuses)
        return Decision(None, FitError(count, statuses, post), next_start, processed, 0)
    if len(feasible) == 1:
        return Decision(feasible[0].name, None, next_start, processed, 1)
    scores = score_nodes(pod, feasible)
    chosen = select_host([n.name for n in feasible], scores, rng)
    return Decision(chosen, None, next_start, processed, len(feasible))
