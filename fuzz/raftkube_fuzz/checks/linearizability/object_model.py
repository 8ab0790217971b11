"""The Kubernetes object API as one object's sequential model, for the linearizability search.

The cluster suite checks the user's requests (:mod:`raftkube_fuzz.cluster.object_history`):
creates, merge patches of ``spec`` and deletes of a few named objects. One search per object
key (kind, namespace, name), because a single-object answer reveals only that object's
``resourceVersion``, never the store's revision, so objects are independent (linearizability
is compositional, Herlihy and Wing) and the searches stay small; what crosses keys, creates
in real-time order getting growing ``resourceVersion``s, is checked apart
(:func:`check_creates_in_order`).

What the model tracks per key is what a client can tell apart and the user's requests
decide: whether the object exists, its uid, a lower bound of its ``resourceVersion``, a
digest of the ``spec`` fields the user sets (:func:`digest_of`), and whether it is being
deleted (``deletionTimestamp`` set). Small, frozen and hashable, so the search's memo stays
cheap.

**Other writers.** The user is not the store's only writer: controllers write status, the
garbage collector removes a foreground-deleted object once its dependents are gone, a
kubelet ends a pod's graceful deletion and node lifecycle evicts pods. Their requests are not
in the history, so the model allows, before any operation, what they can do to the user's
objects and nothing more: bump the ``resourceVersion`` (a status or metadata write), delete
an object already being deleted (the last finalizer removed), and mark or delete a Pod (the
kubelet, eviction). Nobody but the user creates these names or writes the ``spec`` fields the
digest covers. What the model can then still refuse: a create answered 201 while the object
must exist or 409 while it cannot, a patch or delete answered 404 while the object must
exist, an answer with another object's uid, a ``resourceVersion`` that went back, a write
that changed the tracked ``spec`` without a new ``resourceVersion``, a ``deletionTimestamp``
that went away, a foreground delete (or one of an object finalizers hold) that removed it at
once. A background delete may leave a non-Pod object behind, marked: another writer may have
added a finalizer (none of the suite's do, but the model does not know which writes added
what).

**The server's choices come from its answer.** uid and ``resourceVersion`` are picked by the
server; which of the moves above the other writers made is not visible either. As in
:class:`raftkube_spec.kube.Model` (Porcupine's ``Step(state, input, output)``), the recorded
answer is part of the request (:meth:`ObjectModel.normalized` puts it in ``seen``), and
:meth:`ObjectModel.apply` answers it back if the state allows it, else an
:class:`Impossible` that says why, which never matches. An operation whose answer was lost
(``seen`` None) is applied as the write it asked for, with what the server would pick left
unknown (a uid of None matches any uid; the ``resourceVersion`` stays a lower bound).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import attrs

from raftkube_fuzz.checks.history import Ok, Unknown
from raftkube_fuzz.checks.linearizability.model import Model
from raftkube_fuzz.checks.linearizability.normalise import Entry
from raftkube_fuzz.checks.linearizability.refute import check_revisions_never_go_back

POD = "Pod"


def project(actual: Any, shape: Any) -> Any:
    """``actual`` cut down to the fields ``shape`` sets: what a server's defaults (a
    container's ``imagePullPolicy``, a Service's ``clusterIP``) add is left out, so the
    answer's digest is comparable with the request's."""
    if isinstance(shape, dict) and isinstance(actual, dict):
        return {k: project(actual.get(k), v) for k, v in shape.items()}
    if isinstance(shape, list) and isinstance(actual, list) and len(shape) == len(actual):
        return [project(a, s) for a, s in zip(actual, shape, strict=True)]
    return actual


def digest_of(spec: Any) -> str:
    """A short, process-independent digest of a ``spec`` (Python's ``hash`` of a string is
    salted per process, which would make states differ between a run and its replay)."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


# --- answers --------------------------------------------------------------------------------


@attrs.frozen
class Created:
    """201: the new object's uid, ``resourceVersion`` and the digest of its ``spec``."""

    uid: str
    rv: int
    digest: str


@attrs.frozen
class AlreadyExists:
    """409 AlreadyExists."""


@attrs.frozen
class NotFound:
    """404 NotFound."""


@attrs.frozen
class Patched:
    """200 to a patch: the object's uid, ``resourceVersion``, ``spec`` digest, and whether
    it carries a ``deletionTimestamp``."""

    uid: str
    rv: int
    digest: str
    deleting: bool


