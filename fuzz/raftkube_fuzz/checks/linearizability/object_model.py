"""The Kubernetes object API as one object's sequential model, for the linearizability search.

The cluster suite records every single-object request of every API client
(:mod:`raftkube_fuzz.cluster.object_history`): creates, GETs, updates (PUT), patches, deletes,
bindings and evictions, of the user, the controller managers, the schedulers, the kubelets and
kube-proxy. One search per object key (kind, namespace, name), because a single-object answer
reveals only that object's ``resourceVersion``, never the store's revision, so objects are
independent (linearizability is compositional, Herlihy and Wing) and the searches stay small;
what crosses keys, creates in real-time order getting growing ``resourceVersion``s, is checked
apart (:func:`check_creates_in_order`). Lists are judged apart too (:mod:`.list_model`): a
list is a read of many keys at one revision, but its answer names that revision, so each page
is compared with the store's history at it, with no search. What the watches deliver is the
view check's to judge (:mod:`raftkube_fuzz.checks.views`).

**What a state is.** What a client can tell apart: whether the object exists (``present``,
None when an answer left it open: a delete whose answer does not say whether the object went,
an eviction), its uid, its ``resourceVersion`` and a digest of everything else in it (the
object as answered, without ``resourceVersion``), and whether it is being deleted. Every write
that changes an object gives it the store's next revision, so on one key ``resourceVersion``s
of writes only grow; ``rv`` is the object's ``resourceVersion`` when ``exact``, else a strict
lower bound (a write whose answer was lost, a binding or an eviction, which answer a
``Status``, made it newer by an unknown amount). Absent, ``rv`` is the last one seen, since a
re-creation gets a newer one.

**Exact where every writer is recorded.** With every client's requests in the history there
are no invisible moves: a write's new ``resourceVersion`` is newer than every one before; an
update or delete whose ``resourceVersion`` (or uid) precondition matches is applied, and one
whose does not is answered 409 Conflict; a quorum GET (``resourceVersion`` unset) answers the
current ``resourceVersion`` and content; a GET with ``resourceVersion=0`` may be served from
the API server's watch cache (upstream: "any", possibly stale), so it may show an earlier
state, never a later one; a no-op write (nothing changed) answers the current
``resourceVersion`` and content. What the model refutes with that: a lost update (two
updates with one precondition both applied), a stale quorum read, a ``resourceVersion``
reused for other content or going back, a 409 to a matching precondition, a precondition
ignored, a create answered 201 while the object exists, an object coming back from deletion.

**Writers that are not recorded** (:class:`Others`, per key): the API server's own writes. It
creates its startup objects when they are missing (the system namespaces, the default RBAC
policy, the ``kubernetes`` Service and Endpoints: :data:`SERVER_CREATED`), and a create whose
name the server generated (``generateName``) and whose answer was lost put an object under a
name no history knows. For those keys the model allows an invisible create while the object
is absent, and nothing else. A key another unrecorded writer touches (a server-side namespace
deletion, for instance, would delete its contents) must be listed there too, or the check
refuses its histories.

**The server's choices come from its answer.** uid and ``resourceVersion`` are picked by the
server; as in :class:`raftkube_spec.kube.Model` (Porcupine's ``Step(state, input, output)``),
the recorded answer is part of the request (:meth:`ObjectModel.normalized` puts it in
``seen``), and :meth:`ObjectModel.apply` answers it back if the state allows it, else an
:class:`Impossible` that says why, which never matches. An operation whose answer was lost
(``seen`` None) is applied as the write it asked for, with what the server would pick left
unknown.
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


def digest_of(value: Any) -> str:
    """A short, process-independent digest of a JSON value (Python's ``hash`` of a string is
    salted per process, which would make states differ between a run and its replay)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


# --- answers --------------------------------------------------------------------------------


