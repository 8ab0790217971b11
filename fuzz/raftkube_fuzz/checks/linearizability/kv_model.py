"""The KV store's sequential model for the linearizability search: the spec's
:func:`raftkube_spec.kv.apply`, and what the search's cuts know about etcd's revisions.

How each piece is argued (lease clock readings zeroed, leader-picked lease ids, TimeToLive
ranges, "lease not found" for an expired lease, the revision and write cuts) is the package
docstring's subject (:mod:`raftkube_fuzz.checks.linearizability`); this module is where it
is written, behind the :class:`~.model.Model` interface the search takes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

import attrs

import raftkube_spec.kv as kv
from raftkube_fuzz.checks.history import Ok, Unknown, describe
from raftkube_fuzz.checks.linearizability.model import Cuts, Model
from raftkube_fuzz.checks.linearizability.normalise import Entry
from raftkube_fuzz.checks.linearizability.refute import (
    check_seen_records,
    claimed_revisions,
    created_records,
    observed_records,
)
from raftkube_spec.kv import history as kv_history


@attrs.frozen
class KVFacts:
    """What one operation's response pins down (see :meth:`KVModel.facts`)."""

    seen: tuple[kv.KeyValue, ...]
    """The complete records the response shows (see :func:`seen_records`)."""
    written: tuple[tuple[bytes, bytes], ...]
    """The (key, value) pairs the request may write."""
    wrote: bool
    """Whether the response proves the request created a new revision."""


class KVModel(Model[kv.KVState, kv.Request, kv.Result]):
    """etcd's KV and lease API, as the spec defines it."""

    name = "kv"

    def init(self) -> kv.KVState:
        return kv.initial_state()

    def apply(self, state: kv.KVState, request: kv.Request) -> tuple[kv.KVState, kv.Result]:
        return kv.apply(state, request)

    def matches(self, request: kv.Request, model_result: kv.Result, recorded: kv.Result) -> bool:
        return matches(request, model_result, recorded)

    def normalized(self, request: kv.Request, outcome: Ok | Unknown) -> kv.Request | None:
        return normalized(request, outcome)

    def is_read_only(self, request: kv.Request) -> bool:
        return is_read_only(request)

    revision = staticmethod(attrgetter("revision"))  # type: ignore[assignment]
    """A state's revision: an attribute read in C, since the search asks at every step."""

    def result_revision(self, result: kv.Result) -> int:
        return result.header.revision

    def facts(self, request: kv.Request, result: kv.Result | None) -> KVFacts:
        written = tuple(written_values(request))
        if result is None:
            return KVFacts((), written, False)
        return KVFacts(tuple(seen_records(request, result)), written, wrote_revision(result))

    def refute(self, entries: Sequence[Entry], initial: kv.KVState) -> None:
        check_seen_records(entries, initial)

    def cuts(self, entries: Sequence[Entry], watched: Iterable[Any]) -> KVCuts:
        observed = observed_records(entries, tuple(watched))
        return KVCuts(claimed_revisions(entries), observed, created_records(observed))

    def keys_of(self, request: kv.Request) -> list[str]:
        return keys_of(request)


KV_MODEL = KVModel()
"""The model every search uses unless told otherwise (it holds no state)."""


@attrs.frozen
class KVCuts(Cuts):
    """The tables the KV write cuts consult, built once per search."""

    claimed: set[int]
    """Revisions completed writes certainly created."""
    observed: dict[int, list[kv.KeyValue]]
    """Every record some client or watch saw, by the revision that created it."""
    created: dict[int, list[kv.KeyValue]]
    """The live records among them, by the revision that began their key's generation."""

    def write_conflict(self, entry: Entry, state: kv.KVState) -> str | None:
        """Why ``entry`` cannot be the write that created ``state.revision`` (None: it may).

        Three cuts, all sound because a revision is written once and its records never
        change: an Unknown operation cannot take a revision a completed write showed it
        created; whatever creates a revision must create exactly the records clients saw
        stamped with it; and it must create the key of every record clients saw whose
        generation began there (its ``create_revision``). They stop the search from trying
        every Unknown write in every unclaimed revision: without the third, a burst of
        Unknown writes to a few keys, pinned down only by the create revision a later read
        showed, was tried in every order up to that read (millions of orders for ten writes).
        """
        revision = state.revision
        if entry.expected is None and revision in self.claimed:
            return f"an acknowledged write created revision {revision}"
        for seen in self.observed.get(revision, ()):
            # Membership rather than ``at``: a txn may put a key and delete it again within
            # one revision, and a nested prev_kv then shows the put that ``at`` hides.
            found = kv_history.find(state.keys, seen.key)
            if found is None or seen not in found.since(revision):
                return f"a client or watch saw {describe(seen)}, which this write does not create"
        for seen in self.created.get(revision, ()):
            found = kv_history.find(state.keys, seen.key)
            if found is None or not any(
                r.create_revision == revision for r in found.since(revision)
            ):
                return (
                    f"a client or watch saw {describe(seen)}, whose key this write does not "
                    f"create at revision {revision}"
                )
        return None


