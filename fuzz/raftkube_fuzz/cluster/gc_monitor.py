"""What the garbage collector's judged requests are judged on, gathered as they are sent.

The conformance monitor (:mod:`.conformance_monitor`) treats the collector's delete worker as
one more judged loop (``garbagecollector``, its work queue's name): each sync's view is its
informers' caches when the sync began (:class:`~.judged_loop.Sync`), and the monitor's
request tracer adds each GET the sync makes, with the answer, to the sync's ``reads``. When
the sync sends a DELETE, or a PATCH taking ``foregroundDeletion`` off an object, this module
gathers the states the collector had read of each object the rule needs
(:mod:`raftkube_fuzz.checks.gc_conformance` says which, and what the rule is), at that very
moment: whether the store still holds an owner's uid must be asked then, and so must the
caches' dependents of an owner (compared with the caches when the sync began). Judging waits
for the end of the step, as for every loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from raftkube.apiserver.resources import RESOURCES, by_kind
from raftkube.kubeclient import resource_path
from raftkube_fuzz.checks import gc_conformance as rules
from raftkube_fuzz.checks.gc_conformance import OwnerReads, gc_record
from raftkube_fuzz.checks.views import StoreHistory
from raftkube_fuzz.cluster.judged_loop import LoopRules, Read, Sync
from raftkube_spec.control.world import FOREGROUND

Obj = dict[str, Any]

GC_LOOP = "garbagecollector"
"""The delete worker's name (the orphan worker, ``garbagecollector orphan``, is not judged)."""

KINDS = {r.qualified: r.kind for r in RESOURCES}
"""An informer's name (its resource) -> the kind of its objects (a list's items carry none)."""


def _uid(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("uid") or "")


def _kinded(obj: Obj, kind: str) -> Obj:
    return obj if obj.get("kind") else {**obj, "kind": kind}


def cached(caches: Mapping[str, Any], uid: str) -> list[Obj]:
    """The object with ``uid`` as the sync's caches showed it when the sync began and as they
    show it now (the graph a decision read is one between the two): none, one or two states
    (``caches``: the sync's ``Cache`` values)."""
    found: list[Obj] = []
    out: list[Obj] = []
    for name, cache in caches.items():
        for objs in (cache.items, cache.informer.indexer.list()):
            obj = next((o for o in objs if _uid(o) == uid), None)
            if obj is not None and not any(obj is f for f in found):  # unchanged since
                found.append(obj)
                out.append(_kinded(obj, KINDS.get(name, "")))
    return out


def owner_path(ref: Mapping[str, Any], namespace: str) -> str | None:
    info = by_kind(str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""))
    if info is None:
        return None
    return resource_path(
        info, namespace=namespace if info.namespaced else "", name=str(ref.get("name") or "")
    )


@attrs.frozen
class DependentDelete:
    """A DELETE of a dependent, with what the rule reads (see the module docstring)."""

    dependent: Obj | None
    """Its state as last read (a GET in the sync, else the cache when the sync began)."""
    not_deleting: bool
    owners: tuple[tuple[Obj, tuple[Obj | None, ...]], ...]
    """Each owner reference, with the states read of its owner (None: gone)."""

    def judge(self) -> str | None:
        if self.dependent is None:
            return "the collector had read no object with the uid it deletes"
        record = gc_record(self.dependent)
        by_uid = {r.uid: r for r in record.meta.owners}
        owners = [
            OwnerReads(by_uid[_uid_of_ref(ref)],
                       tuple(None if s is None else gc_record(s) for s in states))
            for ref, states in self.owners if _uid_of_ref(ref) in by_uid
        ]  # fmt: skip
        return rules.dependent_delete(record, self.not_deleting, owners)


def _uid_of_ref(ref: Mapping[str, Any]) -> str:
    return str(ref.get("uid") or "")


@attrs.frozen
class ForegroundRemoval:
    """A PATCH taking ``foregroundDeletion`` off an owner (see the module docstring)."""

    owner_states: tuple[Obj, ...]
    dependents: tuple[Obj, ...]

    def judge(self) -> str | None:
        return rules.foreground_removal(
            [gc_record(s) for s in self.owner_states], [gc_record(d) for d in self.dependents]
        )


def _reads_of(reads: Sequence[Read], path: str, uid: str, kind: str) -> list[Obj | None]:
    """The states the GETs of ``path`` showed of the object ``uid``: None where they found
    no object or another one there."""
    out: list[Obj | None] = []
    for read in reads:
        if read.path != path or read.status is None:
            continue
        if read.status == 404 or (read.obj is not None and _uid(read.obj) != uid):
            out.append(None)
        elif read.obj is not None:
            out.append(_kinded(read.obj, kind))
    return out