@attrs.frozen
class Seen:
    """A 2xx answer that is the object: its uid, ``resourceVersion``, content digest and
    whether it carries a ``deletionTimestamp``. ``gone`` says whether the object is gone after
    the request: False for reads and most writes; True for a delete that removed it and an
    update that took the last finalizer off an object being deleted (the server answers the
    object at the version it replaced); None for a delete whose answer leaves it open. ``rv``
    0 and uid ``""`` when the answer is a ``Status`` (neither is then judged)."""

    uid: str
    rv: int
    digest: str
    deleting: bool = False
    gone: bool | None = False
    new: bool = False
    """A 201: the request created the object (a create, or a PUT of a kind that allows it)."""
    cached: bool = False
    """Read from a watch cache (a GET with ``resourceVersion=0``): it may be stale."""


@attrs.frozen
class Wrote:
    """201 with a ``Status`` to a binding or an eviction: the pod was written (bound;
    marked for deletion or removed), at a ``resourceVersion`` the answer does not show."""


@attrs.frozen
class NotFound:
    """404 NotFound."""


@attrs.frozen
class AlreadyExists:
    """409 AlreadyExists to a create."""


@attrs.frozen
class Conflict:
    """409 Conflict to a request with a precondition (``resourceVersion`` or uid)."""


@attrs.frozen
class Impossible:
    """The model's answer when the recorded one cannot follow from the state: never matches
    a recorded answer, and says why in the search's report."""

    why: str


Answer = Seen | Wrote | NotFound | AlreadyExists | Conflict
Result = Answer | Impossible

VERBS = ("create", "get", "update", "patch", "delete", "bind", "evict")


# --- requests -------------------------------------------------------------------------------


@attrs.frozen
class ObjectRequest:
    """One request on one object. ``verb`` is one of :data:`VERBS` (``update`` is a PUT, of
    the object or a subresource; ``bind`` a ``pods/binding``, ``evict`` a ``pods/eviction``).
    ``rv`` and ``uid`` are its preconditions (an update's ``metadata``, a patch's own
    ``metadata.resourceVersion``, a delete's ``preconditions``); ``stale_ok`` marks a GET with
    ``resourceVersion=0``; ``foreground`` a delete's propagation. ``seen`` is the server's
    answer, filled in by :meth:`ObjectModel.normalized` (see the module docstring)."""

    verb: str
    kind: str
    namespace: str
    name: str
    rv: int = 0
    uid: str = ""
    stale_ok: bool = False
    foreground: bool = False
    client: str = ""
    """Who sent it (the host), for the failure report."""
    seen: Answer | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


# --- the model ------------------------------------------------------------------------------


@attrs.frozen(cache_hash=True)
class ObjectState:
    """One object key as clients can tell it (see the module docstring)."""

    present: bool | None = False
    uid: str | None = None
    rv: int = 0
    exact: bool = True
    digest: str | None = None
    deleting: bool = False


ABSENT = ObjectState()


@attrs.frozen
class Others:
    """What writers outside the history may do to one key: ``create`` it while it is absent
    (the API server's startup objects; a generated name of a create whose answer was lost);
    anything at all (``loose``: a ``deletecollection`` removed or marked objects no request
    names), when the model only keeps ``resourceVersion``s from going back."""

    create: bool = False
    loose: bool = False


EXACT = Others()

CREATE_ON_UPDATE = frozenset({"Endpoints", "Event", "Lease"})
"""Kinds whose PUT creates a missing object (upstream's ``AllowCreateOnUpdate``)."""

SERVER_CREATED: dict[str, frozenset[str] | None] = {
    "Namespace": frozenset({"default", "kube-system", "kube-public", "kube-node-lease"}),
    "ClusterRole": None,
    "ClusterRoleBinding": None,
    "Role": None,
    "RoleBinding": None,
    "Service": frozenset({"default/kubernetes"}),
    "Endpoints": frozenset({"default/kubernetes"}),
}
"""The keys the API server creates itself when they are missing (its startup objects:
:mod:`raftkube.apiserver.bootstrap_objects`), by kind: the names (``namespace/name``, or the
name of a cluster-scoped object), or None for every object of the kind (the RBAC policy is
long, and nothing in the suite writes RBAC objects but the server)."""