def is_read_only(request: kv.Request) -> bool:
    match request:
        case kv.RangeRequest() | kv.LeaseTimeToLiveRequest() | kv.LeaseKeepAliveRequest():
            return True
        case kv.TxnRequest():
            return all(is_read_only(op) for op in (*request.success, *request.failure))
        case _:
            return False


def normalized(request: kv.Request, outcome: Ok | Unknown) -> kv.Request | None:
    """The request as the model must replay it; None when it is unobservable (see module doc)."""
    match request:
        case kv.LeaseGrantRequest():
            lease_id = request.id
            if lease_id == 0:
                if isinstance(outcome, Ok) and isinstance(outcome.result, kv.LeaseGrantResponse):
                    lease_id = outcome.result.id
                elif isinstance(outcome, Ok):
                    # Refused with an id we never learn: any id nobody uses gives the same error.
                    lease_id = -1
                else:
                    return None
            return kv.LeaseGrantRequest(lease_id, request.ttl, 0)
        case kv.LeaseKeepAliveRequest():
            return kv.LeaseKeepAliveRequest(request.id, 0)
        case kv.LeaseTimeToLiveRequest():
            return kv.LeaseTimeToLiveRequest(request.id, 0, request.keys)
        case _:
            return request


def wrote_revision(result: kv.Result) -> bool:
    """Whether a response proves its request created a new revision."""
    match result:
        case kv.PutResponse():
            return True
        case kv.DeleteRangeResponse():
            return result.deleted > 0
        case kv.TxnResponse():
            return any(wrote_revision(r) for r in result.responses)
        case _:
            return False


def seen_records(
    request: kv.Request | kv.RequestOp, result: kv.Result | kv.ResponseOp
) -> list[kv.KeyValue]:
    """The complete records a response shows (keys-only reads strip values, so they don't count)."""
    match request, result:
        case kv.RangeRequest(), kv.RangeResponse():
            return [] if request.keys_only else list(result.kvs)
        case kv.PutRequest(), kv.PutResponse():
            return [] if result.prev_kv is None else [result.prev_kv]
        case kv.DeleteRangeRequest(), kv.DeleteRangeResponse():
            return list(result.prev_kvs)
        case kv.TxnRequest(), kv.TxnResponse():
            branch = request.success if result.succeeded else request.failure
            return [
                seen
                for op, r in zip(branch, result.responses, strict=False)
                for seen in seen_records(op, r)
            ]
        case _:
            return []


def written_values(request: kv.Request | kv.RequestOp) -> list[tuple[bytes, bytes]]:
    match request:
        case kv.PutRequest():
            return [] if request.ignore_value else [(request.key, request.value)]
        case kv.TxnRequest():
            return [
                kv_ for op in (*request.success, *request.failure) for kv_ in written_values(op)
            ]
        case _:
            return []


def matches(request: kv.Request, model: kv.Result, recorded: kv.Result) -> bool:
    if model == recorded:
        return True
    if isinstance(request, kv.LeaseTimeToLiveRequest):
        if not (
            isinstance(model, kv.LeaseTimeToLiveResponse)
            and isinstance(recorded, kv.LeaseTimeToLiveResponse)
        ):
            return False
        if model.ttl == -1 or recorded.ttl == -1:
            return False  # they differ, and one says the lease is missing
        return 0 <= recorded.ttl <= model.granted_ttl and (
            attrs.evolve(recorded, ttl=model.ttl) == model
        )
    if isinstance(request, kv.LeaseKeepAliveRequest):
        return (
            isinstance(model, kv.LeaseKeepAliveResponse)
            and isinstance(recorded, kv.KVError)
            and recorded.code is kv.ErrorCode.LEASE_NOT_FOUND
            and recorded.header == model.header
        )
    return False


def keys_of(request: kv.Request | kv.RequestOp) -> list[str]:
    """The keys a request names (for picking related operations in evidence)."""
    match request:
        case kv.RangeRequest() | kv.PutRequest() | kv.DeleteRangeRequest():
            return [describe(request.key)]
        case kv.TxnRequest():
            found = [describe(c.key) for c in request.compare]
            for op in (*request.success, *request.failure):
                found.extend(keys_of(op))
            return found
        case kv.CompactionRequest():
            return ["compaction"]
        case (
            kv.LeaseGrantRequest()
            | kv.LeaseRevokeRequest()
            | kv.LeaseKeepAliveRequest()
            | kv.LeaseTimeToLiveRequest()
        ):
            return [f"lease {request.id}"]
