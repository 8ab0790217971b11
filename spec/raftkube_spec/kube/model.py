"""The object API as a sequential model for a linearizability checker, in Porcupine's shape.

Porcupine (``github.com/anishathalye/porcupine``) asks a model for ``Init() -> state`` and
``Step(state, input, output) -> (ok, state')``: is ``output`` a possible answer to ``input``
from ``state``, and which state follows. :class:`Model` is exactly that, plus ``equal`` and the
two describe functions Porcupine uses in its reports. States are frozen and hash by value, so a
search may memoize on (linearized set, state) as Lowe's algorithm does.

Where upstream lets the server choose, ``step`` accepts every allowed answer, not only the one
:func:`raftkube_spec.kube.apply` gives:

* a List at ``resourceVersion="0"`` or ``NotOlderThan`` may be served from any retained state at
  least as new as asked (a watch cache lags), so it matches if some such revision explains it;
* a Watch from ``"0"`` may start from any retained state, likewise;
* a Watch from a revision below the compaction, which ``apply`` refuses with 410 as the store
  does, may instead be served by upstream's watch cache from its own window, which store
  compaction does not shorten. The state no longer holds the changes before the compaction
  point ``C``, so such a replay is judged as far as the state can judge it: it must end with
  exactly the model's events from ``C`` on, and the events before them must be a plausible
  history of the range up to ``C - 1``: one per revision, in order, after the requested one,
  matching the request, each object's ADDED/MODIFIED/DELETED in an order an object can go
  through, and each object's last event agreeing with the state at ``C - 1`` (an object
  written after the requested revision and matching at ``C - 1`` must have one). What exactly
  changed before ``C`` cannot be checked.

Every other answer must equal the model's. Inputs a server picks itself (uid, clock reading,
``generateName`` suffix) are fields of the request, to be filled from the server's answer.
"""

from __future__ import annotations

import attrs

from raftkube_spec.kube.errors import KubeError
from raftkube_spec.kube.ops import apply
from raftkube_spec.kube.reads import (
    events_after,
    initial_events,
    is_exact,
    list_at,
    objects_at,
    parse_resource_version,
    selects,
)
from raftkube_spec.kube.requests import Compact, List, Request, Watch
from raftkube_spec.kube.responses import (
    DeleteResponse,
    ListResponse,
    ObjectResponse,
    Result,
    WatchResponse,
)
from raftkube_spec.kube.state import EventType, KubeState, WatchEvent, initial_state


def _oldest_readable(state: KubeState) -> int:
    return max(state.compact_revision, 1)


def _older_list_allowed(state: KubeState, req: List, observed: Result) -> bool:
    if not isinstance(observed, ListResponse) or req.continue_token or is_exact(req):
        return False
    if req.resource_version == "":
        return False  # a consistent read: only the most recent state will do
    requested = parse_resource_version(req.resource_version)
    if isinstance(requested, KubeError):
        return False
    low = max(requested, _oldest_readable(state))
    if not low <= observed.resource_version <= state.revision:
        return False
    return list_at(state, req, observed.resource_version, "") == observed


def _older_watch_allowed(state: KubeState, req: Watch, observed: Result) -> bool:
    if req.resource_version != "0" or not isinstance(observed, WatchResponse):
        return False
    for start in range(_oldest_readable(state), state.revision + 1):
        replay = (*initial_events(state, req, start), *events_after(state, req, start))
        if replay == observed.events:
            return True
    return False


def _compacted_watch_allowed(state: KubeState, req: Watch, observed: Result) -> bool:
    """A replay from upstream's watch cache of a revision the store has compacted away."""
    requested = parse_resource_version(req.resource_version)
    if (
        isinstance(requested, KubeError)
        or requested == 0
        or not isinstance(observed, WatchResponse)
    ):
        return False
    compacted = state.compact_revision
    if requested + 1 >= compacted:
        return False  # not compacted away: ``apply``'s answer is the only one
    vouched = events_after(state, req, compacted - 1)
    cut = len(observed.events) - len(vouched)
    if cut < 0 or tuple(vouched) != observed.events[cut:]:
        return False
    return _plausible_history(state, req, requested, observed.events[:cut])


