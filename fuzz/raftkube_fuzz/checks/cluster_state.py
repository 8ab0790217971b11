"""The control plane's safety properties, on the real objects the store committed.

What this proves, and what it cannot see:

* **The input** is every write the store applied, revision by revision (the run's
  ``written``: the first report of each revision by any member). Objects are decoded from
  the stored JSON exactly as the API server decodes them, so the state here after revision
  ``r`` is what any read of the API at ``r`` returns; nothing between two revisions exists
  for any component, so nothing is missed. A watch cache or an informer only ever shows a
  prefix of this sequence, which is what makes "at some revision at or before ``r``"
  the honest bound for what a writer at ``r`` can have read.
* **The properties** are the spec's pure functions
  (:mod:`raftkube_spec.control.properties`) evaluated on an abstraction of the real objects
  into the spec's records (:func:`spec_pod`, :func:`spec_replica_set`): ``BoundOnce`` on
  every pair of consecutive revisions of a pod, ``NoOverCreation`` for every ReplicaSet at
  every revision that touched it or its pods (the limit is the most replicas that ReplicaSet
  was ever asked for: a scale-down leaves the surplus deleting, not active; a pod in a
  terminal phase is not active either, as for upstream's ``IsPodActive``; pods created
  while two controller managers may have acted as leader are not counted, because upstream
  promises nothing for them: :mod:`raftkube_fuzz.cluster.leadership`; and the limit grows by
  one for each create of that ReplicaSet's pods whose outcome its controller could not know,
  which upstream's controller may repeat: :mod:`raftkube_fuzz.cluster.ambiguous`), and
  ``PodRunsOnOneNode`` after every step, with the machines' running pods read from the
  simulated runtimes. The spec's ``EndpointsListOnlyReady`` is judged against the writer's
  own view, which the real controller does not expose; :class:`ClusterObserver` checks the
  observable consequence instead: every address an Endpoints write lists belongs to a pod
  that, at that revision or before, was Ready with that IP and matched the Service's
  selector. ``AtMostOneLeader`` (on the controller managers' and the schedulers' Leases):
  no candidate takes a Lease over while its previous holder may still act unless it watched
  the record unchanged for ``leaseDurationSeconds`` of its own clock
  (:mod:`raftkube_fuzz.cluster.leadership` says why that is the part upstream promises).
  ``GCDeletesOnlyDependents`` is judged on every pod deletion by
  :mod:`raftkube_fuzz.checks.ownership`, which says how it tells the garbage collector's
  deletions from the other loops'.
  ``NamespaceEmptiedBeforeFinalized`` is judged on every revision by
  :mod:`raftkube_fuzz.checks.namespace_lifecycle`, which follows every namespaced key.
* **Namespaces:** the suite's workloads live in ``default`` and ``team-a``; the properties
  on pods and ReplicaSets are judged within each namespace (the spec's records carry their
  namespace; ``PodRunsOnOneNode`` is judged one namespace at a time, each as the spec's
  ``default``, since the spec's machines name their pods within that one).
* **Not seen:** requests that failed (they change nothing) and the order of reads inside a
  component.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from raftkube.apiserver.quantity import parse_quantity_json
from raftkube_fuzz.checks.disruption import DisruptionWatch
from raftkube_fuzz.checks.namespace_lifecycle import NamespaceLog
from raftkube_fuzz.checks.ownership import Ownership, controller_uid
from raftkube_fuzz.cluster.ambiguous import AmbiguousCreates
from raftkube_fuzz.cluster.leadership import LeadershipLog, lease_spec
from raftkube_fuzz.violation import Violation
from raftkube_spec.control.model import ClusterState, Machine
from raftkube_spec.control.properties import (
    bound_once,
    no_over_creation,
    node_within_allocatable,
    pod_runs_on_one_node,
)
from raftkube_spec.control.records import Meta, Node, OwnerRef, Pod, ReplicaSet, Taint
from raftkube_spec.control.world import World
from raftkube_spec.kv.types import KeyValue

Obj = dict[str, Any]
Key = tuple[str, str, str]

PREFIXES: dict[bytes, str] = {
    b"/registry/pods/": "Pod",
    b"/registry/replicasets/": "ReplicaSet",
    b"/registry/deployments/": "Deployment",
    b"/registry/services/": "Service",
    b"/registry/endpoints/": "Endpoints",
    b"/registry/nodes/": "Node",
}
"""The stored kinds the checks follow (the API server's key layout)."""

NAMESPACE = "default"
TERMINAL_PHASES = ("Succeeded", "Failed")


def kind_of(key: bytes) -> str | None:
    for prefix, kind in PREFIXES.items():
        if key.startswith(prefix):
            return kind
    return None


def object_key(obj: Mapping[str, Any], kind: str) -> Key:
    meta = obj.get("metadata") or {}
    return (kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _labels(obj: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(((obj.get("metadata") or {}).get("labels") or {}).items()))


def spec_meta(obj: Mapping[str, Any], kind: str) -> Meta:
    """An API object's metadata as the spec's record carries it."""
    meta = obj.get("metadata") or {}
    owners = tuple(OwnerRef(str(o.get("kind", "")), str(o.get("name", "")), str(o.get("uid", "")),
                            bool(o.get("blockOwnerDeletion")))
                   for o in meta.get("ownerReferences") or [])  # fmt: skip
    return Meta(
        kind=kind,
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace") or ""),
        uid=str(meta.get("uid", "")),
        labels=_labels(obj),
        owners=owners,
        deleting=bool(meta.get("deletionTimestamp")),
        finalizers=tuple(meta.get("finalizers") or ()),
    )


def _as_default(pod: Pod) -> Pod:
    return attrs.evolve(pod, meta=attrs.evolve(pod.meta, namespace=NAMESPACE))


def is_ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def spec_pod(obj: Mapping[str, Any]) -> Pod:
    """A real pod as the spec's record: identity, owners, binding and readiness."""
    return Pod(
        meta=spec_meta(obj, "Pod"),
        node=str((obj.get("spec") or {}).get("nodeName") or ""),
        cpu=pod_cpu(obj),
        ready=is_ready(obj),
    )


def millicores(value: Any) -> int:
    """A cpu quantity (``"1500m"``, ``"2"``, ``0.5``) in thousandths of a cpu."""
    return parse_quantity_json(value).milli_value() if value is not None else 0


def pod_cpu(obj: Mapping[str, Any]) -> int:
    """The pod's summed container cpu requests, in millicores (upstream's PodRequests without
    init containers or overhead, which the suite's pods do not have)."""
    containers = (obj.get("spec") or {}).get("containers") or []
    return sum(
        millicores(((c.get("resources") or {}).get("requests") or {}).get("cpu"))
        for c in containers
    )


def spec_node(obj: Mapping[str, Any]) -> Node:
    """A real Node as the spec's record: the room on it (allocatable cpu in millicores, the
    spec's whole units a thousand times finer: the comparison is the same), its Ready
    condition's status ("" when it has none) and its taints (key and effect)."""
    allocatable = (obj.get("status") or {}).get("allocatable") or {}
    conditions = (obj.get("status") or {}).get("conditions") or []
    ready = next((str(c.get("status")) for c in conditions if c.get("type") == "Ready"), "")
    taints = tuple(
        Taint(str(t.get("key", "")), str(t.get("effect", "")))
        for t in (obj.get("spec") or {}).get("taints") or []
    )
    return Node(
        meta=spec_meta(obj, "Node"),
        cpu=millicores(allocatable.get("cpu")),
        ready=ready,
        taints=taints,
    )


def spec_replica_set(obj: Mapping[str, Any]) -> ReplicaSet:
    spec = obj.get("spec") or {}
    selector = tuple(sorted(((spec.get("selector") or {}).get("matchLabels") or {}).items()))
    template = tuple(sorted((((spec.get("template") or {}).get("metadata") or {}).get("labels")
                             or {}).items()))  # fmt: skip
    return ReplicaSet(
        meta=spec_meta(obj, "ReplicaSet"),
        replicas=int(spec.get("replicas", 1)),
        selector=selector,
        template_labels=template,
    )


def _finished(pod: Mapping[str, Any]) -> bool:
    """In a terminal phase: upstream's controllers no longer count it as active."""
    return (pod.get("status") or {}).get("phase") in TERMINAL_PHASES


def _violation(found: tuple[str, str] | None, revision: int, evidence: Mapping[str, Any]) -> None:
    if found is not None:
        name, message = found
        raise Violation(name, f"at revision {revision}: {message}", {"revision": revision,
                                                                      **evidence})  # fmt: skip


class ClusterObserver:
    """Follows the store's writes and checks each revision (see the module docstring)."""

    def __init__(
        self,
        leadership: LeadershipLog | None = None,
        scheduling: LeadershipLog | None = None,
        disruption: DisruptionWatch | None = None,
        times: Mapping[int, float] | None = None,
        ambiguous: AmbiguousCreates | None = None,
    ) -> None:
        self.leadership = leadership
        self.ambiguous = ambiguous if ambiguous is not None else AmbiguousCreates()
        """The controller managers' pod creates with an unknown outcome, by owner."""
        """Which controller managers may act at once (None: one at most, always)."""
        self.scheduling = scheduling
        """Which schedulers may act at once (None: one at most, always)."""
        self.disruption = disruption
        """``NoTaintingInFullDisruption`` (None: not checked)."""
        self.times = times if times is not None else {}
        """The virtual time each revision was committed at (for :attr:`disruption`)."""
        self.pinned: set[str] = set()
        """Pods (by uid) created already bound (``spec.nodeName`` set by their creator): no
        scheduler judged them, so ``NodeWithinAllocatable`` on the objects leaves them out;
        what keeps them off a full node is the kubelet's admission, which
        :meth:`check_machines` checks on what the machines run."""
        self.double_booked: dict[str, tuple[str, ...]] = {}
        """Pods (by uid) bound while two schedulers may have acted, with those schedulers:
        ``NodeWithinAllocatable`` does not count them (upstream leaves an overcommit by two
        schedulers to the kubelet's admission, which the machines' check covers)."""
        self.excused: dict[str, tuple[str, ...]] = {}
        """Pods (by uid) created while two controller managers may have acted, with those
        managers: ``NoOverCreation`` does not count them (see :mod:`.leadership`)."""
        self.revision = 1
        """The last revision applied here (an empty store is at revision 1, as etcd's: the
        first write makes revision 2)."""
        self.objects: dict[Key, Obj] = {}
        self._keys: dict[bytes, Key] = {}
        self.max_replicas: dict[str, int] = {}
        """The most replicas each ReplicaSet (by uid) was ever asked for."""
        self.ready_seen: dict[str, set[tuple[str, tuple[tuple[str, str], ...]]]] = {}
        """For each pod uid, the (IP, labels) it was ever Ready with."""
        self.ownership = Ownership()
        self.namespaces = NamespaceLog()
        """Every namespace's deletion and every namespaced key (all kinds, not only the
        followed ones): ``NamespaceEmptiedBeforeFinalized``."""

    def fingerprint(self) -> str:
        """A digest of every followed object, byte for byte: put in the timeline after each
        step, it makes a replay's digest cover the control plane's writes, not only the
        store's events."""
        text = json.dumps(sorted(self.objects.items()), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def of(self, kind: str, namespace: str | None = None) -> list[Obj]:
        return [
            o
            for (k, ns, _), o in sorted(self.objects.items())
            if k == kind and (namespace is None or ns == namespace)
        ]

    def follow(self, written: Mapping[int, tuple[KeyValue, ...]]) -> None:
        """Apply and check every revision after :attr:`revision` that ``written`` holds, in
        order; stops at the first missing one (a later report fills it)."""
        while self.revision + 1 in written:
            self.revision += 1
            self._apply(self.revision, written[self.revision])

    def _apply(self, revision: int, records: Iterable[KeyValue]) -> None:
        records = tuple(records)
        self.namespaces.apply(revision, records)
        changed: list[tuple[Obj | None, Obj | None, str]] = []
        logs = [log for log in (self.leadership, self.scheduling) if log is not None]
        for log in logs:
            log.advance_to(revision)
        for kv in records:
            for log in logs:
                if kv.key == log.lease_key and kv.version != 0:
                    holder, duration = lease_spec(kv)
                    broken = log.holder_written(revision, holder, duration)
                    if broken is not None:
                        _violation(("AtMostOneLeader", broken), revision,
                                   {"lease": kv.key.decode(), "holder": holder})  # fmt: skip
                elif kv.key == log.lease_key:
                    log.record = None
            kind = kind_of(kv.key)
            if kind is None:
                continue
            old_key = self._keys.get(kv.key)
            old = self.objects.get(old_key) if old_key is not None else None
            if kv.version == 0:  # a deletion's tombstone
                if old_key is not None:
                    del self.objects[old_key]
                    del self._keys[kv.key]
                changed.append((old, None, kind))
                continue
            decoded: Obj = json.loads(kv.value)
            key = object_key(decoded, kind)
            self._keys[kv.key] = key
            self.objects[key] = decoded
            changed.append((old, decoded, kind))
        nodes_to_check: set[str] = set()
        for before, after, kind in changed:
            if kind == "Node" and after is not None:
                nodes_to_check.add(object_key(after, "Node")[2])
            if kind == "Pod" and after is not None:
                node = str((after.get("spec") or {}).get("nodeName") or "")
                if node and before is None:
                    self.pinned.add(spec_pod(after).meta.uid)
                elif node and node != str(((before or {}).get("spec") or {}).get("nodeName") or ""):
                    nodes_to_check.add(node)
                    acting = self.scheduling.overlapping() if self.scheduling else ()
                    if acting:
                        self.double_booked[spec_pod(after).meta.uid] = acting
            if kind == "Pod":
                self._pod_changed(revision, before, after)
                self.ownership.pod_changed(
                    revision, before, after, spec_pod, self._rs_by_uid, self.namespaces.emptying
                )
            elif kind == "ReplicaSet" and after is not None:
                self.ownership.replica_set_written(after)
                rs = spec_replica_set(after)
                uid = rs.meta.uid
                self.max_replicas[uid] = max(self.max_replicas.get(uid, 0), rs.replicas)
                self._check_replica_set(revision, after)
            elif kind == "Endpoints" and after is not None:
                self._check_endpoints(revision, after)
        if nodes_to_check:
            self._check_allocatable(revision, sorted(nodes_to_check))
        controllers = {
            controller_uid(obj)
            for before, after, kind in changed
            if kind == "Pod"
            for obj in (before, after)
            if obj is not None
        }
        for uid in sorted(u for u in controllers if u is not None):
            self.ownership.pods_counted(uid, self.of("Pod"))
        self._check_disruption(revision, [(b, a) for b, a, kind in changed if kind == "Node"])

    def _check_disruption(self, revision: int, nodes: list[tuple[Obj | None, Obj | None]]) -> None:
        """``NoTaintingInFullDisruption`` (:mod:`.disruption`) on the Nodes before and after
        ``revision``, if it changed one."""
        at = self.times.get(revision)
        if self.disruption is None or at is None:
            return
        if self.leadership is not None:
            self.disruption.leaders(at, self.leadership.acting)
        if not nodes:
            return
        after = {object_key(n, "Node")[2]: spec_node(n) for n in self.of("Node")}
        before = dict(after)
        for old, new in nodes:
            if new is not None:
                before.pop(object_key(new, "Node")[2], None)
            if old is not None:
                before[object_key(old, "Node")[2]] = spec_node(old)
        _violation(
            self.disruption.judge(at, before, after),
            revision,
            {"nodes": {name: f"Ready={n.ready} taints={[t.key for t in n.taints]}"
                       for name, n in sorted(after.items())},
             "all_down_since": self.disruption.down_since},
        )  # fmt: skip

    def _rs_by_uid(self, uid: str) -> ReplicaSet | None:
        for obj in self.of("ReplicaSet"):
            if (obj.get("metadata") or {}).get("uid") == uid:
                return spec_replica_set(obj)
        return None

    def _pod_changed(self, revision: int, old: Obj | None, new: Obj | None) -> None:
        if old is None and new is not None and self.leadership is not None:
            acting = self.leadership.overlapping()
            if acting:
                self.excused[spec_pod(new).meta.uid] = acting
        if new is not None:
            pod = spec_pod(new)
            ip = str((new.get("status") or {}).get("podIP") or "")
            if pod.ready and ip:
                self.ready_seen.setdefault(pod.meta.uid, set()).add((ip, pod.meta.labels))
        if old is not None and new is not None:
            before = ClusterState(World((spec_pod(old),)), ())
            after = ClusterState(World((spec_pod(new),)), ())
            evidence = {
                "pod": object_key(new, "Pod")[2],
                "before": (old.get("spec") or {}).get("nodeName"),
                "after": (new.get("spec") or {}).get("nodeName"),
            }
            _violation(bound_once(before, after), revision, evidence)
        for ref in ((new or old or {}).get("metadata") or {}).get("ownerReferences") or []:
            if ref.get("kind") == "ReplicaSet":
                namespace = str(((new or old or {}).get("metadata") or {}).get("namespace"))
                owner = self.objects.get(("ReplicaSet", namespace, str(ref.get("name"))))
                if owner is not None and (owner.get("metadata") or {}).get("uid") == ref.get("uid"):
                    self._check_replica_set(revision, owner)

    def _check_replica_set(self, revision: int, rs_obj: Obj) -> None:
        rs = spec_replica_set(rs_obj)
        namespace = rs.meta.namespace
        objs = self.of("Pod", namespace)
        # A pod that finished (Succeeded, or Failed: e.g. refused by its kubelet's admission
        # with OutOfcpu) is not active for the ReplicaSet controller (upstream's IsPodActive),
        # which replaces it and leaves it in place; the spec's pods have no phase, so the
        # abstraction leaves finished pods out (docs/spec.md, "NoOverCreation ...").
        pods = [spec_pod(p) for p in objs if not _finished(p)]
        # Upstream promises no over-creation for one controller acting alone: pods created
        # while two controller managers may have acted are not counted (the spec's property
        # is about one ReplicaSet loop; docs/spec.md, "NoOverCreation and leader overlap").
        counted = tuple(p for p in pods if p.meta.uid not in self.excused)
        asked = self.max_replicas.get(rs.meta.uid, rs.replicas)
        # And one more pod per create of this ReplicaSet's that ended in an unknown outcome:
        # upstream's controller lowers its expectations for it and may create again
        # (:mod:`raftkube_fuzz.cluster.ambiguous`).
        unknown = self.ambiguous.of(rs.meta.uid)
        limit = asked + unknown
        state = ClusterState(World(tuple(sorted((rs, *counted), key=lambda r: r.meta.key))), ())
        excused = sorted(p.meta.name for p in pods if p.meta.uid in self.excused)
        done = sorted(pod.meta.name for pod in map(spec_pod, filter(_finished, objs))
                      if any(o.uid == rs.meta.uid for o in pod.meta.owners))  # fmt: skip
        _violation(
            no_over_creation(limit)(state),
            revision,
            {"replicaset": rs.meta.name, "most_replicas_asked": asked,
             "creates_with_unknown_outcome": unknown,
             "not_counted_created_under_leader_overlap": excused,
             "not_counted_finished": done},
        )  # fmt: skip

    def _check_allocatable(self, revision: int, names: list[str]) -> None:
        """``NodeWithinAllocatable`` for the nodes ``names`` (a pod was bound to one, or its
        Node changed): the spec's property on the Nodes and the pods holding room on them.
        A pod in a terminal phase holds none (upstream's scheduler does not count it: its
        informer leaves Succeeded and Failed pods out), and one bound while two schedulers
        may have acted is not counted (:attr:`double_booked`)."""
        nodes = [spec_node(n) for n in self.of("Node") if object_key(n, "Node")[2] in names]
        pods = [
            spec_pod(p)
            for p in self.of("Pod")
            if str((p.get("spec") or {}).get("nodeName") or "") in names
            and (p.get("status") or {}).get("phase") not in TERMINAL_PHASES
        ]
        counted = [
            p
            for p in pods
            if p.meta.uid not in self.double_booked and p.meta.uid not in self.pinned
        ]
        world = World(tuple(sorted((*nodes, *counted), key=lambda r: r.meta.key)))
        _violation(
            node_within_allocatable(ClusterState(world, ())),
            revision,
            {"nodes": names, "pods": sorted(f"{p.meta.name}@{p.node}:{p.cpu}m" for p in counted)},
        )

    def _check_admitted(self, running: Mapping[str, list[tuple[str, str]]]) -> None:
        nodes = [spec_node(n) for n in self.of("Node") if object_key(n, "Node")[2] in running]
        pods = []
        for node, on in sorted(running.items()):
            for namespace, name in on:
                obj = self.objects.get(("Pod", namespace, name))
                if obj is not None:  # one without an object is PodRunsOnOneNode's to judge
                    pods.append(attrs.evolve(spec_pod(obj), node=node))
        world = World(tuple(sorted((*nodes, *pods), key=lambda r: r.meta.key)))
        _violation(
            node_within_allocatable(ClusterState(world, ())),
            self.revision,
            {"running": {n: sorted(name for _, name in on) for n, on in sorted(running.items())},
             "on_the_machines": True},
        )  # fmt: skip

    def _check_endpoints(self, revision: int, endpoints: Obj) -> None:
        _, namespace, name = object_key(endpoints, "Endpoints")
        service = self.objects.get(("Service", namespace, name))
        if service is None:
            return
        selector = dict((service.get("spec") or {}).get("selector") or {})
        if not selector:
            return  # not the endpoints controller's (``kubernetes`` is the API server's own)
        for subset in endpoints.get("subsets") or []:
            for address in subset.get("addresses") or []:
                ref = address.get("targetRef") or {}
                ip = str(address.get("ip", ""))
                seen = self.ready_seen.get(str(ref.get("uid", "")), set())
                if not any(
                    seen_ip == ip and set(selector.items()) <= set(labels)
                    for seen_ip, labels in seen
                ):
                    raise Violation(
                        "EndpointsListOnlyReady",
                        f"at revision {revision}: Endpoints {namespace}/{name} lists {ip} "
                        f"(pod {ref.get('name')}), which was never a Ready pod with that "
                        f"address matching the Service's selector {selector}",
                        {"revision": revision, "endpoints": name, "address": ip,
                         "pod": ref.get("name")},
                    )  # fmt: skip

    def check_machines(self, running: Mapping[str, Iterable[tuple[str, str]]]) -> None:
        """``PodRunsOnOneNode`` on the current objects and what each machine runs
        (node name -> (namespace, pod name) of every pod it runs), and
        ``NodeWithinAllocatable`` on what each machine runs: the pods a kubelet admitted fit
        its Node's allocatable, whoever bound them (the spec's property, with each running pod
        placed on the machine running it)."""
        listed = {node: list(on) for node, on in running.items()}
        self._check_admitted(listed)
        namespaces = {ns for on in listed.values() for ns, _ in on}
        namespaces |= {object_key(p, "Pod")[1] for p in self.of("Pod")}
        for namespace in sorted(namespaces):
            # The spec's machines name their pods within its one namespace, ``default``:
            # each namespace is judged alone, as that one.
            pods = tuple(_as_default(spec_pod(p)) for p in self.of("Pod", namespace))
            machines = tuple(
                Machine(node, running=tuple(sorted(n for ns, n in on if ns == namespace)))
                for node, on in sorted(listed.items())
            )
            world = World(tuple(sorted(pods, key=lambda r: r.meta.key)))
            _violation(
                pod_runs_on_one_node(ClusterState(world, (), machines)),
                self.revision,
                {"namespace": namespace, "machines": {m.name: list(m.running) for m in machines}},
            )