def others_of(kind: str, namespace: str, name: str) -> Others:
    """The unrecorded writers of a key of the cluster suite (:data:`SERVER_CREATED`)."""
    if kind not in SERVER_CREATED:
        return EXACT
    names = SERVER_CREATED[kind]
    full = f"{namespace}/{name}" if namespace else name
    return Others(create=True) if names is None or full in names else EXACT


def _present_before(state: ObjectState, others: Others) -> ObjectState | str:
    """The state if the object exists before the operation, or why it cannot."""
    if state.present is False:
        if not others.create:
            return "the object does not exist and nobody else creates it"
        return ObjectState(True, None, state.rv, exact=False)
    return attrs.evolve(state, present=True)


def _absent_before(state: ObjectState) -> ObjectState | str:
    if state.present is True:
        return "the object exists and nobody else deletes it"
    return ObjectState(False, None, state.rv)


def _matches_current(state: ObjectState, seen: Seen) -> str | None:
    """Why ``seen`` (a read or a no-op write) cannot be the object as it is now."""
    if state.uid is not None and seen.uid and seen.uid != state.uid:
        return f"the object's uid is {state.uid}, the answer shows {seen.uid}"
    if state.exact and seen.rv != state.rv:
        return f"the object is at resourceVersion {state.rv}, the answer shows {seen.rv}"
    if not state.exact and seen.rv <= state.rv:
        return f"the object is newer than resourceVersion {state.rv}, the answer shows {seen.rv}"
    if state.exact and state.digest is not None and seen.digest != state.digest:
        return f"resourceVersion {seen.rv} shows other content than the answer that made it"
    if state.deleting and not seen.deleting:
        return "the object was being deleted and the answer has no deletionTimestamp"
    return None


def _precondition(state: ObjectState, req: ObjectRequest) -> bool | None:
    """Whether the request's preconditions hold on a present object: True, False, or None
    when the state cannot tell (a newer version of unknown number, an unknown uid)."""
    holds: bool | None = True
    if req.uid:
        holds = None if state.uid is None else req.uid == state.uid
    if req.rv and holds is not False:
        if state.exact:
            holds = holds if req.rv == state.rv else False
        elif req.rv <= state.rv:
            holds = False
        else:
            holds = None
    return holds


def _written(state: ObjectState, seen: Seen) -> tuple[ObjectState, Result]:
    """A present object after a write the server answered with ``seen``: a new version (newer
    than every one before), or a no-op (the current version and content)."""
    if state.uid is not None and seen.uid and seen.uid != state.uid:
        return state, Impossible(f"the object's uid is {state.uid}, the answer shows {seen.uid}")
    if seen.gone is True:
        # Finalized by the write: the answer is the object at the version it replaced.
        why = _matches_current(attrs.evolve(state, digest=None, deleting=False), seen)
        if why is not None:
            return state, Impossible(why)
        return ObjectState(False, None, max(state.rv, seen.rv)), seen
    unchanged = state.exact and seen.rv == state.rv
    if unchanged and state.digest is not None and seen.digest != state.digest:
        return state, Impossible(f"the content changed at the same resourceVersion {seen.rv}")
    if not unchanged and seen.rv <= state.rv:
        return state, Impossible(
            f"a write answered resourceVersion {seen.rv}, not newer than {state.rv}"
        )
    if state.deleting and not seen.deleting:
        return state, Impossible("the object was being deleted and the answer has none")
    uid = seen.uid or state.uid
    return ObjectState(True, uid, seen.rv, True, seen.digest, seen.deleting), seen