def dependent_delete(
    caches: Mapping[str, Any],
    reads: Sequence[Read],
    path: str,
    body: Any,
    in_store: Callable[[str], bool],
) -> DependentDelete:
    """Gather, as the DELETE of ``path`` is sent, what its rule reads; ``in_store(uid)``:
    whether the store holds an object with that uid now."""
    options = body if isinstance(body, Mapping) else {}
    uid = str((options.get("preconditions") or {}).get("uid") or "")
    if not uid:  # the collector always sends one; else the object the sync read there
        uid = next((_uid(r.obj) for r in reversed(reads) if r.path == path and r.obj), "")
    states = cached(caches, uid) if uid else []
    kind = str(states[0].get("kind") or "") if states else ""
    live = [s for s in _reads_of(reads, path, uid, kind) if s is not None]
    # The last read is a GET's answer when the sync made one (upstream's decision reads the
    # references of the object it GETs), else the cache's.
    last = live[-1] if live else (states[-1] if states else None)
    states += live
    not_deleting = any(not (s.get("metadata") or {}).get("deletionTimestamp") for s in states)
    owners = []
    if last is not None:
        namespace = str(last["metadata"].get("namespace") or "")
        for ref in last["metadata"].get("ownerReferences") or []:
            if not isinstance(ref, Mapping) or not ref.get("uid"):
                continue
            owners.append((dict(ref), _owner_states(caches, reads, ref, namespace, in_store)))
    return DependentDelete(last, not_deleting, tuple(owners))


def _owner_states(
    caches: Mapping[str, Any],
    reads: Sequence[Read],
    ref: Mapping[str, Any],
    namespace: str,
    in_store: Callable[[str], bool],
) -> tuple[Obj | None, ...]:
    uid = _uid_of_ref(ref)
    states: list[Obj | None] = list(cached(caches, uid))
    path = owner_path(ref, namespace)
    if path is not None:
        states += _reads_of(reads, path, uid, str(ref.get("kind") or ""))
    if not in_store(uid):
        states.append(None)
    return tuple(states)


def removes_foreground(method: str, body: Any) -> bool:
    """Whether a request is a PATCH setting finalizers without ``foregroundDeletion`` (the
    collector's ``removeFinalizer``)."""
    if method != "PATCH" or not isinstance(body, Mapping):
        return False
    meta = body.get("metadata")
    return (
        isinstance(meta, Mapping)
        and isinstance(meta.get("finalizers"), list)
        and FOREGROUND not in meta["finalizers"]
    )


def foreground_removal(
    caches: Mapping[str, Any], reads: Sequence[Read], path: str, key: str
) -> ForegroundRemoval:
    """Gather, as the PATCH of ``path`` is sent, what its rule reads: the states read of the
    object (the sync's ``key`` is its uid) and its dependents in the graph the decision read:
    the objects with a blocking reference to it both in the caches when the sync began and in
    the caches now. An object is in a cache from when the cache first shows it until it is
    gone, once (a relist replaces a cache at once; a uid is never reused), so one shown at both
    moments was shown between them, when the decision read the graph; one shown only now may be
    a cache catching up (a manager back from a partition relists) that the decision never saw,
    and one shown only then may have gone before it."""
    states = cached(caches, key)
    kind = str(states[0].get("kind") or "") if states else ""
    states += [s for s in _reads_of(reads, path, key, kind) if s is not None]
    dependents = []
    for name, cache in caches.items():
        began = {_uid(obj) for obj in _blocking(cache.items, key)}
        for obj in _blocking(cache.informer.indexer.list(), key):
            if _uid(obj) in began:
                dependents.append(_kinded(obj, KINDS.get(name, "")))
    return ForegroundRemoval(tuple(states), tuple(dependents))


def _blocking(objs: Iterable[Obj], owner_uid: str) -> Iterable[Obj]:
    for obj in objs:
        refs = (obj.get("metadata") or {}).get("ownerReferences") or []
        if any(r.get("uid") == owner_uid and r.get("blockOwnerDeletion") for r in refs):
            yield obj


def collect_sent(
    sync: Sync, method: str, path: str, body: Any, history: StoreHistory
) -> DependentDelete | ForegroundRemoval | None:
    """The collector's judged requests, as they are sent: a DELETE of a dependent, or a PATCH
    taking ``foregroundDeletion`` off an owner."""
    if method == "DELETE":
        return dependent_delete(sync.caches, sync.reads, path, body, history.holds)
    if removes_foreground(method, body):
        return foreground_removal(sync.caches, sync.reads, path, sync.key)
    return None


RULES = LoopRules(GC_LOOP, sent=collect_sent, keeps_reads=True)
"""The collector's delete worker as a judged loop."""
