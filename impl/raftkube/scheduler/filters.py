"""Filter plugins, named and worded as upstream's default profile runs them.

Each filter answers for one node whether the pod may go there: None (it may) or a
:class:`Status` with upstream's code and reasons. :func:`run_filters` runs them in upstream's
order and stops at the first rejection, as ``RunFilterPlugins`` does, so a node is reported
under one plugin only (NodeResourcesFit may give several reasons at once).

- **NodeUnschedulable**: ``spec.unschedulable`` nodes, unless the pod tolerates the
  ``node.kubernetes.io/unschedulable:NoSchedule`` taint.
- **NodeName**: a pod naming a node fits only there (the scheduler never sees such a pod, as
  it only takes pods without ``spec.nodeName``; kept so the decision is complete on its own).
- **TaintToleration**: the first ``NoSchedule``/``NoExecute`` taint no toleration tolerates.
- **NodeAffinity**: ``nodeSelector`` and ``requiredDuringSchedulingIgnoredDuringExecution``.
- **NodeResourcesFit**: the pod count against ``allocatable.pods`` (``Too many pods``), then
  CPU, memory, ephemeral storage and scalar resources against allocatable minus what the
  node's pods (bound and assumed) request (``Insufficient cpu``...).
- **PodTopologySpread**: ``whenUnsatisfiable: DoNotSchedule`` constraints (with
  ``minDomains``, ``matchLabelKeys``, ``nodeAffinityPolicy``, ``nodeTaintsPolicy``).

Left out of the default profile: NodePorts, the volume plugins, InterPodAffinity and
DynamicResources (no pod here uses host ports, volumes or claims that need them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from raftkube.controllers.controller_utils import label_selector_matches
from raftkube.scheduler.nodeinfo import NodeInfo, PodInfo

Obj = dict[str, Any]

UNSCHEDULABLE = 2
UNSCHEDULABLE_AND_UNRESOLVABLE = 3
"""Upstream's ``framework.Code`` values: Unschedulable may be cured by preemption,
UnschedulableAndUnresolvable may not."""

ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_REASON_NODE_NAME = "node(s) didn't match the requested node name"
ERR_REASON_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
ERR_REASON_TOO_MANY_PODS = "Too many pods"
ERR_REASON_SPREAD = "node(s) didn't match pod topology spread constraints"
ERR_REASON_SPREAD_LABEL = ERR_REASON_SPREAD + " (missing required label)"
TAINT_NODE_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"


@attrs.frozen
class Status:
    """A plugin's rejection: upstream's ``framework.Status`` with its code and reasons."""

    code: int
    reasons: tuple[str, ...]
    plugin: str


# --- taints and tolerations ----------------------------------------------------------------


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Upstream's ``Toleration.ToleratesTaint``."""
    effect = toleration.get("effect") or ""
    if effect and effect != (taint.get("effect") or ""):
        return False
    key = toleration.get("key") or ""
    if key and key != (taint.get("key") or ""):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerated(taint: Obj, tolerations: Sequence[Obj]) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def untolerated_taint(
    taints: Iterable[Obj], tolerations: Sequence[Obj], effects: frozenset[str]
) -> Obj | None:
    """Upstream's ``FindMatchingUntoleratedTaint``: the first taint of ``effects`` that no
    toleration tolerates."""
    for taint in taints:
        if (taint.get("effect") or "") in effects and not tolerated(taint, tolerations):
            return taint
    return None


_FILTER_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


# --- selectors -----------------------------------------------------------------------------


def _int64(text: str) -> int | None:
    try:
        value = int(text, 10)
    except ValueError:
        return None
    return value if -(2**63) <= value < 2**63 else None


def node_requirement_matches(req: Obj, value: str | None) -> bool:
    """One ``NodeSelectorRequirement`` against a label's value (None: no such label)."""
    operator = req.get("operator")
    values = req.get("values") or []
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt"):
        if value is None or len(values) != 1:
            return False
        have, want = _int64(value), _int64(str(values[0]))
        if have is None or want is None:
            return False
        return have > want if operator == "Gt" else have < want
    return False


