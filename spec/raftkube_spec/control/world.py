"""The API state the loops act on, the requests they make, and how the API server answers them.

:class:`World` is a snapshot of every object, sorted by key. A loop's view is a World too: the
snapshot its informers last delivered, so a view is always some earlier state of the API
(a consistent one: upstream's informers lag per resource, which only widens the set of stale
views; the simplification is stated in the package's docstring).

Requests are the four an abstract controller needs: :class:`Create`, :class:`Patch` (a merge
patch of named fields, with the object's uid as a precondition), :class:`Delete` (with the
propagation policy, graceful for bound pods) and :class:`Bind` (the ``pods/binding``
subresource). :func:`apply` answers each as upstream's registry would in these respects, and
refuses (returns None) what upstream refuses: a create of an existing key or into a missing or
terminating namespace (NamespaceLifecycle admission), anything on a missing object or one whose
uid changed, a bind of a pod that is already bound (``pod ... is already assigned to node``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import attrs

from raftkube_spec.control.records import (
    Key,
    Lease,
    Namespace,
    Node,
    Pod,
    Record,
    Ref,
    ReplicaSet,
    Service,
)

R = TypeVar("R")

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
NAMESPACE_FINALIZER = "kubernetes"


@attrs.frozen(cache_hash=True)
class World:
    objects: tuple[Record, ...] = ()
    serial: int = 0
    """Creates so far: the server draws each new uid from it (uids are never reused)."""

    def get(self, key: Key) -> Record | None:
        for obj in self.objects:
            if obj.meta.key == key:
                return obj
        return None

    def of(self, kind: type[R]) -> Iterator[R]:
        return (o for o in self.objects if isinstance(o, kind))

    @property
    def nodes(self) -> tuple[Node, ...]:
        return tuple(self.of(Node))

    @property
    def pods(self) -> tuple[Pod, ...]:
        return tuple(self.of(Pod))

    @property
    def replica_sets(self) -> tuple[ReplicaSet, ...]:
        return tuple(self.of(ReplicaSet))

    @property
    def services(self) -> tuple[Service, ...]:
        return tuple(self.of(Service))

    @property
    def leases(self) -> tuple[Lease, ...]:
        return tuple(self.of(Lease))

    def by_uid(self, uid: str) -> Record | None:
        return next((o for o in self.objects if o.meta.uid == uid), None)

    def put(self, obj: Record) -> World:
        rest = [o for o in self.objects if o.meta.key != obj.meta.key]
        return World(tuple(sorted((*rest, obj), key=lambda r: r.meta.key)), self.serial)

    def remove(self, key: Key) -> World:
        return World(tuple(o for o in self.objects if o.meta.key != key), self.serial)


@attrs.frozen
class Create:
    obj: Record


@attrs.frozen
class Patch:
    """Set ``fields`` (record field names; ``meta.X`` for metadata) of the object at ``ref``."""

    ref: Ref
    fields: tuple[tuple[str, Any], ...]


@attrs.frozen
class Delete:
    ref: Ref
    propagation: str = "Background"
    """``Background``, ``Foreground`` or ``Orphan``."""
    force: bool = False
    """Grace period 0: the pod goes now (the kubelet's final delete after its containers stop)."""


@attrs.frozen
class Bind:
    pod: Ref
    node: str


Request = Create | Patch | Delete | Bind


def _live(world: World, ref: Ref) -> Record | None:
    obj = world.get(ref.key)
    return obj if obj is not None and obj.meta.uid == ref.uid else None


def _namespace_open(world: World, namespace: str) -> bool:
    if namespace == "":
        return True
    ns = world.get(("Namespace", "", namespace))
    return isinstance(ns, Namespace) and not ns.meta.deleting


def _set(obj: Record, fields: tuple[tuple[str, Any], ...]) -> Record:
    changes: dict[str, Any] = {}
    meta_changes: dict[str, Any] = {}
    for name, value in fields:
        if name.startswith("meta."):
            meta_changes[name[5:]] = value
        else:
            changes[name] = value
    if meta_changes:
        changes["meta"] = attrs.evolve(obj.meta, **meta_changes)
    return attrs.evolve(obj, **changes)


def _settle(world: World, obj: Record) -> World:
    """Store ``obj``, or remove it if it is being deleted and nothing holds it any more."""
    if obj.meta.deleting and not obj.meta.finalizers and not _graceful(obj):
        return world.remove(obj.meta.key)
    return world.put(obj)


def _graceful(obj: Record) -> bool:
    """A bound pod stays until its kubelet confirms its containers stopped (a forced delete)."""
    return isinstance(obj, Pod) and obj.node != ""


def apply(world: World, request: Request) -> World | None:
    """The state after ``request``, or None if the API server refuses it."""
    if isinstance(request, Create):
        obj = request.obj
        if world.get(obj.meta.key) is not None or not _namespace_open(world, obj.meta.namespace):
            return None
        serial = world.serial + 1
        changes: dict[str, Any] = {"uid": obj.meta.uid or f"{obj.meta.kind.lower()}-{serial}"}
        if isinstance(obj, Namespace) and obj.meta.finalizers == ():
            changes["finalizers"] = (NAMESPACE_FINALIZER,)
        obj = attrs.evolve(obj, meta=attrs.evolve(obj.meta, **changes))
        return attrs.evolve(world.put(obj), serial=serial)
    if isinstance(request, Bind):
        pod = _live(world, request.pod)
        if not isinstance(pod, Pod) or pod.node:
            return None
        return world.put(attrs.evolve(pod, node=request.node))
    found = _live(world, request.ref)
    if found is None:
        return None
    if isinstance(request, Patch):
        changed = _set(found, request.fields)
        return world if changed == found else _settle(world, changed)
    if request.force:
        return world.remove(found.meta.key)
    finalizers = tuple(f for f in found.meta.finalizers if f not in (FOREGROUND, ORPHAN))
    if request.propagation == "Foreground":
        finalizers = (*finalizers, FOREGROUND)
    elif request.propagation == "Orphan":
        finalizers = (*finalizers, ORPHAN)
    marked = attrs.evolve(
        found, meta=attrs.evolve(found.meta, deleting=True, finalizers=finalizers)
    )
    return _settle(world, marked)
