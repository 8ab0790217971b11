"""The view check: every informer cache a judged loop reads is one the API could have shown.

What this proves, and what it cannot see:

* **The claim.** An informer's cache whose resourceVersion is ``r`` holds exactly the objects
  of its resource (in its namespace, matching its selectors) that the store held at revision
  ``r``, each at the version it had then; and ``r`` never goes back for one informer (one
  incarnation of a component: a restart builds new informers). A cache is a prefix of its
  watch history exactly when this holds, and a loop's *view* (what the conformance check,
  :mod:`.request_conformance`, runs the spec's loop on) is then a state the API really had.
* **The input** is every write the store applied, fed live, revision by revision, from the
  run's listener (:meth:`StoreHistory.written`: the first member to apply a revision reports
  it, before any API server can answer a read or a watch at it). For each followed resource
  the history keeps, per object, the revisions it was written at (and whether a pod was
  finished then, for the scheduler's ``status.phase`` field selector); the state at ``r`` is
  each object's last version at or before ``r``.
* **The comparison** is by key and ``metadata.resourceVersion``: the store's version of an
  object written at revision ``m`` is the one value stored at ``m``, so a cached object with
  resourceVersion ``m`` is that version byte for byte as the API server decoded it (the
  contents need no second comparison).
* **Not seen:** resources outside :data:`RESOURCES` (the conformance check reads no other),
  informers with a label selector or a field selector other than the scheduler's (none of
  the judged loops has one), and the moments between two syncs: the caches are judged as a
  judged loop read them (at the start of a sync), which is when they matter.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from raftkube_spec.kv.types import KeyValue

Obj = dict[str, Any]

RESOURCES: dict[str, bytes] = {
    "pods": b"/registry/pods/",
    "replicasets.apps": b"/registry/replicasets/",
    "services": b"/registry/services/",
    "endpoints": b"/registry/endpoints/",
    "nodes": b"/registry/nodes/",
}
"""The followed resources (an informer's name is its resource's qualified name) and the API
server's key prefix for each: ``/registry/{resource}/{namespace}/{name}``."""

NODE_LEASES = b"/registry/leases/kube-node-lease/"
"""The kubelets' Leases: their renewals are followed (:attr:`StoreHistory.renewals`)."""

EVENTS = b"/registry/events/"
"""Events: never anyone's owner, and most of the creates (their uids are not followed)."""

NOT_FINISHED = "status.phase!=Succeeded,status.phase!=Failed"
"""The one field selector understood: kube-scheduler's pod informer's."""

TERMINAL_PHASES = ("Succeeded", "Failed")


def cache_key(resource: str, key: bytes) -> str:
    """The informer's key (``namespace/name``, or ``name``) of the store key ``key``."""
    return key[len(RESOURCES[resource]) :].decode()


def resource_of(key: bytes) -> str | None:
    for resource, prefix in RESOURCES.items():
        if key.startswith(prefix):
            return resource
    return None


@attrs.frozen
class PodFact:
    """What the conformance rules need of a pod as the store holds it now."""

    uid: str
    controller: str
    """The uid of its controller ``ownerReference`` ("" if none)."""
    created: int
    """The revision that created it."""
    node: str = ""
    """``spec.nodeName``: the node it is bound to ("" if none)."""
    deleting: bool = False
    """Whether it has a ``deletionTimestamp``."""
    phase: str = ""
    """``status.phase``."""

    @property
    def active(self) -> bool:
        """Not being deleted and not finished (upstream's ``IsPodActive``)."""
        return not self.deleting and self.phase not in TERMINAL_PHASES


def controller_of(obj: Mapping[str, Any]) -> str:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid") or "")
    return ""


