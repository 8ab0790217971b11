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
* a Watch from ``"0"`` may start from any retained state, likewise.

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
    parse_resource_version,
)
from raftkube_spec.kube.requests import Compact, List, Request, Watch
from raftkube_spec.kube.responses import (
    DeleteResponse,
    ListResponse,
    ObjectResponse,
    Result,
    WatchResponse,
)
from raftkube_spec.kube.state import KubeState, initial_state


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
        if isinstance(request, Watch) and _older_watch_allowed(state, request, observed):
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