def node_selector_term_matches(term: Obj, node: NodeInfo) -> bool:
    """A term matches when every expression and field requirement does; an empty term
    matches nothing (upstream's ``nodeSelectorTerm``)."""
    expressions = [e for e in term.get("matchExpressions") or [] if isinstance(e, dict)]
    fields = [e for e in term.get("matchFields") or [] if isinstance(e, dict)]
    if not expressions and not fields:
        return False
    for req in expressions:
        if not node_requirement_matches(req, node.labels.get(str(req.get("key") or ""))):
            return False
    for req in fields:
        value = node.name if req.get("key") == "metadata.name" else None
        if not node_requirement_matches(req, value):
            return False
    return True


@attrs.frozen
class RequiredNodeAffinity:
    """The pod's ``nodeSelector`` and required node affinity terms (upstream's
    ``nodeaffinity.RequiredNodeAffinity``)."""

    selector: Mapping[str, str]
    terms: tuple[Obj, ...] | None

    @classmethod
    def of(cls, spec: Obj) -> RequiredNodeAffinity:
        required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                    .get("requiredDuringSchedulingIgnoredDuringExecution"))  # fmt: skip
        terms = None
        if isinstance(required, dict):
            terms = tuple(t for t in required.get("nodeSelectorTerms") or [] if isinstance(t, dict))
        return cls(dict(spec.get("nodeSelector") or {}), terms)

    def matches(self, node: NodeInfo) -> bool:
        labels = node.labels
        for key, value in self.selector.items():
            if labels.get(key) != value:
                return False
        if self.terms is None:
            return True
        return any(node_selector_term_matches(term, node) for term in self.terms)


# --- topology spread -----------------------------------------------------------------------


@attrs.define
class SpreadConstraint:
    """One ``DoNotSchedule`` constraint and the matching pods counted per domain."""

    topology_key: str
    max_skew: int
    min_domains: int
    selector: Obj | None
    self_match: bool
    counts: dict[str, int] = attrs.field(factory=dict)

    def min_match(self) -> int:
        if not self.counts or len(self.counts) < self.min_domains:
            return 0
        return min(self.counts.values())


def _spread_selector(constraint: Obj, pod_labels: Mapping[str, str]) -> Obj | None:
    selector = constraint.get("labelSelector")
    if not isinstance(selector, dict):
        return None
    keys = [k for k in constraint.get("matchLabelKeys") or [] if k in pod_labels]
    if not keys:
        return selector
    extra = [{"key": k, "operator": "In", "values": [pod_labels[k]]} for k in keys]
    return {**selector, "matchExpressions": [*(selector.get("matchExpressions") or []), *extra]}


def spread_constraints(
    pod: PodInfo, affinity: RequiredNodeAffinity, nodes: Iterable[NodeInfo]
) -> list[SpreadConstraint]:
    """PodTopologySpread's PreFilter: count, per domain of every node eligible for a
    constraint, the pods of the pod's namespace that its selector matches (terminating
    pods excepted)."""
    raw = [c for c in pod.spec.get("topologySpreadConstraints") or []
           if isinstance(c, dict) and c.get("whenUnsatisfiable") == "DoNotSchedule"]  # fmt: skip
    if not raw:
        return []
    constraints: list[tuple[SpreadConstraint, Obj]] = []
    for c in raw:
        selector = _spread_selector(c, pod.labels)
        constraints.append((SpreadConstraint(
            topology_key=str(c.get("topologyKey") or ""),
            max_skew=int(c.get("maxSkew") or 1),
            min_domains=int(c.get("minDomains") or 1),
            selector=selector,
            self_match=label_selector_matches(selector, pod.labels),
        ), c))  # fmt: skip
    tolerations = pod.spec.get("tolerations") or []
    for node in nodes:
        if any(sc.topology_key not in node.labels for sc, _ in constraints):
            continue
        for sc, c in constraints:
            if c.get("nodeAffinityPolicy", "Honor") == "Honor" and not affinity.matches(node):
                continue
            if c.get("nodeTaintsPolicy", "Ignore") == "Honor" and untolerated_taint(
                node.taints, tolerations, _FILTER_EFFECTS
            ):
                continue
            domain = node.labels[sc.topology_key]
            matching = sum(
                1
                for p in node.pods.values()
                if p.namespace == pod.namespace
                and not p.terminating
                and label_selector_matches(sc.selector, p.labels)
            )
            sc.counts[domain] = sc.counts.get(domain, 0) + matching
    return [sc for sc, _ in constraints]