@attrs.frozen
class Deleted:
    """200 to a delete: the object as the server answered it, ``marked`` when it stays
    (``deletionTimestamp`` set: finalizers or a grace period hold it). An answer that is a
    ``Status``, not the object, has uid ``""`` and rv 0 (neither is then judged)."""

    uid: str
    rv: int
    marked: bool


@attrs.frozen
class Impossible:
    """The model's answer when the recorded one cannot follow from the state: never matches
    a recorded answer, and says why in the search's report."""

    why: str


Seen = Created | AlreadyExists | NotFound | Patched | Deleted
Answer = Seen | Impossible


# --- requests -------------------------------------------------------------------------------


@attrs.frozen
class ObjectRequest:
    """One of the user's requests on one object: ``verb`` is ``create``, ``patch`` (a merge
    patch of ``spec``) or ``delete``; ``digest`` is the digest of the ``spec`` it sends
    (create, patch); ``foreground`` a delete's propagation. ``seen`` is the server's answer,
    filled in by :meth:`ObjectModel.normalized` (see the module docstring)."""

    verb: str
    kind: str
    namespace: str
    name: str
    digest: str = ""
    foreground: bool = False
    seen: Seen | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


# --- the model ------------------------------------------------------------------------------


@attrs.frozen(cache_hash=True)
class ObjectState:
    """One object key as clients can tell it: ``rv`` is a lower bound of its
    ``resourceVersion`` (other writers may have written since), kept while it is absent too,
    since a re-creation gets a newer one; ``uid`` None when a lost create made it."""

    present: bool = False
    uid: str | None = None
    rv: int = 0
    digest: str | None = None
    deleting: bool = False


ABSENT = ObjectState()


def others_may_delete(kind: str, state: ObjectState) -> bool:
    """Whether writers outside the history may have removed the object: a Pod (its kubelet,
    an eviction), or anything already being deleted (its last finalizer removed)."""
    return state.present and (kind == POD or state.deleting)


def _same_uid(state: ObjectState, uid: str) -> str | None:
    if state.uid is not None and uid and state.uid != uid:
        return f"the object's uid is {state.uid}, the answer shows {uid}"
    return None


def _not_older(state: ObjectState, rv: int) -> str | None:
    if rv and rv < state.rv:
        return f"resourceVersion {rv} is older than {state.rv}, already seen"
    return None


def _create(state: ObjectState, req: ObjectRequest) -> tuple[ObjectState, Answer]:
    seen = req.seen
    may_be_gone = not state.present or others_may_delete(req.kind, state)
    if seen is None:  # lost answer: the create as a write, if it can be one
        if not may_be_gone:
            return state, AlreadyExists()
        return ObjectState(True, None, state.rv, req.digest, False), AlreadyExists()
    if isinstance(seen, AlreadyExists):
        if not state.present:
            return state, Impossible("the object does not exist and nobody else creates it")
        return state, seen
    if not isinstance(seen, Created):
        return state, Impossible(f"a create cannot answer {type(seen).__name__}")
    if not may_be_gone:
        return state, Impossible("the object exists and nobody else deletes it")
    if seen.rv <= state.rv:
        return state, Impossible(f"a new object at resourceVersion {seen.rv}, not after {state.rv}")
    if state.uid is not None and seen.uid == state.uid:
        return state, Impossible(f"a new object with the uid {seen.uid} of the one before")
    if seen.digest != req.digest:
        return state, Impossible(f"spec digest {seen.digest}, the request sent {req.digest}")
    return ObjectState(True, seen.uid, seen.rv, seen.digest, False), seen


def _gone(state: ObjectState, req: ObjectRequest) -> tuple[ObjectState, Answer]:
    """A 404 to a patch or a delete."""
    if state.present and not others_may_delete(req.kind, state):
        return state, Impossible("the object exists and nobody else deletes it")
    return ObjectState(rv=state.rv), NotFound()


