"""``NoTaintingInFullDisruption`` on the real Nodes: once every node has looked down for long
enough, the node lifecycle controller adds no NoExecute taint (upstream's "master disruption
mode": when every zone is fully disrupted the fault is more likely the control plane's own
network than the nodes, so ``handleDisruption`` stops tainting and takes the taints off).

What upstream promises, and so what this judges (``node_lifecycle_controller.go``):

* **When the mode starts.** ``ComputeZoneState`` and ``handleDisruption`` run at the *end* of
  a ``monitorNodeHealth`` pass, from the Ready conditions that pass saw, while
  ``doNoExecuteTaintingPass`` runs on its own every 100 ms. So a node queued for tainting
  before the pass that sees every node down can still be tainted until that pass ends, and a
  controller that learns of the last node's fall through its informer does so one pass
  (``--node-monitor-period``, on its own clock) later. A new leader (or a restarted one)
  starts with every zone ``Initial`` and goes through that again. A taint added in that
  window is upstream's behaviour, not a bug, so a taint counts only once every node has been
  not Ready for :attr:`DisruptionWatch.settle` virtual seconds, and that long after the last
  *disturbance* plus :attr:`DisruptionWatch.recovery`: a fault on anything but the kubelets
  (a request the controller had in flight may land that much later, and a pass may take as
  long) or a change of the acting controller manager (its controllers, informers and client
  credentials start afresh).
* **What counts as a taint added.** The spec's property on the Nodes before and after each
  revision that changes one: a NoExecute taint a node did not have. Only the controller's
  own two NoExecute taints are looked at (``not-ready`` and ``unreachable``), and the swap of
  one for the other is not a new taint: ``processTaintBaseEviction`` swaps them at once,
  whatever the zone state, on a node already tainted.
* **Which nodes count.** Ready means the Ready condition is ``True``; nodes labelled
  ``node.kubernetes.io/exclude-disruption`` count in no zone (upstream leaves them out of
  ``zoneToNodeConditions``). Every zone fully disrupted is the same as no counted node
  Ready, so zones need no bookkeeping here.
* **Not judged:** while two controller managers may act at once (leader election is no
  fence: :mod:`raftkube_fuzz.cluster.leadership`), and while :attr:`DisruptionWatch.settle`
  says it has no bound (a controller manager whose connections lag: each request of a pass
  lags, so a pass has no bound the check could know). A removal that failed is not judged
  either: upstream does not retry it, and a taint that stays is not a taint added.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import attrs

from raftkube_spec.control.model import ClusterState
from raftkube_spec.control.properties import Violation, no_tainting_in_full_disruption
from raftkube_spec.control.records import NO_EXECUTE, NOT_READY, UNREACHABLE, Node
from raftkube_spec.control.world import World

EXCLUDE_DISRUPTION = "node.kubernetes.io/exclude-disruption"
CONTROLLER_TAINTS = (NOT_READY, UNREACHABLE)


def counts_in_zones(node: Node) -> bool:
    return EXCLUDE_DISRUPTION not in dict(node.meta.labels)


def as_judged(node: Node) -> Node:
    """``node`` with only the node lifecycle controller's NoExecute taints."""
    taints = tuple(t for t in node.taints if t.effect == NO_EXECUTE and t.key in CONTROLLER_TAINTS)
    return attrs.evolve(node, taints=taints)


def _unswapped(before: Node, after: Node | None) -> Node:
    """``before`` with a controller taint that ``after`` swapped for the other one renamed to
    it, so that the spec's property does not see the swap as a taint added."""
    if after is None:
        return before
    had = {t.key for t in before.taints}
    has = {t.key for t in after.taints}
    if len(had) == 1 and len(has) == 1 and had != has:
        return attrs.evolve(before, taints=after.taints)
    return before


def no_tainting_in_full_disruption_of(
    before: Mapping[str, Node], after: Mapping[str, Node]
) -> Violation | None:
    """The spec's property on the counted Nodes (by name) before and after one revision,
    with only the controller's NoExecute taints and a swap not counted as a taint added."""
    new = {name: as_judged(n) for name, n in after.items() if counts_in_zones(n)}
    old = [
        _unswapped(as_judged(n), new.get(name))
        for name, n in sorted(before.items())
        if counts_in_zones(n)
    ]
    return no_tainting_in_full_disruption(
        ClusterState(World(tuple(old)), ()),
        ClusterState(World(tuple(new[name] for name in sorted(new))), ()),
    )


@attrs.define
class DisruptionWatch:
    """Follows whether every counted node is down and since when, and the disturbances that
    excuse a taint (see the module docstring). ``settle`` gives the bound now (None: nothing
    is judged); ``recovery`` is how long a disturbance is felt."""

    settle: Callable[[], float | None]
    recovery: float
    down_since: float | None = None
    """The virtual time of the revision after which no counted node was Ready, if none is."""
    calm_from: float = 0.0
    """When the last disturbance stops being felt."""
    managers: tuple[str, ...] = ()
    """The controller managers that may act as leader, as last seen."""

    def disturbed(self, at: float) -> None:
        """A fault touched something but the kubelets at ``at``."""
        self.calm_from = max(self.calm_from, at + self.recovery)

    def leaders(self, at: float, managers: Iterable[str]) -> None:
        """The controller managers that may act now; a change is a disturbance (a new
        leader starts its controllers, their informers and its zones ``Initial`` afresh)."""
        acting = tuple(sorted(managers))
        if acting != self.managers:
            self.managers = acting
            self.disturbed(at)

    def judge(
        self, at: float, before: Mapping[str, Node], after: Mapping[str, Node]
    ) -> Violation | None:
        """The Nodes (by name) before and after the revision committed at ``at``."""
        counted = [n for n in after.values() if counts_in_zones(n)]
        if not counted or any(n.ready == "True" for n in counted):
            self.down_since = None
            return None
        if self.down_since is None:
            self.down_since = at
        settle = self.settle()
        if settle is None or len(self.managers) > 1:
            return None
        if at < max(self.down_since, self.calm_from) + settle:
            return None
        return no_tainting_in_full_disruption_of(before, after)