def _maybe_written(state: ObjectState, deleting: bool, may_go: bool) -> ObjectState:
    """A present object after a write whose new version is not known (a lost answer, a
    binding, an eviction); ``may_go`` when the write may have removed it."""
    return ObjectState(None if may_go else True, state.uid, state.rv, False, None,
                       state.deleting or deleting)  # fmt: skip


class ObjectModel(Model[ObjectState, ObjectRequest, Result]):
    """One object key of the Kubernetes object API, under every recorded client's requests
    and the moves ``others`` may make (see the module docstring)."""

    name = "object"

    def __init__(self, others: Others = EXACT) -> None:
        self.others = others

    def init(self) -> ObjectState:
        return ABSENT

    def apply(self, state: ObjectState, request: ObjectRequest) -> tuple[ObjectState, Result]:
        seen = request.seen
        if self.others.loose:
            # Anything may have happened since; only the version cannot go back.
            state = ObjectState(None, None, max(0, state.rv - 1), exact=False)
        if seen is None:
            return self._lost(state, request), NotFound()
        if isinstance(seen, NotFound):
            if request.stale_ok:
                return state, seen
            before = _absent_before(state)
            return (state, Impossible(before)) if isinstance(before, str) else (before, seen)
        if request.stale_ok:
            return self._cached_get(state, seen)
        if request.verb == "create" or (isinstance(seen, Seen) and seen.new):
            return self._create(state, request, seen)
        if isinstance(seen, AlreadyExists):
            return state, Impossible("only a create answers AlreadyExists")
        if isinstance(seen, Conflict) and request.uid and state.present is not True:
            return state, seen  # a uid precondition on no object: upstream's 409
        before = _present_before(state, self.others)
        if isinstance(before, str):
            return state, Impossible(before)
        if request.verb == "get":
            return self._get(state, before, seen)
        holds = _precondition(before, request)
        if isinstance(seen, Conflict):
            if holds is True:
                return state, Impossible("the preconditions hold, yet 409 Conflict")
            return before, seen
        if holds is False:
            return state, Impossible("the preconditions do not hold, yet the write was applied")
        if isinstance(seen, Wrote):
            if request.verb not in ("bind", "evict"):
                return state, Impossible(f"a {request.verb} answered a Status")
            return _maybe_written(before, request.verb == "evict", request.verb == "evict"), seen
        if request.verb == "delete":
            return self._delete(before, request, seen)
        return _written(before, seen)

    def _lost(self, state: ObjectState, req: ObjectRequest) -> ObjectState:
        """The write ``req`` asked for, its answer lost (a read never gets here)."""
        creates = req.verb == "update" and req.kind in CREATE_ON_UPDATE and not req.uid
        if req.verb == "create" or (creates and state.present is False):
            if state.present is True:
                return state
            return ObjectState(True, None, state.rv, exact=False)
        if state.present is False or _precondition(state, req) is False:
            return state
        if req.verb == "delete":
            return _maybe_written(state, True, True)
        return _maybe_written(state, req.verb == "evict", req.verb == "evict")

    def _create(
        self, state: ObjectState, req: ObjectRequest, seen: Answer
    ) -> tuple[ObjectState, Result]:
        if isinstance(seen, AlreadyExists):
            before = _present_before(state, self.others)
            return (state, Impossible(before)) if isinstance(before, str) else (before, seen)
        if not isinstance(seen, Seen):
            return state, Impossible(f"a create cannot answer {type(seen).__name__}")
        if state.present is True:
            return state, Impossible("the object exists and nobody else deletes it")
        if seen.rv <= state.rv:
            return state, Impossible(
                f"a new object at resourceVersion {seen.rv}, not after {state.rv}"
            )
        if state.uid is not None and seen.uid == state.uid:
            return state, Impossible(f"a new object with the uid {seen.uid} of the one before")
        return ObjectState(True, seen.uid, seen.rv, True, seen.digest, seen.deleting), seen

    def _cached_get(self, state: ObjectState, seen: Answer) -> tuple[ObjectState, Result]:
        """A GET with ``resourceVersion=0``: any version up to the current one (the object
        may have been deleted since), never a later one; it changes nothing."""
        if not isinstance(seen, Seen):
            return state, Impossible(f"a GET cannot answer {type(seen).__name__}")
        later = state.present is not False and not state.exact
        if not later and not (state.present is False and self.others.create) and seen.rv > state.rv:
            return state, Impossible(
                f"a cached read shows resourceVersion {seen.rv}, newer than {state.rv}"
            )
        return state, seen

    def _get(
        self, state: ObjectState, before: ObjectState, seen: Answer
    ) -> tuple[ObjectState, Result]:
        if not isinstance(seen, Seen):
            return state, Impossible(f"a GET cannot answer {type(seen).__name__}")
        why = _matches_current(before, seen)
        if why is not None:
            return state, Impossible(why)
        return ObjectState(True, seen.uid or before.uid, seen.rv, True, seen.digest,
                           seen.deleting), seen  # fmt: skip

    def _delete(
        self, state: ObjectState, req: ObjectRequest, seen: Answer
    ) -> tuple[ObjectState, Result]:
        if not isinstance(seen, Seen):
            return state, Impossible(f"a delete cannot answer {type(seen).__name__}")
        if seen.gone is True and req.foreground:
            return state, Impossible("a foreground delete removed the object at once")
        if seen.gone is False:
            return _written(state, seen)
        if state.uid is not None and seen.uid and seen.uid != state.uid:
            return state, Impossible(
                f"the object's uid is {state.uid}, the answer shows {seen.uid}"
            )
        if seen.rv and seen.rv < state.rv + (0 if state.exact else 1):
            return state, Impossible(
                f"a delete answered resourceVersion {seen.rv}, older than {state.rv}"
            )
        if seen.gone is True:
            return ObjectState(False, None, max(state.rv, seen.rv)), seen
        # Marked, or removed: the answer does not say which (see Seen).
        return ObjectState(None, seen.uid or state.uid, seen.rv, seen.rv > 0, seen.digest,
                           True), seen  # fmt: skip

    def matches(self, request: ObjectRequest, model_result: Result, recorded: Result) -> bool:
        return not isinstance(model_result, Impossible) and model_result == recorded

    def normalized(self, request: ObjectRequest, outcome: Ok | Unknown) -> ObjectRequest | None:
        # The history's outcome type is the KV store's; an object history holds answers.
        seen: Any = outcome.result if isinstance(outcome, Ok) else None
        return attrs.evolve(request, seen=seen)

    def is_read_only(self, request: ObjectRequest) -> bool:
        return request.verb == "get"

    def revision(self, state: ObjectState) -> int:
        """The object's ``resourceVersion`` or its lower bound: no answer showing an older one
        can be placed after this state."""
        return state.rv

    def result_revision(self, result: Result) -> int:
        """The ``resourceVersion`` an answer shows of the object as it is after the request
        (0 when it shows none: a 404, a 409, a ``Status``, a read from a cache, which may be
        older; the search's revision cuts rest on these never going back on one key). They are
        not the store's revision (a no-op write answers the object's old one), so across keys
        only creations are compared (:func:`check_creates_in_order`)."""
        if isinstance(result, Seen) and result.gone is not True and not result.cached:
            return result.rv
        return 0

    def keys_of(self, request: ObjectRequest) -> list[str]:
        return [request.key]


def check_creates_in_order(entries: Sequence[Entry]) -> None:
    """Across keys: a create called after another returned gets a newer ``resourceVersion``
    (both are writes, and the store's revision only grows). Raises a Violation."""
    creates = [e for e in entries if e.request.verb == "create" and isinstance(e.expected, Seen)]
    check_revisions_never_go_back(creates, 0)