def _patch(state: ObjectState, req: ObjectRequest) -> tuple[ObjectState, Answer]:
    seen = req.seen
    if seen is None:
        if not state.present:
            return state, NotFound()
        return attrs.evolve(state, digest=req.digest), NotFound()
    if isinstance(seen, NotFound):
        return _gone(state, req)
    if not isinstance(seen, Patched):
        return state, Impossible(f"a patch cannot answer {type(seen).__name__}")
    if not state.present:
        return state, Impossible("the object does not exist and nobody else creates it")
    why = _same_uid(state, seen.uid) or _not_older(state, seen.rv)
    if why is None and seen.digest != req.digest:
        why = f"spec digest {seen.digest}, the patch sent {req.digest}"
    if why is None and seen.rv == state.rv and state.digest not in (None, req.digest):
        why = f"the spec changed ({state.digest} to {req.digest}) at the same resourceVersion"
    if why is None and state.deleting and not seen.deleting:
        why = "the object was being deleted and the answer has no deletionTimestamp"
    if why is None and seen.deleting and not state.deleting and req.kind != POD:
        why = "a patch cannot start a deletion, and nobody else deletes it"
    if why is not None:
        return state, Impossible(why)
    return ObjectState(True, seen.uid, seen.rv, seen.digest, seen.deleting), seen


def _delete(state: ObjectState, req: ObjectRequest) -> tuple[ObjectState, Answer]:
    seen = req.seen
    if seen is None:
        if not state.present:
            return state, NotFound()
        if req.kind == POD or req.foreground or state.deleting:
            return attrs.evolve(state, deleting=True), NotFound()
        return ObjectState(rv=state.rv), NotFound()
    if isinstance(seen, NotFound):
        return _gone(state, req)
    if not isinstance(seen, Deleted):
        return state, Impossible(f"a delete cannot answer {type(seen).__name__}")
    if not state.present:
        return state, Impossible("the object does not exist and nobody else creates it")
    why = _same_uid(state, seen.uid) or _not_older(state, seen.rv)
    if why is None and not seen.marked and req.kind != POD and (req.foreground or state.deleting):
        why = "a foreground delete, or one of an object finalizers hold, removed it at once"
    if why is not None:
        return state, Impossible(why)
    if seen.marked:
        return ObjectState(True, seen.uid, seen.rv, state.digest, True), seen
    return ObjectState(rv=max(state.rv, seen.rv)), seen


class ObjectModel(Model[ObjectState, ObjectRequest, Answer]):
    """One object key of the Kubernetes object API, under the user's requests and the
    moves other writers may make (see the module docstring)."""

    name = "object"

    def init(self) -> ObjectState:
        return ABSENT

    def apply(self, state: ObjectState, request: ObjectRequest) -> tuple[ObjectState, Answer]:
        if request.verb == "create":
            return _create(state, request)
        if request.verb == "patch":
            return _patch(state, request)
        if request.verb == "delete":
            return _delete(state, request)
        raise ValueError(f"{request.verb!r}: not create, patch or delete")

    def matches(self, request: ObjectRequest, model_result: Answer, recorded: Answer) -> bool:
        return not isinstance(model_result, Impossible) and model_result == recorded

    def normalized(self, request: ObjectRequest, outcome: Ok | Unknown) -> ObjectRequest | None:
        # The history's outcome type is the KV store's; an object history holds answers.
        seen: Any = outcome.result if isinstance(outcome, Ok) else None
        return attrs.evolve(request, seen=seen)

    def revision(self, state: ObjectState) -> int:
        """The lower bound of the object's ``resourceVersion``: no answer showing an older one
        can be placed after this state (every answer must show at least it)."""
        return state.rv

    def result_revision(self, result: Answer) -> int:
        """The object's ``resourceVersion`` the answer shows (0 for a 404 or a 409, which
        show none). On one key these never go back in real-time order, which the search's
        revision checks and cuts rest on; they are not the store's revision, though (a patch
        that changed nothing answers the object's old one, a delete the removed object's),
        so across keys only creations are compared (:func:`check_creates_in_order`)."""
        return result.rv if isinstance(result, Created | Patched | Deleted) else 0

    def keys_of(self, request: ObjectRequest) -> list[str]:
        return [request.key]


OBJECT_MODEL = ObjectModel()


def check_creates_in_order(entries: Sequence[Entry]) -> None:
    """Across keys: a create called after another returned gets a newer ``resourceVersion``
    (both are writes, and the store's revision only grows). Raises a Violation."""
    check_revisions_never_go_back([e for e in entries if isinstance(e.expected, Created)], 0)
