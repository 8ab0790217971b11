"""What the node lifecycle controller's and the taint manager's judged requests are judged on.

The conformance monitor (:mod:`.conformance_monitor`) treats five loops of the controller
manager as judged loops, each a sync for sync tracing: the node lifecycle controller's
monitor pass (``node-lifecycle-monitor``, one sync per pass, viewing the Node and Lease
caches), each decision of its tainting pass (``node-lifecycle-tainting``, key
``zone/node``), its NoSchedule worker (``node-lifecycle-noschedule``), and the taint
manager's two workers (``taint-eviction``, whose syncs send nothing judged but build the
memory the rule of ``taint-eviction-fire``'s evictions reads). The rules, and why what is
gathered here is what they need, are in :mod:`raftkube_fuzz.checks.nodelifecycle_conformance`.

The loops' memory is followed per controller incarnation (keyed by the incarnation's Node
informer, which a restart or a new leader builds afresh; a weak key, so a finished run's
memory goes with its informers): every monitor pass's view and status writes, the
controller's clock and Lease cache revision at each pass and status write, and every
sighting of a pod by the taint manager. Every clock reading is the component's own
:class:`~raftkube.clock.Clock` (its informers' reflector's), taken in the component's task at
the moment the loop itself reads it: a sync's start, or a request being sent (no checkpoint
lies between the loop's own reading and the tracer's call).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import attrs

from raftkube.controllers.informer import SharedIndexInformer
from raftkube.controllers.nodehealth import (
    LABEL_EXCLUDE_DISRUPTION,
    NODE_LEASE_NAMESPACE,
    ready_status,
    zone_key,
)
from raftkube_fuzz.checks import nodelifecycle_conformance as rules
from raftkube_fuzz.checks.nodelifecycle_conformance import PassView, Sighting, taint_keys
from raftkube_fuzz.checks.views import StoreHistory
from raftkube_fuzz.cluster.judged_loop import LoopRules, Read, Sync

Obj = dict[str, Any]

MONITOR = "node-lifecycle-monitor"
TAINTING = "node-lifecycle-tainting"
NO_SCHEDULE = "node-lifecycle-noschedule"
EVICTION = "taint-eviction"
FIRE = "taint-eviction-fire"
LEASES = "leases.coordination.k8s.io"


def _grace(never_posted: bool) -> float:
    """The suite's ``--node-monitor-grace-period`` (or startup grace). Imported here: the
    components module imports the conformance monitor, which imports this one."""
    from raftkube_fuzz.cluster.components import NODE_LIFECYCLE

    config = NODE_LIFECYCLE
    return config.node_startup_grace_period if never_posted else config.node_monitor_grace_period


@attrs.define(eq=False)
class Pass:
    """A monitor pass as it goes: its view, then its status writes' outcomes."""

    seq: int
    start: float
    nodes: tuple[tuple[str, str, str | None, bool], ...]
    reads: list[Read]
    unknown: set[str] = attrs.field(factory=set)
    failed: set[str] = attrs.field(factory=set)

    def view(self) -> PassView:
        reread = tuple(ready_status(r.obj) for r in self.reads if r.obj and "/nodes/" in r.path)
        return PassView(
            self.start, self.nodes, frozenset(self.unknown), frozenset(self.failed), reread
        )


@attrs.define(eq=False)
class Memory:
    """What one controller incarnation's judged loops had seen (module docstring)."""

    passes: list[Pass] = attrs.field(factory=list)
    observations: list[tuple[float, int]] = attrs.field(factory=list)
    """(clock, the Lease cache's revision) at each pass start and status write."""
    first_seen: dict[str, float] = attrs.field(factory=dict)
    """Each node of the last pass's view: when the first pass of its current stay began."""
    sightings: dict[str, list[Sighting]] = attrs.field(factory=dict)
    """The taint manager's sightings, by pod key."""
    decided_after: dict[int, int] = attrs.field(factory=dict)
    """A tainting decision's sync -> how many monitor passes had begun before it."""


MEMORY: weakref.WeakKeyDictionary[SharedIndexInformer, Memory] = weakref.WeakKeyDictionary()