def _plausible_history(
    state: KubeState, req: Watch, requested: int, events: tuple[WatchEvent, ...]
) -> bool:
    """Whether ``events`` could be the watch's events for revisions ``requested + 1`` up to
    ``state.compact_revision - 1``, judged by what the state at ``compact_revision - 1`` says."""
    end = state.compact_revision - 1
    last: dict[tuple[str, str], WatchEvent] = {}
    previous = requested
    for event in events:
        meta = event.object.metadata
        revision = parse_resource_version(event.object.resource_version)
        if isinstance(revision, KubeError) or not previous < revision <= end:
            return False
        previous = revision
        namespace = str(meta.get("namespace", ""))
        if req.namespace and namespace != req.namespace:
            return False
        if not selects(event.object.labels, req.label_selector):
            return False
        who = (namespace, str(meta.get("name", "")))
        before = last.get(who)
        present = before is not None and before.type is not EventType.DELETED
        if before is not None and present == (event.type is EventType.ADDED):
            return False  # ADDED only after DELETED, MODIFIED and DELETED only while present
        last[who] = event
    at_end = {
        (key.namespace, key.name): obj
        for key, obj in objects_at(state, end)
        if key.resource == req.resource
        and (not req.namespace or key.namespace == req.namespace)
        and selects(obj.labels, req.label_selector)
    }
    for who, event in last.items():
        expected = None if event.type is EventType.DELETED else event.object
        if at_end.get(who) != expected:
            return False
    written_since = (
        who for who, obj in at_end.items() if int(obj.resource_version or 0) > requested
    )
    return all(who in last for who in written_since)


@attrs.frozen
class Model:
    """The sequential specification a linearizability search checks a history against."""

    def init(self) -> KubeState:
        return initial_state()

    def step(self, state: KubeState, request: Request, observed: Result) -> tuple[bool, KubeState]:
        """Whether ``observed`` may answer ``request`` from ``state``, and the state after it."""
        after, expected = apply(state, request)
        if expected == observed:
            return True, after
        if isinstance(request, List) and _older_list_allowed(state, request, observed):
            return True, state
        if isinstance(request, Watch) and (
            _older_watch_allowed(state, request, observed)
            or _compacted_watch_allowed(state, request, observed)
        ):
            return True, state
        return False, state

    def equal(self, a: KubeState, b: KubeState) -> bool:
        return a == b

    def describe_operation(self, request: Request, observed: Result) -> str:
        return f"{describe_request(request)} -> {describe_result(observed)}"

    def describe_state(self, state: KubeState) -> str:
        objects = ", ".join(f"{key}@{obj.resource_version}" for key, obj in state.objects)
        return (
            f"revision {state.revision}, compacted at {state.compact_revision}, "
            f"{len(state.changes)} changes retained, objects: {objects or 'none'}"
        )


def describe_request(request: Request) -> str:
    name = type(request).__name__
    if isinstance(request, Compact):
        return f"{name} {request.revision}"
    key = getattr(request, "key", None)
    if key is not None:
        return f"{name} {key}"
    resource = getattr(request, "resource", "")
    namespace = getattr(request, "namespace", "")
    where = f"{resource}/{namespace}" if namespace else str(resource)
    if isinstance(request, List | Watch):
        return f"{name} {where} rv={request.resource_version!r}"
    return f"{name} {where}".rstrip()


def describe_result(result: Result) -> str:
    match result:
        case KubeError():
            return f"{result.code} {result.reason.value}: {result.message}"
        case ObjectResponse():
            meta = result.object.metadata
            return f"{result.code} {meta.get('name')}@{meta.get('resourceVersion')}"
        case DeleteResponse():
            return f"{result.code} {result.object.metadata.get('name')}"
        case ListResponse():
            return f"200 {len(result.items)} items @{result.resource_version}"
        case WatchResponse():
            return f"{len(result.events)} events"
        case _:
            return f"compacted at {result.revision}"
