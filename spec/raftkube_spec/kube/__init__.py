"""Executable sequential specification of the Kubernetes object API, on a revisioned store.

Theory of operation
-------------------
The model is one immutable value, :class:`KubeState` (the store revision, the live objects in
store order, the compaction point and the retained history of changes), and one total pure
function ``apply(state, request) -> (state, result)``. Results are response values or
:class:`KubeError` values carrying upstream's status reason, HTTP code and message; a refused
request and every read return the very same state. :func:`invariants` lists what must hold in
every state; :class:`Model` puts ``apply`` in the shape a linearizability checker wants and
accepts every answer upstream allows where it allows a choice.

What it promises, as upstream's generic registry on etcd does: each write to the store bumps
the revision by exactly one and stamps the object it writes with it as resourceVersion (a
request makes one write, or none when it changes nothing, except the deletion of a pod whose
grace period is over: it marks the pod, then removes it); reads never move the revision; a
create of an existing name is AlreadyExists; a stale resourceVersion on an update or in a
delete precondition is a Conflict; an update of a missing object is NotFound (a PUT that names
the object's uid fails the store's uid precondition first, a Conflict, as upstream); uid and
creationTimestamp never change; generation counts ``spec`` changes; deletionTimestamp, once
set, stays until the object goes (a pod's may only move earlier), and no finalizer may be
added by an update while it is set; an object held by finalizers goes in the write that
removes the last of them; lists come back in store key order with the list's resourceVersion;
a watch from ``N`` replays every change after ``N`` in order; once ``N`` is compacted away,
``apply`` refuses it with 410 as the store does, and :class:`Model` also accepts the replay
upstream's watch cache may serve from its own window.

The model owns an object's metadata bookkeeping (name from ``generateName``, namespace, uid,
creationTimestamp, resourceVersion, generation, deletionTimestamp and its grace period,
finalizers set by the propagation policy) and treats the rest of the content as opaque JSON: it
neither defaults nor validates kinds. Time, uids and generated name suffixes are inputs of the
requests that need them; the model has no clock and no randomness. The simplifications, each
stated where it is made: every resource tracks generation, allows unconditional update and not
create-on-update; only pods delete gracefully; label selectors are equality maps; patches are
JSON merge patches (other patch types reach the model as the update they compute).

:mod:`raftkube_spec.kube.wire` reads a real server's JSON answers as the model's results, so a
side-by-side check compares the two by equality.

Rules for this package: pure and deterministic; standard library and ``attrs`` only; frozen
``attrs`` state holding tuples and text; ``mypy --strict`` clean.
"""

from raftkube_spec.kube.deletion import FOREGROUND_FINALIZER, ORPHAN_FINALIZER
from raftkube_spec.kube.errors import KubeError, Reason
from raftkube_spec.kube.invariants import invariants
from raftkube_spec.kube.model import Model
from raftkube_spec.kube.objects import JSONObject, Object, ObjectKey, normalize
from raftkube_spec.kube.ops import apply
from raftkube_spec.kube.requests import (
    Compact,
    Create,
    Delete,
    Get,
    List,
    Patch,
    Preconditions,
    PropagationPolicy,
    Request,
    ResourceVersionMatch,
    Selector,
    Update,
    Watch,
    selector,
)
from raftkube_spec.kube.responses import (
    CompactResponse,
    DeleteResponse,
    ListResponse,
    ObjectResponse,
    Response,
    Result,
    WatchResponse,
)
from raftkube_spec.kube.state import Change, EventType, KubeState, WatchEvent, initial_state
from raftkube_spec.kube.timefmt import rfc3339

__all__ = [
    "FOREGROUND_FINALIZER",
    "ORPHAN_FINALIZER",
    "Change",
    "Compact",
    "CompactResponse",
    "Create",
    "Delete",
    "DeleteResponse",
    "EventType",
    "Get",
    "JSONObject",
    "KubeError",
    "KubeState",
    "List",
    "ListResponse",
    "Model",
    "Object",
    "ObjectKey",
    "ObjectResponse",
    "Patch",
    "Preconditions",
    "PropagationPolicy",
    "Reason",
    "Request",
    "ResourceVersionMatch",
    "Response",
    "Result",
    "Selector",
    "Update",
    "Watch",
    "WatchEvent",
    "WatchResponse",
    "apply",
    "initial_state",
    "invariants",
    "normalize",
    "rfc3339",
    "selector",
]
