"""The node lifecycle controller and the taint-based eviction it drives.

Theory of operation
-------------------
:meth:`NodeLifecycle.sync` is upstream's ``monitorNodeHealth`` followed by
``handleDisruption`` and the zone tainters, in one step:

1. Heartbeats, judged by locally observed time. For each node it remembers the last Lease
   ``renewTime`` it saw and the reading of its *own* clock when it saw it change (upstream's
   ``nodeHealthMap`` probeTimestamp). The renewTime itself, written by the kubelet's clock, is
   only compared for change. A node first seen (or seen after a restart) gets a fresh probe.
2. A node whose probe is older than ``grace`` (``--node-monitor-grace-period``, 40 s upstream,
   50 s in newer releases) gets ``Ready=Unknown``. Every node not Ready gets the
   ``not-ready``/``unreachable`` NoSchedule taint at once (TaintNodesByCondition).
3. Zone states from the Ready statuses, as ``ComputeZoneState``: FullDisruption if no node of
   the zone is Ready, PartialDisruption if more than 2 are not Ready and they are at least
   ``unhealthy_threshold`` (0.55) of the zone, Normal otherwise.
4. If every zone is fully disrupted ("master disruption mode") the controller suspects itself:
   it takes the NoExecute taints off every node and taints nothing. Otherwise each not-Ready
   node gets the NoExecute taint (``unreachable`` if Unknown, ``not-ready`` if False), stamped
   with the controller's clock, at most one node per zone per ``interval`` seconds (the zone's
   rate limiter: ``--node-eviction-rate`` 0.1/s is one per 10 s); a partially disrupted zone of
   a cluster no larger than ``large_cluster`` (50) taints nothing (rate 0), a larger one at the
   secondary rate. A Ready node loses its NoExecute taints at once.

:meth:`TaintEviction.sync` is the NoExecute taint manager: a pod on a node with a NoExecute
taint it does not tolerate is evicted at once; one it tolerates for ``tolerationSeconds`` is
evicted that long after the manager *first saw* the taint, by its own clock (upstream keys the
eviction timer on the time it processed the taint). Eviction is a graceful delete: the pod
object stays, marked, until its kubelet confirms its containers stopped. Nothing here ever
force-deletes a pod (kubernetes PR #35235): the containers of an unreachable node may still run.

Rate limiting is modelled as a minimum interval between taintings per zone, not a token bucket
with bursts (upstream's bucket has burst 1, which is the same thing).
"""

from __future__ import annotations

import attrs

from raftkube_spec.control.records import (
    NO_EXECUTE,
    NO_SCHEDULE,
    NOT_READY,
    UNREACHABLE,
    Lease,
    Stamp,
    Taint,
)
from raftkube_spec.control.scheduler import tolerated
from raftkube_spec.control.world import Delete, Patch, Request, World

NORMAL, PARTIAL, FULL = "Normal", "PartialDisruption", "FullDisruption"


@attrs.frozen
class Health:
    node: str
    renew: Stamp | None
    """The Lease's renewTime last seen (the kubelet's clock; compared only for change)."""
    probe: Stamp
    """The controller's own clock when it last saw the renewTime change."""


@attrs.frozen
class LifecycleMemory:
    health: tuple[Health, ...] = ()
    tainted_at: tuple[tuple[str, Stamp], ...] = ()
    """Per zone, when the rate limiter last let a NoExecute taint through."""


def _lease(view: World, node: str) -> Lease | None:
    lease = view.get(("Lease", "kube-node-lease", node))
    return lease if isinstance(lease, Lease) else None


def zone_state(statuses: list[str], threshold: float) -> str:
    ready = sum(1 for s in statuses if s == "True")
    not_ready = len(statuses) - ready
    if ready == 0 and not_ready > 0:
        return FULL
    if not_ready > 2 and not_ready / len(statuses) >= threshold:
        return PARTIAL
    return NORMAL