def memory_of(sync: Sync) -> Memory:
    memory = MEMORY.get(sync.incarnation)
    if memory is None:
        memory = MEMORY[sync.incarnation] = Memory()
    return memory


def clock_of(sync: Sync) -> float:
    """The component's clock now (its informers' reflector's clock)."""
    return sync.incarnation.reflector.clock.now()


def _parts(path: str) -> list[str]:
    return path.strip("/").split("/")


def _node_name(path: str, subresource: str | None = None) -> str | None:
    """The node a ``/api/v1/nodes/NAME[/subresource]`` path names."""
    parts = _parts(path)
    if parts[:3] != ["api", "v1", "nodes"] or len(parts) < 4:
        return None
    rest = parts[4:]
    return parts[3] if rest == ([subresource] if subresource else []) else None


def _view_node(sync: Sync, name: str) -> Obj | None:
    return next((n for n in sync.items("nodes") if n["metadata"].get("name") == name), None)


def _reads(sync: Sync, name: str) -> list[Obj]:
    """The states of node ``name`` the sync read: its view's, then its GETs'."""
    node = _view_node(sync, name)
    states = [node] if node is not None else []
    return states + [r.obj for r in sync.reads if r.obj is not None and _node_name(r.path) == name]


def _base(sync: Sync, name: str, body: Mapping[str, Any]) -> Obj | None:
    """The node a taint PATCH was computed from: the one with the resourceVersion its
    precondition names, among the view's, the cache's now and the sync's GETs."""
    version = (body.get("metadata") or {}).get("resourceVersion")
    candidates: list[Obj | None] = [_view_node(sync, name)]
    cache = sync.caches.get("nodes")
    if cache is not None:
        candidates.append(cache.informer.indexer.get_by_key(name))
    candidates += [r.obj for r in sync.reads if _node_name(r.path) == name]
    return next(
        (c for c in candidates if c and c["metadata"].get("resourceVersion") == version), None
    )


def _taint_patch(sync: Sync, method: str, path: str, body: Any) -> tuple[str, Obj, Any] | None:
    """(node, base, written taints) of a taint PATCH; None for any other request, or one
    whose base is not known (not judged)."""
    name = _node_name(path)
    if method != "PATCH" or name is None or not isinstance(body, Mapping):
        return None
    base = _base(sync, name, body)
    if base is None:
        return None
    return name, base, (body.get("spec") or {}).get("taints")


def _base_taints(base: Obj) -> frozenset[tuple[str, str]]:
    return taint_keys((base.get("spec") or {}).get("taints"))


# --- the monitor pass ---------------------------------------------------------------------------


def _counted(node: Obj) -> bool:
    return LABEL_EXCLUDE_DISRUPTION not in ((node.get("metadata") or {}).get("labels") or {})


def monitor_started(sync: Sync) -> None:
    memory = memory_of(sync)
    now = clock_of(sync)
    nodes = tuple(
        sorted(
            (str(n["metadata"]["name"]), zone_key(n), ready_status(n), _counted(n))
            for n in sync.items("nodes")
        )
    )
    names = {name for name, *_ in nodes}
    memory.first_seen = {name: memory.first_seen.get(name, now) for name in sorted(names)}
    memory.passes.append(Pass(sync.seq, now, nodes, sync.reads))
    leases = sync.caches.get(LEASES)
    revision = _revision(leases.resource_version) if leases is not None else None
    if revision is not None:  # a cache at no known revision proves nothing about renewals
        memory.observations.append((now, revision))


def _pass_of(memory: Memory, sync: Sync) -> Pass | None:
    last = memory.passes[-1] if memory.passes else None
    return last if last is not None and last.seq == sync.seq else None


@attrs.frozen
class StatusWrite:
    ready_written: str | None
    now: float
    grace: float
    bound: float
    basis: str

    def judge(self) -> str | None:
        return rules.status_write(self.ready_written, self.now, self.grace, self.bound, self.basis)


