"""Request conformance of the garbage collector: each delete it sends is one the spec's allows.

The rules here are pure functions of what the collector had read when it sent the request;
the suite's monitor (:mod:`raftkube_fuzz.cluster.gc_monitor`) collects it. The spec is
:class:`raftkube_spec.control.gc.GarbageCollector`, and the rules run *it* on a world built
from those reads and look for the request among the ones it makes.

**The collector's view.** Upstream's collector (and the real one,
:mod:`raftkube.controllers.garbagecollector`) decides from two sources: its dependency graph,
which its informers' handlers keep and which is therefore exactly their caches (the handlers
run as the cache takes each change), and live reads: ``attemptToDeleteItem`` GETs the object
itself, then each owner its ``ownerReferences`` name (``classifyReferences``), skipping the
owners it already knows to be gone (``absentOwnerCache``: learned from a 404, a different uid,
or the graph's deletion events). The spec's view is one consistent snapshot; these sources are
not one, but they only move forward (an object is created, may be marked for deletion, and
goes; a uid is never reused), so the rule asks whether *some* choice, for each object, of one
state the collector had read of it makes the spec send the request. The states read of an
object are:

* its cached version when the sync began (the graph the sync's first decision read);
* what each GET of it in the same sync answered (a 404, or an object with another uid, says
  that object is gone);
* for an owner: gone, if the store no longer held its uid when the request was sent (what the
  absent-owner memory and the graph's deletions remember is always of this kind).

An owner the collector neither had in its caches nor read, and that the store still holds, is
*not* absent: absence from one informer's cache is not absence when the caches are not one
snapshot (the very reason upstream confirms with a GET), so a collector that deleted on it is
caught.

* **A dependent's delete** (:func:`dependent_delete`; upstream's ``deleteObject`` from
  ``attemptToDeleteItem``). The spec deletes an object that is not being deleted when every
  owner it names is absent from its view (background collection), or when one of its owners
  is being deleted with the ``foregroundDeletion`` finalizer (it deletes such an owner's
  dependents). So a DELETE is allowed iff some state read of the object shows it not being
  deleted and, with its ``ownerReferences`` as last read, every owner has a state read in
  which it is gone, or some owner has one in which it is being deleted in the foreground.
  The propagation policy is not judged (the spec's deletes are all in the background; upstream
  picks Foreground when an owner waits and the object has dependents, else what the object's
  own finalizers ask). Upstream's ``classifyReferences`` calls an owner being deleted in the
  foreground *waiting* whatever the reference's ``blockOwnerDeletion``; the real code does so
  only for a blocking reference (it calls the other *solid* and leaves the dependent until the
  owner is gone). That sends fewer deletes, never one the spec does not send.
* **The removal of ``foregroundDeletion``** from an owner (:func:`foreground_removal`;
  upstream's ``processDeletingDependentsItem`` then ``removeFinalizer``). The spec removes it
  from an owner being deleted in the foreground once its view shows no dependent of it, one
  being deleted included. A PATCH that drops the finalizer is allowed iff some state read of
  the owner shows it being deleted in the foreground and no object with a
  ``blockOwnerDeletion`` reference naming it was in the caches both when the sync began and
  when the PATCH was sent (the graph ``processDeletingDependentsItem`` read, in between, then
  held it too: :func:`raftkube_fuzz.cluster.gc_monitor.foreground_removal` says why). Only
  blocking references count: the spec models every reference as blocking (its dependents
  being deleted still block "as ``blockOwnerDeletion`` makes it"), and upstream does not wait
  for the others (a node's Lease names its Node without blocking, as the node authorizer
  insists). Upstream decides this from its graph alone, with no live read, so a collector
  whose pod cache still lags (a manager back from a partition, relisting) ends a foreground
  deletion while pods remain: allowed here, as the spec allows it from that view (the pods
  then go in the background once the owner is gone). So is the other way a dependent
  reaches the caches too late: created *after* its owner was marked, by a ReplicaSet
  controller whose cache still showed the owner live, and taken by the collector's pod cache
  only after the decision (with slow manager watches, seed 452: ``rs-b`` marked at store
  revision 297, its pods created at 319 and 322, the collector's sync began with its pods at
  299 and took the first pod during ``removeFinalizer``'s GET, so the caches at sending
  showed it and the graph the decision read did not). Upstream's design names this an
  unhandled case (the synchronous garbage collection proposal: a collector that sees the
  owner marked before it sees all its dependents created removes the finalizer early;
  foreground deletion is best effort, the dependents still go). The real collector does
  what upstream's does; a rule judging the caches at sending alone named it a violation.

What this cannot see: removals of references from dependents and the ``orphan`` finalizer's
work (not judged), and deletes the collector should have sent and did not (eventual stable
reconciliation catches those).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from raftkube_fuzz.checks.cluster_state import spec_meta
from raftkube_spec.control.gc import GarbageCollector
from raftkube_spec.control.records import (
    Deployment,
    Lease,
    Meta,
    Node,
    OwnerRef,
    Pod,
    Record,
    ReplicaSet,
    ServiceAccount,
)
from raftkube_spec.control.world import FOREGROUND, Delete, Patch, World

Obj = Mapping[str, Any]

SPEC = GarbageCollector()
"""The spec's collector, as it is (not a mutant's)."""


def gc_record(obj: Obj) -> Record:
    """An object as the spec's record. The spec's collector reads metadata only (its
    ``gc-selects-by-label`` mutant also a ReplicaSet's selector), so a kind the spec has no
    record of is carried as the metadata-only :class:`ServiceAccount` record under its own
    kind."""
    meta = spec_meta(obj, str(obj.get("kind") or ""))
    if meta.kind == "Pod":
        return Pod(meta)
    if meta.kind == "ReplicaSet":
        spec = obj.get("spec") or {}
        selector = tuple(sorted(((spec.get("selector") or {}).get("matchLabels") or {}).items()))
        return ReplicaSet(meta, int(spec.get("replicas", 1) or 0), selector, ())
    if meta.kind == "Deployment":
        return Deployment(meta, int((obj.get("spec") or {}).get("replicas", 1) or 0), ())
    if meta.kind == "Node":
        return Node(meta)
    if meta.kind == "Lease":
        return Lease(meta)
    return ServiceAccount(meta)


def foreground(record: Record | None) -> bool:
    """Being deleted in the foreground."""
    return record is not None and record.meta.deleting and FOREGROUND in record.meta.finalizers


@attrs.frozen
class OwnerReads:
    """The states the collector had read of one owner a dependent names: each a record, or
    None for gone (a 404, another uid there, or no longer in the store)."""

    ref: OwnerRef
    states: tuple[Record | None, ...]

    def describe(self) -> str:
        seen = []
        for state in self.states:
            if state is None:
                seen.append("gone")
            elif foreground(state):
                seen.append("being deleted in the foreground")
            elif state.meta.deleting:
                seen.append(f"being deleted (finalizers {list(state.meta.finalizers)})")
            else:
                seen.append("live")
        return (
            f"{self.ref.kind} {self.ref.name} ({self.ref.uid}): "
            f"{', '.join(sorted(set(seen))) or 'never read, and the store holds it'}"
        )


def _choose(owner: OwnerReads, namespace: str, prefer_gone: bool) -> Record | None:
    """One state of the owner for the spec's world (None: left out, gone). An owner with no
    state read is one the store holds and the collector never saw: there, not deleting."""
    gone = None in owner.states
    fg = next((s for s in owner.states if foreground(s)), None)
    if gone and (prefer_gone or fg is None):
        return None
    live = next((s for s in owner.states if s is not None), None)
    ref = owner.ref
    return fg or live or ServiceAccount(Meta(ref.kind, ref.name, namespace, ref.uid))


def _spec_sends(world: World, wanted: Delete | Patch) -> bool:
    _, requests = SPEC.sync(None, world, 0)
    for request in requests:
        if type(request) is not type(wanted) or request.ref != wanted.ref:
            continue
        if isinstance(request, Delete):
            return True
        fields = dict(request.fields) if isinstance(request, Patch) else {}
        if fields.keys() == {"meta.finalizers"}:
            return FOREGROUND not in fields["meta.finalizers"]
    return False


def dependent_delete(
    dependent: Record, states_not_deleting: bool, owners: Sequence[OwnerReads]
) -> str | None:
    """A DELETE of ``dependent`` (its ``ownerReferences`` as last read); whether some state read
    of it showed it not being deleted; what was read of each owner it names. None when the
    spec's collector sends that delete from some choice of those states (module docstring)."""
    if not states_not_deleting:
        return "every state of it the collector read shows it already being deleted"
    if not dependent.meta.owners:
        return "it names no owner"
    by_uid = {o.ref.uid: o for o in owners}
    unknown = sorted(r.uid for r in dependent.meta.owners if r.uid not in by_uid)
    if unknown:
        return f"nothing was read of its owners {unknown}"
    subject = attrs.evolve(dependent, meta=attrs.evolve(dependent.meta, deleting=False))
    wanted = Delete(subject.meta.ref)
    # Two choices cover every one: the spec deletes when all owners are gone (so prefer gone)
    # or when one owner is deleted in the foreground (so prefer that).
    for prefer_gone in (True, False):
        namespace = dependent.meta.namespace
        chosen = [_choose(by_uid[r.uid], namespace, prefer_gone) for r in dependent.meta.owners]
        world = World(tuple(sorted({r.meta.key: r for r in (subject, *(c for c in chosen if c))}
                                   .values(), key=lambda r: r.meta.key)))  # fmt: skip
        if _spec_sends(world, wanted):
            return None
    told = "; ".join(by_uid[r.uid].describe() for r in dependent.meta.owners)
    return (
        "the spec deletes an object only when every owner it names is gone or one of them "
        f"is being deleted in the foreground, and what the collector read of its owners was: "
        f"{told}"
    )


def foreground_removal(owner_states: Sequence[Record], dependents: Sequence[Record]) -> str | None:
    """A PATCH dropping ``foregroundDeletion`` from an owner; ``owner_states``: what the
    collector read of it; ``dependents``: the objects the caches showed, when it was sent,
    with a blocking reference to it."""
    fg = next((s for s in owner_states if foreground(s)), None)
    if fg is None:
        return "no state of it the collector read shows it being deleted in the foreground"
    world = World(tuple(sorted({r.meta.key: r for r in (fg, *dependents)}.values(),
                               key=lambda r: r.meta.key)))  # fmt: skip
    if _spec_sends(world, Patch(fg.meta.ref, ())):
        return None
    names = sorted(f"{d.meta.kind} {d.meta.namespace}/{d.meta.name}" for d in dependents)
    return (
        "the spec removes it only once no dependent is left, and the collector's caches still "
        f"showed {', '.join(names[:5])} blocking it"
    )