@attrs.frozen
class NodeLifecycle:
    grace: int = 2
    interval: int = 1
    secondary_interval: int = 10
    unhealthy_threshold: float = 0.55
    large_cluster: int = 50

    def observe(self, memory: LifecycleMemory, view: World, now: int) -> tuple[Health, ...]:
        known = {h.node: h for h in memory.health}
        out = []
        for node in view.nodes:
            lease = _lease(view, node.meta.name)
            renew = lease.renew_time if lease is not None else None
            old = known.get(node.meta.name)
            if old is None or old.renew != renew:
                out.append(Health(node.meta.name, renew, Stamp(now)))
            else:
                out.append(old)
        return tuple(out)

    def master_disruption(self, states: dict[str, str]) -> bool:
        """Every zone fully disrupted: stop all evictions (upstream's master disruption mode)."""
        return bool(states) and all(s == FULL for s in states.values())

    def interval_for(self, state: str, cluster_size: int) -> int | None:
        if state == PARTIAL:
            return None if cluster_size <= self.large_cluster else self.secondary_interval
        return self.interval

    def sync(
        self, memory: LifecycleMemory, view: World, now: int
    ) -> tuple[LifecycleMemory, tuple[Request, ...]]:
        health = {h.node: h for h in self.observe(memory, view, now)}
        status: dict[str, str] = {}
        for node in view.nodes:
            stale = now - health[node.meta.name].probe.t > self.grace
            status[node.meta.name] = "Unknown" if stale else node.ready
        zones: dict[str, list[str]] = {}
        for node in view.nodes:
            zones.setdefault(node.zone, []).append(status[node.meta.name])
        states = {z: zone_state(s, self.unhealthy_threshold) for z, s in zones.items()}
        master = self.master_disruption(states)
        tainted_at = dict(memory.tainted_at)
        requests: list[Request] = []
        for node in view.nodes:
            ready = status[node.meta.name]
            key = UNREACHABLE if ready == "Unknown" else NOT_READY
            keep = [t for t in node.taints if t.key not in (NOT_READY, UNREACHABLE)]
            if ready != "True":
                keep.append(Taint(key, NO_SCHEDULE))
                old = next(
                    (t for t in node.taints if t.key == key and t.effect == NO_EXECUTE), None
                )
                if old is not None and not master:
                    keep.append(old)
                elif old is None and not master:
                    every = self.interval_for(states[node.zone], len(view.nodes))
                    last = tainted_at.get(node.zone)
                    if every is not None and (last is None or now - last.t >= every):
                        keep.append(Taint(key, NO_EXECUTE, Stamp(now)))
                        tainted_at[node.zone] = Stamp(now)
            fields: list[tuple[str, object]] = []
            if ready != node.ready:
                fields.append(("ready", ready))
            if tuple(keep) != node.taints:
                fields.append(("taints", tuple(keep)))
            if fields:
                requests.append(Patch(node.meta.ref, tuple(fields)))
        after = LifecycleMemory(tuple(health.values()), tuple(sorted(tainted_at.items())))
        return after, tuple(requests)


@attrs.frozen
class IgnoresDisruption(NodeLifecycle):
    """The ``eviction-ignores-disruption`` mutant: no master disruption mode, so when every node
    looks down (the controller cut off, not the nodes) it taints and evicts everything."""

    def master_disruption(self, states: dict[str, str]) -> bool:
        return False


Timers = tuple[tuple[str, Stamp], ...]
"""(pod uid, the taint manager's clock when it first saw the pod's node tainted)."""


@attrs.frozen
class TaintEviction:
    def sync(self, timers: Timers, view: World, now: int) -> tuple[Timers, tuple[Request, ...]]:
        nodes = {n.meta.name: n for n in view.nodes}
        known = dict(timers)
        kept: dict[str, Stamp] = {}
        requests: list[Request] = []
        for pod in view.pods:
            node = nodes.get(pod.node)
            if node is None or pod.meta.deleting:
                continue
            taints = [t for t in node.taints if t.effect == NO_EXECUTE]
            if not taints:
                continue
            if not all(tolerated(pod, t) for t in taints):
                requests.append(Delete(pod.meta.ref))
                continue
            seconds = [
                tol.seconds
                for t in taints
                for tol in pod.tolerations
                if tol.tolerates(t) and tol.seconds is not None
            ]
            since = known.get(pod.meta.uid, Stamp(now))
            if seconds and now - since.t >= min(seconds):
                requests.append(Delete(pod.meta.ref))
            else:
                kept[pod.meta.uid] = since
        return tuple(sorted(kept.items())), tuple(requests)