@attrs.frozen
class MonitorTaintWrite:
    states: tuple[str | None, ...]
    new_node: bool
    entering: bool
    base: frozenset[tuple[str, str]]
    written: frozenset[tuple[str, str]]
    read: frozenset[tuple[str, str]]

    def judge(self) -> str | None:
        return rules.monitor_taint_write(
            self.states, self.new_node, self.entering, self.base, self.written, self.read
        )


def _revision(version: str) -> int | None:
    """A cache's resourceVersion as a store revision; None if it names none."""
    return int(version) if version.isdigit() and int(version) > 0 else None


def _status_facts(
    sync: Sync, memory: Memory, name: str, body: Mapping[str, Any], history: StoreHistory
) -> StatusWrite:
    """A status write of node ``name``: the clock and the Lease the controller reads now."""
    now = clock_of(sync)
    renew = None
    cache = sync.caches.get(LEASES)
    if cache is not None:
        revision = _revision(cache.informer.last_sync_resource_version)
        if revision is not None:
            memory.observations.append((now, revision))
        lease = cache.informer.indexer.get_by_key(f"{NODE_LEASE_NAMESPACE}/{name}")
        renew = ((lease or {}).get("spec") or {}).get("renewTime")
    first_renewed = None
    if renew:
        revisions, times = history.renewals.get(name, ([], []))
        first_renewed = rules.first_revision_renewed(revisions, times, str(renew))
    bound, basis = rules.probe_bound(
        memory.first_seen.get(name, now), memory.observations, first_renewed
    )
    conditions = (body.get("status") or {}).get("conditions") or []
    ready: Mapping[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
    never = ready.get("reason") == "NodeStatusNeverUpdated"
    status = ready.get("status")
    return StatusWrite(None if status is None else str(status), now, _grace(never), bound, basis)


def monitor_sent(
    sync: Sync, method: str, path: str, body: Any, history: StoreHistory
) -> StatusWrite | MonitorTaintWrite | None:
    """A monitor pass's Ready Unknown status write, or a taint write of it."""
    memory = memory_of(sync)
    name = _node_name(path, "status")
    if method == "PUT" and name is not None and isinstance(body, Mapping):
        return _status_facts(sync, memory, name, body, history)
    patch = _taint_patch(sync, method, path, body)
    if patch is None:
        return None
    name, base, written = patch
    current = _pass_of(memory, sync)
    if current is None:
        return None
    judged = current.view().judged()
    entering = judged is None or all(s != "True" for ss in judged.values() for s in ss)
    reads = _reads(sync, name)
    return MonitorTaintWrite(
        tuple(ready_status(r) for r in reads),
        memory.first_seen.get(name) == current.start,
        entering,
        _base_taints(base),
        taint_keys(written),
        frozenset().union(*(_base_taints(r) for r in reads)),
    )


def monitor_answered(
    sync: Sync, method: str, path: str, body: Any, outcome: int | BaseException, history: Any
) -> None:
    """Follow the outcome of each status write of the pass (what it then judged the node)."""
    name = _node_name(path, "status")
    current = _pass_of(memory_of(sync), sync)
    if method != "PUT" or name is None or current is None:
        return
    if isinstance(outcome, int) and 200 <= outcome < 300:
        current.unknown.add(name)
    else:
        current.failed.add(name)


# --- the tainting pass and the NoSchedule worker ------------------------------------------------


def tainting_started(sync: Sync) -> None:
    memory = memory_of(sync)
    memory.decided_after[sync.seq] = len(memory.passes)


@attrs.frozen(eq=False)
class TaintingWrite:
    ready: str | None
    base: frozenset[tuple[str, str]]
    written: frozenset[tuple[str, str]]
    zone: str
    passes: tuple[Pass, ...]
    """The monitor passes that had begun when the decision was taken."""

    def judge(self) -> str | None:
        views = [p.view() for p in self.passes]
        current = views[-1] if views else None
        disrupted = rules.master_disruption(views[:-1], current, self.zone)
        return rules.tainting_write(self.ready, self.base, self.written, disrupted)


def tainting_sent(
    sync: Sync, method: str, path: str, body: Any, history: StoreHistory
) -> TaintingWrite | None:
    patch = _taint_patch(sync, method, path, body)
    if patch is None:
        return None
    name, base, written = patch
    memory = memory_of(sync)
    begun = memory.decided_after.get(sync.seq, len(memory.passes))
    node = _view_node(sync, name)
    return TaintingWrite(
        ready_status(node) if node is not None else None,
        _base_taints(base),
        taint_keys(written),
        sync.key.rpartition("/")[0],
        tuple(memory.passes[:begun]),
    )


@attrs.frozen
class NoScheduleWrite:
    ready: str | None
    base: frozenset[tuple[str, str]]
    written: frozenset[tuple[str, str]]

    def judge(self) -> str | None:
        return rules.no_schedule_write(self.ready, self.base, self.written)


def no_schedule_sent(
    sync: Sync, method: str, path: str, body: Any, history: StoreHistory
) -> NoScheduleWrite | None:
    patch = _taint_patch(sync, method, path, body)
    if patch is None:
        return None
    name, base, written = patch
    node = _view_node(sync, name)
    ready = ready_status(node) if node is not None else None
    return NoScheduleWrite(ready, _base_taints(base), taint_keys(written))


# --- the taint manager --------------------------------------------------------------------------


def _no_execute(node: Obj | None) -> list[Obj]:
    taints = ((node or {}).get("spec") or {}).get("taints") or []
    return [t for t in taints if t.get("effect") == "NoExecute"]


def _pod_key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name')}"


def eviction_started(sync: Sync) -> None:
    """A sync of the taint manager: a sighting of each pod it looks at (what upstream's
    ``handleNodeUpdate`` or ``handlePodUpdate`` reads, at its start)."""
    memory = memory_of(sync)
    now = clock_of(sync)
    kind, _, name = sync.key.partition(":")
    nodes = {str(n["metadata"].get("name")): n for n in sync.items("nodes")}

    def seen(pod: Obj, taints: list[Obj]) -> None:
        tolerations = (pod.get("spec") or {}).get("tolerations") or []
        uid = str(pod["metadata"].get("uid") or "")
        delay = rules.eviction_delay(tolerations, taints)
        memory.sightings.setdefault(_pod_key(pod), []).append(Sighting(now, uid, delay))

    if kind == "node":
        if name in nodes:
            taints = _no_execute(nodes[name])
            for pod in sync.items("pods"):
                if (pod.get("spec") or {}).get("nodeName") == name:
                    seen(pod, taints)
        return
    found = [p for p in sync.items("pods") if _pod_key(p) == name]
    if not found:
        memory.sightings.setdefault(name, []).append(Sighting(now, "", None))
        return
    pod = found[0]
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        seen(pod, _no_execute(nodes.get(node_name)))


@attrs.frozen
class Eviction:
    now: float
    sightings: tuple[Sighting, ...]

    def judge(self) -> str | None:
        return rules.eviction_delete(self.now, self.sightings)


def fire_sent(
    sync: Sync, method: str, path: str, body: Any, history: StoreHistory
) -> Eviction | None:
    """The eviction's DELETE of the pod, and the DisruptionTarget status write before it."""
    parts = _parts(path)
    if parts[:3] != ["api", "v1", "namespaces"] or parts[4:5] != ["pods"]:
        return None
    if not (
        (method == "DELETE" and len(parts) == 6) or (method == "PUT" and parts[6:] == ["status"])
    ):
        return None
    key = f"{parts[3]}/{parts[5]}"
    memory = memory_of(sync)
    return Eviction(clock_of(sync), tuple(memory.sightings.get(key, ())))


RULES = (
    LoopRules(MONITOR, sent=monitor_sent, answered=monitor_answered, keeps_reads=True,
              started=monitor_started),
    LoopRules(TAINTING, sent=tainting_sent, keeps_reads=True, started=tainting_started),
    LoopRules(NO_SCHEDULE, sent=no_schedule_sent, keeps_reads=True),
    LoopRules(EVICTION, started=eviction_started),
    LoopRules(FIRE, sent=fire_sent),
)  # fmt: skip
"""The node lifecycle controller's and the taint manager's judged loops."""