# --- the filters ---------------------------------------------------------------------------


@attrs.define(eq=False)
class FilterState:
    """What PreFilter computes once per pod and every node's filters read."""

    pod: PodInfo
    tolerations: list[Obj]
    affinity: RequiredNodeAffinity
    spread: list[SpreadConstraint]
    node_name: str

    @classmethod
    def of(cls, pod: PodInfo, nodes: Iterable[NodeInfo]) -> FilterState:
        spec = pod.spec
        affinity = RequiredNodeAffinity.of(spec)
        tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, dict)]
        return cls(pod, tolerations, affinity, spread_constraints(pod, affinity, nodes),
                   str(spec.get("nodeName") or ""))  # fmt: skip


def node_resources_fit(pod: PodInfo, node: NodeInfo) -> list[str]:
    """NodeResourcesFit's reasons for ``node`` (empty: it fits), upstream's ``fitsRequest``."""
    reasons: list[str] = []
    allocatable, requested, want = node.allocatable, node.requested, pod.requests
    if len(node.pods) + 1 > allocatable.allowed_pod_number:
        reasons.append(ERR_REASON_TOO_MANY_PODS)
    if not (want.milli_cpu or want.memory or want.ephemeral_storage or want.scalar):
        return reasons
    if want.milli_cpu > 0 and want.milli_cpu > allocatable.milli_cpu - requested.milli_cpu:
        reasons.append("Insufficient cpu")
    if want.memory > 0 and want.memory > allocatable.memory - requested.memory:
        reasons.append("Insufficient memory")
    if want.ephemeral_storage > 0 and (
        want.ephemeral_storage > allocatable.ephemeral_storage - requested.ephemeral_storage
    ):
        reasons.append("Insufficient ephemeral-storage")
    for name, amount in want.scalar.items():
        free = allocatable.scalar.get(name, 0) - requested.scalar.get(name, 0)
        if amount > 0 and amount > free:
            reasons.append(f"Insufficient {name}")
    return reasons


def pod_topology_spread(state: FilterState, node: NodeInfo) -> Status | None:
    for sc in state.spread:
        domain = node.labels.get(sc.topology_key)
        if domain is None:
            return Status(UNSCHEDULABLE_AND_UNRESOLVABLE, (ERR_REASON_SPREAD_LABEL,),
                          "PodTopologySpread")  # fmt: skip
        skew = sc.counts.get(domain, 0) + (1 if sc.self_match else 0) - sc.min_match()
        if skew > sc.max_skew:
            return Status(UNSCHEDULABLE, (ERR_REASON_SPREAD,), "PodTopologySpread")
    return None


_UNSCHEDULABLE_TAINT = {"key": TAINT_NODE_UNSCHEDULABLE, "effect": "NoSchedule"}


def run_filters(state: FilterState, node: NodeInfo) -> Status | None:
    """Every filter in upstream's order; the first rejection, or None if ``node`` fits."""
    if node.unschedulable and not tolerated(_UNSCHEDULABLE_TAINT, state.tolerations):
        return Status(UNSCHEDULABLE_AND_UNRESOLVABLE, (ERR_REASON_UNSCHEDULABLE,),
                      "NodeUnschedulable")  # fmt: skip
    if state.node_name and state.node_name != node.name:
        return Status(UNSCHEDULABLE_AND_UNRESOLVABLE, (ERR_REASON_NODE_NAME,), "NodeName")
    if node.taints:
        taint = untolerated_taint(node.taints, state.tolerations, _FILTER_EFFECTS)
        if taint is not None:
            reason = (f"node(s) had untolerated taint "
                      f"{{{taint.get('key') or ''}: {taint.get('value') or ''}}}")  # fmt: skip
            return Status(UNSCHEDULABLE_AND_UNRESOLVABLE, (reason,), "TaintToleration")
    affinity = state.affinity
    if (affinity.selector or affinity.terms is not None) and not affinity.matches(node):
        return Status(UNSCHEDULABLE_AND_UNRESOLVABLE, (ERR_REASON_NODE_AFFINITY,),
                      "NodeAffinity")  # fmt: skip
    reasons = node_resources_fit(state.pod, node)
    if reasons:
        return Status(UNSCHEDULABLE, tuple(reasons), "NodeResourcesFit")
    if state.spread:
        return pod_topology_spread(state, node)
    return None