@attrs.define(eq=False)
class StoreHistory:
    """Every version of every followed object, by revision (see the module docstring)."""

    revision: int = 1
    """The last revision applied (an empty store is at 1)."""
    versions: dict[str, dict[str, tuple[list[int], list[bool | None]]]] = attrs.field(
        factory=lambda: {r: {} for r in RESOURCES}
    )
    """resource -> cache key -> (revisions it was written at, and after each: None if
    deleted, else whether it was finished: always False but for a finished pod)."""
    pods: dict[str, PodFact] = attrs.field(factory=dict)
    """The pods the store holds now, by cache key."""
    uids: dict[bytes, str] = attrs.field(factory=dict)
    """The uid of every API object the store holds now (Events aside), by store key: whether
    an owner still exists is asked by uid (the garbage collector's rule)."""
    live_uids: set[str] = attrs.field(factory=set)
    renewals: dict[str, tuple[list[int], list[str | None]]] = attrs.field(factory=dict)
    """Node name -> (revisions its Lease in ``kube-node-lease`` was written at, and its
    ``spec.renewTime`` after each: None if deleted or unset): when the node lifecycle
    controller could first have seen a renewal (:mod:`.nodelifecycle_conformance`)."""

    def written(self, revision: int, records: Iterable[KeyValue]) -> None:
        """The run listener's hook: revision ``revision`` applied ``records``."""
        self.revision = max(self.revision, revision)
        for kv in records:
            self._uid_written(kv)
            if kv.key.startswith(NODE_LEASES):
                self._renewed(revision, kv)
            resource = resource_of(kv.key)
            if resource is None:
                continue
            key = cache_key(resource, kv.key)
            state: bool | None = None
            if kv.version != 0:
                state = False
                if resource == "pods":
                    pod: Obj = json.loads(kv.value)
                    state = self._pod_written(key, pod, revision)
            elif resource == "pods":
                self.pods.pop(key, None)
            revisions, states = self.versions[resource].setdefault(key, ([], []))
            revisions.append(revision)
            states.append(state)

    def _uid_written(self, kv: KeyValue) -> None:
        """Follow the uids: an object's is read once, when its key is created (a uid never
        changes), and forgotten with the key."""
        if not kv.key.startswith(b"/registry/") or kv.key.startswith(EVENTS):
            return
        if kv.version == 0:
            self.live_uids.discard(self.uids.pop(kv.key, ""))
        elif kv.version == 1 and kv.value.startswith(b"{"):
            uid = str((json.loads(kv.value).get("metadata") or {}).get("uid") or "")
            if uid:
                self.uids[kv.key] = uid
                self.live_uids.add(uid)

    def _renewed(self, revision: int, kv: KeyValue) -> None:
        renew = None
        if kv.version != 0:
            renew = (json.loads(kv.value).get("spec") or {}).get("renewTime")
        name = kv.key[len(NODE_LEASES) :].decode()
        revisions, times = self.renewals.setdefault(name, ([], []))
        revisions.append(revision)
        times.append(str(renew) if renew else None)

    def holds(self, uid: str) -> bool:
        """Whether the store holds an object with ``uid`` now."""
        return uid in self.live_uids

    def _pod_written(self, key: str, pod: Obj, revision: int) -> bool:
        phase = str((pod.get("status") or {}).get("phase") or "")
        meta = pod.get("metadata") or {}
        old = self.pods.get(key)
        uid = str(meta.get("uid") or "")
        created = old.created if old is not None and old.uid == uid else revision
        self.pods[key] = PodFact(
            uid,
            controller_of(pod),
            created,
            node=str((pod.get("spec") or {}).get("nodeName") or ""),
            deleting=bool(meta.get("deletionTimestamp")),
            phase=phase,
        )
        return phase in TERMINAL_PHASES

    def state_at(self, resource: str, revision: int, not_finished: bool = False) -> dict[str, int]:
        """Cache key -> resourceVersion of every object of ``resource`` the store held at
        ``revision`` (with ``not_finished``, finished pods left out)."""
        out: dict[str, int] = {}
        for key, (revisions, states) in self.versions[resource].items():
            i = bisect.bisect_right(revisions, revision) - 1
            if i < 0 or states[i] is None or (not_finished and states[i]):
                continue
            out[key] = revisions[i]
        return out


def scope_of(lister_watcher: Any) -> tuple[str, str, str] | None:
    """``(namespace, label selector, field selector)`` of a reflector's lister-watcher, or None
    if it is not a plain list-watch whose scope can be read."""
    try:
        return (
            str(lister_watcher.namespace),
            str(lister_watcher.label_selector),
            str(lister_watcher.field_selector),
        )
    except AttributeError:
        return None


def view_mismatch(
    history: StoreHistory,
    resource: str,
    resource_version: str,
    items: Sequence[Obj],
    scope: tuple[str, str, str],
) -> str | None:
    """Why the cache (``items`` at ``resource_version``) is not the store's state of
    ``resource`` in ``scope`` at that revision, or None if it is (or cannot be judged: a
    resource not followed, a selector not understood, a revision not yet applied here)."""
    namespace, labels, fields = scope
    if resource not in RESOURCES or labels or fields not in ("", NOT_FINISHED):
        return None
    if not resource_version.isdigit() or int(resource_version) > history.revision:
        return None
    revision = int(resource_version)
    expected = history.state_at(resource, revision, not_finished=fields == NOT_FINISHED)
    if namespace:
        expected = {k: v for k, v in expected.items() if k.startswith(f"{namespace}/")}
    got = {}
    for obj in items:
        meta = obj.get("metadata") or {}
        key = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
        got[key] = int(meta.get("resourceVersion") or 0)
    if got == expected:
        return None
    missing = sorted(k for k in expected if k not in got)
    extra = sorted(k for k in got if k not in expected)
    stale = sorted(f"{k}@{got[k]} (store: {expected[k]})" for k in got
                   if k in expected and got[k] != expected[k])  # fmt: skip
    found = (("missing", missing), ("not in the store then", extra), ("other versions", stale))
    parts = [f"{label} {', '.join(keys[:5])}" for label, keys in found if keys]
    return f"the {resource} cache at resourceVersion {revision} is not the store's state then: " + (
        "; ".join(parts)
    )
