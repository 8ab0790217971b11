"""The garbage collector: ownerReferences, and background, foreground and orphan deletion.

Theory of operation
-------------------
``GarbageCollector.sync(memory, view, now)`` works on the dependency graph the view's
``ownerReferences`` define (upstream's ``GraphBuilder``), an edge per reference, matched by uid:

* **Background**: an object that is not being deleted and whose every owner is absent from the
  view is deleted (upstream's ``attemptToDeleteItem`` with all owners dangling). If only some
  owners are gone, the references to them are patched out and the object stays.
* **Foreground**: an owner being deleted with the ``foregroundDeletion`` finalizer has each of
  its dependents deleted; once none is left in the view (a dependent being deleted still
  blocks, as ``blockOwnerDeletion`` makes it), the finalizer is removed and the owner goes.
* **Orphan**: an owner being deleted with the ``orphan`` finalizer has its reference removed
  from every dependent, then the finalizer removed.

Why a stale view is safe here: uids are never reused, and a view is a consistent snapshot of an
earlier state, so an owner absent from a view that shows its dependent is absent for good.
Upstream's informers are per resource and not mutually consistent, which is why it confirms a
dangling owner with a live GET before deleting; in this model that GET would always agree.

Dependents are found by ownerReferences only (:func:`dependents_by_reference`). Selecting
them by labels is the ``gc-selects-by-label`` mutant: a label is not ownership, and an object
that merely matches an owner's selector must not go with it.

Promise: an object is deleted by the collector only when each of its owners is gone or being
deleted in the foreground (GCDeletesOnlyDependents); once deletions stop, no object outlives all
its owners and no owner stays stuck on its finalizer.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from raftkube_spec.control.records import Record, ReplicaSet, matches
from raftkube_spec.control.world import FOREGROUND, ORPHAN, Delete, Patch, Request, World

Dependents = Callable[[Record, World], tuple[Record, ...]]


def dependents_by_reference(owner: Record, view: World) -> tuple[Record, ...]:
    return tuple(o for o in view.objects if any(r.uid == owner.meta.uid for r in o.meta.owners))


def dependents_by_label(owner: Record, view: World) -> tuple[Record, ...]:
    """The mutant's graph: whatever the owner's selector matches."""
    if not isinstance(owner, ReplicaSet):
        return dependents_by_reference(owner, view)
    return tuple(
        o
        for o in view.objects
        if o.meta.namespace == owner.meta.namespace and matches(owner.selector, o.meta.labels)
    )


@attrs.frozen
class GarbageCollector:
    dependents: Dependents = dependents_by_reference

    def sync(self, memory: None, view: World, now: int) -> tuple[None, tuple[Request, ...]]:
        requests: list[Request] = []
        for obj in view.objects:
            if obj.meta.deleting:
                requests += self._finalize(obj, view)
            elif obj.meta.owners:
                requests += self._orphaned(obj, view)
        return None, tuple(requests)

    def _orphaned(self, obj: Record, view: World) -> list[Request]:
        live = tuple(r for r in obj.meta.owners if view.by_uid(r.uid) is not None)
        if not live:
            return [Delete(obj.meta.ref)]
        if live != obj.meta.owners:
            return [Patch(obj.meta.ref, (("meta.owners", live),))]
        return []

    def _finalize(self, owner: Record, view: World) -> list[Request]:
        finalizers = owner.meta.finalizers
        dependents = self.dependents(owner, view)
        out: list[Request] = []
        if FOREGROUND in finalizers:
            out += [Delete(d.meta.ref) for d in dependents if not d.meta.deleting]
            if not dependents:
                rest = tuple(f for f in finalizers if f != FOREGROUND)
                out.append(Patch(owner.meta.ref, (("meta.finalizers", rest),)))
        elif ORPHAN in finalizers:
            for d in dependents:
                kept = tuple(r for r in d.meta.owners if r.uid != owner.meta.uid)
                out.append(Patch(d.meta.ref, (("meta.owners", kept),)))
            rest = tuple(f for f in finalizers if f != ORPHAN)
            out.append(Patch(owner.meta.ref, (("meta.finalizers", rest),)))
        return out


def selects_by_label() -> GarbageCollector:
    """The ``gc-selects-by-label`` mutant."""
    return GarbageCollector(dependents_by_label)
