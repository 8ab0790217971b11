"""One entry point: ``apply(state, request) -> (state, result)``, and the store's compaction.

A stateful test, a side-by-side check against the real server and a linearizability search all
replay requests and compare results; routing every request through one total function keeps
them ignorant of which requests read and which write. A refused request, and every read,
returns the very same state object.
"""

from __future__ import annotations

import bisect

import attrs

from raftkube_spec.kube import errors
from raftkube_spec.kube.deletion import delete
from raftkube_spec.kube.reads import get, list_objects, watch
from raftkube_spec.kube.requests import (
    Compact,
    Create,
    Delete,
    Get,
    List,
    Patch,
    Request,
    Update,
    Watch,
)
from raftkube_spec.kube.responses import CompactResponse, Result
from raftkube_spec.kube.state import Change, KubeState
from raftkube_spec.kube.writes import create, patch, update


def _change_revision(change: Change) -> int:
    return change.revision


def compact(state: KubeState, req: Compact) -> tuple[KubeState, Result]:
    """Forget the changes below ``req.revision``; objects and the revision are untouched.

    The refusals carry the store's own wording (compaction is not a Kubernetes API call).
    """
    if req.revision <= state.compact_revision:
        return state, errors.gone("mvcc: required revision has been compacted")
    if req.revision > state.revision:
        return state, errors.bad_request("mvcc: required revision is a future revision")
    first = bisect.bisect_left(state.changes, req.revision, key=_change_revision)
    after = attrs.evolve(state, compact_revision=req.revision, changes=state.changes[first:])
    return after, CompactResponse(req.revision)


def apply(state: KubeState, request: Request) -> tuple[KubeState, Result]:
    """Run one request against ``state``."""
    match request:
        case Create():
            return create(state, request)
        case Get():
            return state, get(state, request)
        case List():
            return state, list_objects(state, request)
        case Update():
            return update(state, request)
        case Patch():
            return patch(state, request)
        case Delete():
            return delete(state, request)
        case Watch():
            return state, watch(state, request)
        case Compact():
            return compact(state, request)
