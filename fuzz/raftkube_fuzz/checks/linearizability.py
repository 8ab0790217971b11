"""Is a client history linearizable with respect to the spec's sequential KV model?

The search is Wing & Gong's, with Lowe's memoization (the algorithm Porcupine uses): from the
current model state, pick an operation that no unlinearized completed operation precedes in
real time, apply it with :func:`raftkube_spec.kv.apply`, require the model's result to equal the
recorded one, and go deeper; on a dead end, backtrack. A (set of linearized operations, model
state) pair is visited at most once, which is what keeps the search polynomial in practice: two
orders of commuting operations reach the same pair. ``KVState`` is frozen with a cached hash
and states compare equal exactly when no client could tell them apart, so it is a sound memo key.

Decisions, and why:

* No partitioning. Per-key partitioning (P-compositionality) needs operations on different
  keys to be independent, but every etcd write bumps one global revision that every response
  header carries, so a read of key ``a`` observes writes to key ``b``. Dropping headers to
  partition would throw away exactly the evidence that catches stale reads across keys. The
  headers instead make the single search cheap: a wrong order of writes yields a wrong
  revision within a step or two, so dead ends are short.
* Outcomes. Failed operations were never applied and are dropped. Unknown ones (and those
  still pending) may take effect at any point after their call or never: their return is
  treated as +infinity and the search succeeds once every *completed* operation is linearized
  (an Unknown operation left over can always be placed after everything, where nothing
  observes it). Unknown operations that cannot change the state (reads, keep-alives, see below)
  are dropped outright. Serializable reads are allowed to be stale and are left out.
* Real-time order. ``p`` precedes ``o`` when ``p`` returned strictly before ``o`` was called,
  or at the same virtual instant but recorded first (see ``Operation.invoked_before_ret``).
* Time-dependent lease fields. A member stamps lease requests with its own clock (``now_ms``),
  which the client never sees, so the checker replaces every ``now_ms`` by 0. Grant and
  keep-alive then store the same expiry (``ttl * 1000``), so lease state is clock-free, and
  results are compared on what the clocks cannot change: ids, granted TTLs, errors, attached
  keys and header revisions. Exceptions: a TimeToLive's remaining ``ttl`` only has to lie in
  ``[0, granted_ttl]`` (``-1`` exactly when the lease is missing), and a keep-alive answered
  "lease not found" is accepted while the lease still exists in the model (it may be expired
  and awaiting the leader's revoke, which etcd also reports as not found). Whether leases
  expire at the right *time* is a timing property this check cannot judge. A grant whose id
  the leader chose (request id 0) takes its id from the answer; if there was no answer, nobody
  can know the id, so nothing can refer to the lease and the grant (which writes no revision)
  is dropped. Expiry reaches the history as LeaseRevoke operations with Unknown outcome.
* Response headers in the spec hold only the revision (no member id, term or cluster id), so
  results are compared with plain equality, header revision included.
* Cheap refutations first, for small evidence: two operations in real-time order whose
  headers go backwards, a read of a value nothing wrote, two different records seen for one
  key at one revision. The search then cuts, soundly, every branch where the model passes a
  revision some pending operation reports, an Unknown write takes a revision an acknowledged
  write created, a write fails to create the records clients (and watches, if given) saw
  at its revision, or it fails to create the key of a record they saw whose generation
  began at its revision. With those cuts Unknown writes stay cheap; without them every subset of
  them is tried on each backtrack.
* Repeated searches share a :class:`SearchMemo`. A run checks its growing history after
  every step, so each search replays the previous one's prefix; the memo hands back the very
  same prepared operations and the very same model results for it, so that replay does no
  model work and meets the states it reached last time as the same objects. The memo changes
  what a search costs, never what it finds (see the class).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from operator import attrgetter
from typing import Any

import attrs

import raftkube_spec.kv as kv
from raftkube_fuzz.checks.history import Failed, History, Ok, Operation, Unknown, describe
from raftkube_fuzz.violation import Violation
from raftkube_spec.kv import history as kv_history

DEFAULT_MAX_STEPS = 200_000
"""Model applications the search may make before it gives up (a few thousand is typical)."""

MEMO_LIMIT = 100_000
"""Model applications a :class:`SearchMemo` remembers before it forgets them all (all of
one kv example's searches together typically leave a few hundred; only a search near its
step budget could fill it, and remembering all of that would cost more memory than it saves)."""


class LinearizabilityUndecided(Exception):
    """The search ran out of its step budget: the history is neither accepted nor refuted."""


@attrs.frozen
class Linearization:
    """A witness order: the applied operations, in order, and the model states around it.

    ``requests`` are the operations' requests as the model replayed them (lease clock readings
    zeroed, leader-picked lease ids filled in), so replaying them from ``initial`` reaches
    ``final_state``. Unknown operations that the witness did not need are absent: they may have
    been applied after everything, or never, so the witness says nothing beyond
    ``final_state.revision``.
    """

    operations: tuple[Operation, ...]
    requests: tuple[kv.Request, ...]
    initial: kv.KVState
    final_state: kv.KVState


@attrs.frozen
class _Entry:
    """One operation as the search sees it: normalized request, bounds, and what to match.

    The fields after ``order_hint`` are derived from the others once, when the operation is
    prepared, because the checks before the search and the search itself read them for every
    operation on every search of a run's growing history.
    """

    op: Operation
    request: kv.Request
    call: float
    ret: float
    expected: kv.Result | None
    order_hint: tuple[int, int, float]
    revision: int
    """The header revision of ``expected`` (0 when there is none)."""
    seen: tuple[kv.KeyValue, ...]
    """The complete records ``expected`` shows (see :func:`_seen`)."""
    written: tuple[tuple[bytes, bytes], ...]
    """The (key, value) pairs ``request`` may write."""
    wrote: bool
    """Whether ``expected`` proves ``request`` created a new revision."""


class SearchMemo:
    """What successive searches over one growing history share: prepared operations and
    model applications. It belongs to one run (one example) and dies with it.

    Sharing it cannot change a verdict or a witness. ``kv.apply`` is a pure function of
    (state, request), so a remembered result is the result; the search's order, its cuts and
    its step count are untouched (a remembered application still counts as one of
    ``max_steps``, so a search undecided without the memo is undecided with it). An
    operation is prepared again whenever the history holds a different object for it, which
    :class:`History` creates exactly when the operation's outcome is recorded.

    Applications are looked up by the identities of the state and request objects, held
    alive by the memo so that an identity cannot be reused while it is a key: a lookup then
    costs no hashing of requests and no comparison of states. Identity only finds the same
    objects again, which is the point: searches start from one canonical initial state and
    every state after it came out of this memo, so a replayed prefix hits all the way down.
    Nothing ever iterates the tables, so their order cannot leak into a result.
    """

    def __init__(self, limit: int = MEMO_LIMIT) -> None:
        self.limit = limit
        self._applied: dict[
            tuple[int, int], tuple[kv.KVState, kv.Request, kv.KVState, kv.Result]
        ] = {}
        self._prepared: dict[int, tuple[Operation, _Entry | None]] = {}
        self._initial: dict[kv.KVState, kv.KVState] = {}

    def canonical(self, state: kv.KVState) -> kv.KVState:
        """The state object this memo uses for every state equal to ``state``."""
        return self._initial.setdefault(state, state)

    def apply(self, state: kv.KVState, request: kv.Request) -> tuple[kv.KVState, kv.Result]:
        """``kv.apply(state, request)``, the same result objects for the same objects."""
        key = (id(state), id(request))
        found = self._applied.get(key)
        if found is not None:
            return found[2], found[3]
        after, result = kv.apply(state, request)
        if len(self._applied) >= self.limit:
            # Forgetting everything is always safe (the memo only saves work) and keeps the
            # bound without bookkeeping on every hit.
            self._applied.clear()
        self._applied[key] = (state, request, after, result)
        return after, result

    def entries(self, operations: Iterable[Operation]) -> list[_Entry]:
        """The operations the search takes part in, prepared, in the given order."""
        prepared = self._prepared
        found = []
        for op in operations:
            known = prepared.get(op.op_id)
            if known is None or known[0] is not op:
                known = prepared[op.op_id] = (op, _entry(op))
            if known[1] is not None:
                found.append(known[1])
        return found


def check_linearizable(
    history: History,
    *,
    initial: kv.KVState | None = None,
    watched: Iterable[kv.Event] = (),
    max_steps: int = DEFAULT_MAX_STEPS,
    memo: SearchMemo | None = None,
) -> None:
    """Raise :class:`Violation` ("Linearizability") unless ``history`` is linearizable."""
    find_linearization(history, initial=initial, watched=watched, max_steps=max_steps, memo=memo)


def find_linearization(
    history: History,
    *,
    initial: kv.KVState | None = None,
    watched: Iterable[kv.Event] = (),
    max_steps: int = DEFAULT_MAX_STEPS,
    memo: SearchMemo | None = None,
) -> Linearization:
    """Search for a witness order; raise Violation if none exists.

    ``watched`` are events watchers received. They are observations like any read: when
    Unknown writes fill revisions no read pinned down, only they say which write really
    took a revision, so a witness that must agree with watches (:mod:`.watches` checks them
    against this witness) has to be built with them.

    ``memo`` lets repeated searches over one growing history share their work (pass the same
    one each time); without it the search uses a fresh one.

    Raises :class:`LinearizabilityUndecided` when ``max_steps`` model applications were not
    enough to decide: a budget overrun is reported, never mistaken for a pass.
    """
    memo = memo if memo is not None else SearchMemo()
    start = memo.canonical(initial if initial is not None else kv.initial_state())
    entries = _entries(history, memo)
    _check_revisions_never_go_back(entries, start)
    _check_seen_records(entries, start)
    return _Search(entries, start, max_steps, tuple(watched), memo).run()


def _check_revisions_never_go_back(entries: list[_Entry], initial: kv.KVState) -> None:
    """The cheapest refutation, with the smallest evidence: two operations in real-time order
    whose headers go backwards (a stale read, a lost write). Revisions never decrease, so if
    ``p`` returned before ``o`` was called, ``o``'s header is at least ``p``'s."""
    done = sorted((e for e in entries if e.expected is not None), key=attrgetter("ret"))
    latest: _Entry | None = None
    j = 0
    for o in sorted(done, key=attrgetter("call")):
        while j < len(done) and done[j].ret < o.call:
            if latest is None or done[j].revision > latest.revision:
                latest = done[j]
            j += 1
        if o.revision < initial.revision:
            raise Violation(
                "Linearizability",
                f"op {o.op.op_id} reports revision {o.revision}, below the initial "
                f"{initial.revision}",
                {"operations": [_render(o.op)]},
            )
        if latest is not None and o.revision < latest.revision:
            raise Violation(
                "Linearizability",
                f"revision went back: op {o.op.op_id} (called at {o.call}) reports revision "
                f"{o.revision} after op {latest.op.op_id} returned revision "
                f"{latest.revision} at {latest.ret}",
                {"operations": [_render(latest.op), _render(o.op)]},
            )


# -- preparing the operations --------------------------------------------------------------


def _is_read_only(request: kv.Request) -> bool:
    match request:
        case kv.RangeRequest() | kv.LeaseTimeToLiveRequest() | kv.LeaseKeepAliveRequest():
            return True
        case kv.TxnRequest():
            return all(_is_read_only(op) for op in (*request.success, *request.failure))
        case _:
            return False


def _normalized(request: kv.Request, outcome: Ok | Unknown) -> kv.Request | None:
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


def _entries(history: History, memo: SearchMemo) -> list[_Entry]:
    entries = memo.entries(history.operations())
    entries.sort(key=attrgetter("call", "op.op_id"))
    return entries


def _entry(op: Operation) -> _Entry | None:
    """``op`` as the search sees it; None when the search leaves it out (see module doc)."""
    if op.serializable or isinstance(op.outcome, Failed):
        return None
    outcome = op.outcome if op.outcome is not None else Unknown("pending at the end")
    if isinstance(outcome, Unknown) and _is_read_only(op.request):
        return None
    request = _normalized(op.request, outcome)
    if request is None:
        return None
    written = tuple(_written_values(request))
    if isinstance(outcome, Ok):
        assert op.ret is not None, f"operation {op.op_id} is Ok without a return time"
        result = outcome.result
        rev = result.header.revision
        seen = tuple(_seen(request, result))
        return _Entry(
            op,
            request,
            op.call,
            op.ret,
            result,
            (0, rev, op.ret),
            rev,
            seen,
            written,
            _wrote(result),
        )
    return _Entry(op, request, op.call, math.inf, None, (1, 0, -op.call), 0, (), written, False)


def _wrote(result: kv.Result) -> bool:
    """Whether a response proves its request created a new revision."""
    match result:
        case kv.PutResponse():
            return True
        case kv.DeleteRangeResponse():
            return result.deleted > 0
        case kv.TxnResponse():
            return any(_wrote(r) for r in result.responses)
        case _:
            return False


def _claimed_revisions(entries: list[_Entry]) -> set[int]:
    """Revisions that completed writes certainly created (their response headers)."""
    return {e.revision for e in entries if e.wrote}


def _seen(
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
                for seen in _seen(op, r)
            ]
        case _:
            return []


def _written_values(request: kv.Request | kv.RequestOp) -> list[tuple[bytes, bytes]]:
    match request:
        case kv.PutRequest():
            return [] if request.ignore_value else [(request.key, request.value)]
        case kv.TxnRequest():
            return [
                kv_ for op in (*request.success, *request.failure) for kv_ in _written_values(op)
            ]
        case _:
            return []


def _check_seen_records(entries: list[_Entry], initial: kv.KVState) -> None:
    """Refute up front what no order can explain, with one or two operations as evidence.

    A record, once written at a revision, never changes, so two clients seeing different
    records for one key at one revision cannot both be right; and a value no request that may
    have been applied ever wrote cannot be read.
    """
    written = {(r.key, r.value) for h in initial.keys for r in h.records}
    for e in entries:
        written.update(e.written)
    first: dict[tuple[bytes, int], tuple[kv.KeyValue, _Entry]] = {}
    for e in entries:
        for seen in e.seen:
            if (seen.key, seen.value) not in written:
                raise Violation(
                    "Linearizability",
                    f"op {e.op.op_id} read {describe(seen)}, a value no request wrote",
                    {"operations": [_render(e.op)]},
                )
            earlier, by = first.setdefault((seen.key, seen.mod_revision), (seen, e))
            if earlier != seen:
                raise Violation(
                    "Linearizability",
                    f"ops {by.op.op_id} and {e.op.op_id} saw different records of "
                    f"{seen.key!r} at revision {seen.mod_revision}: {describe(earlier)} and "
                    f"{describe(seen)}",
                    {"operations": [_render(by.op), _render(e.op)]},
                )


def _observed_records(
    entries: list[_Entry], watched: tuple[kv.Event, ...]
) -> dict[int, list[kv.KeyValue]]:
    """Every record some client saw, by the revision that created it (deduplicated, sorted).

    A watch's DELETE event carries the tombstone itself, which the model stores in the same
    shape, so deletions are pinned down as exactly as puts.
    """
    found: dict[int, set[kv.KeyValue]] = {}
    for e in entries:
        for seen in e.seen:
            found.setdefault(seen.mod_revision, set()).add(seen)
    for event in watched:
        found.setdefault(event.kv.mod_revision, set()).add(event.kv)
    return {
        rev: sorted(records, key=lambda r: (r.key, r.create_revision, r.version, r.value))
        for rev, records in found.items()
    }


def _created_records(observed: dict[int, list[kv.KeyValue]]) -> dict[int, list[kv.KeyValue]]:
    """The live records among ``observed``, by the revision that began their key's generation
    (a tombstone starts none). Deduplicated by key: one record per key and revision says all."""
    found: dict[int, dict[bytes, kv.KeyValue]] = {}
    for records in observed.values():
        for seen in records:
            if not seen.is_tombstone and seen.create_revision > 0:
                found.setdefault(seen.create_revision, {}).setdefault(seen.key, seen)
    return {rev: [by_key[k] for k in sorted(by_key)] for rev, by_key in found.items()}


def _precedes(p: _Entry, o: _Entry) -> bool:
    if p.ret < o.call:
        return True
    seen = p.op.invoked_before_ret
    return p.ret == o.call and seen is not None and seen <= o.op.op_id


# -- comparing results ---------------------------------------------------------------------


def _matches(request: kv.Request, model: kv.Result, recorded: kv.Result) -> bool:
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


# -- the search ----------------------------------------------------------------------------


@attrs.define
class _Frame:
    linearized: int
    state: kv.KVState
    lo: int
    by_revision_lo: int
    candidates: list[int]
    next: int = 0


class _Search:
    """Depth-first search over (linearized set, model state), remembering its deepest point."""

    def __init__(
        self,
        entries: list[_Entry],
        initial: kv.KVState,
        max_steps: int,
        watched: tuple[kv.Event, ...],
        memo: SearchMemo,
    ) -> None:
        self.entries = entries
        self.initial = initial
        self.max_steps = max_steps
        self.memo = memo
        self.required = 0
        self.everything = (1 << len(entries)) - 1
        for i, entry in enumerate(entries):
            if entry.expected is not None:
                self.required |= 1 << i
        revisions = [e.revision for e in entries]
        self.by_revision = sorted(
            (i for i, e in enumerate(entries) if e.expected is not None),
            key=revisions.__getitem__,
        )
        self.claimed = _claimed_revisions(entries)
        self.observed = _observed_records(entries, watched)
        self.created = _created_records(self.observed)
        self.calls = [e.call for e in entries]
        self.rets = [e.ret for e in entries]
        self.rank = [0] * len(entries)
        """Each entry's place in the order of ``order_hint`` (ties by index): sorting the
        ascending candidates by it is sorting them stably by their hints, without a key
        function call per candidate at every node."""
        hints = [e.order_hint for e in entries]
        for place, i in enumerate(sorted(range(len(entries)), key=hints.__getitem__)):
            self.rank[i] = place
        self.steps = 0
        self.deepest: tuple[int, list[int], _Frame] | None = None
        self.rejected: dict[int, tuple[kv.Result, str]] = {}
        self.blocked_by = -1

    def candidates(self, linearized: int, lo: int) -> list[int]:
        """Unlinearized entries no unlinearized entry precedes, most promising first."""
        entries = self.entries
        calls = self.calls
        rets = self.rets
        found = []
        min_ret = math.inf
        # Only the unlinearized entries from ``lo`` on, by their bits: an Unknown operation a
        # witness never needs stays unlinearized near the front, and a scan of every index
        # from ``lo`` passed over everything linearized since at every node. Calls only grow
        # with the index, so this stops at the same unlinearized entry as that scan would.
        rest = ~linearized & self.everything >> lo << lo
        while rest:
            low = rest & -rest
            rest ^= low
            i = low.bit_length() - 1
            call = calls[i]
            if call > min_ret:
                break  # calls only grow from here: everything further is blocked too
            if call == min_ret and any(
                not linearized >> j & 1 and _precedes(entries[j], entries[i]) for j in range(lo, i)
            ):
                min_ret = min(min_ret, rets[i])
                continue
            found.append(i)
            if rets[i] < min_ret:
                min_ret = rets[i]
        # Completed operations first, in the order their headers' revisions suggest; Unknown
        # ones only when no completed one fits, most recently called first (an operation in
        # flight now is likelier to land now than one that has been missing for a while).
        if len(found) > 1:
            found.sort(key=self.rank.__getitem__)
        return found

    def frame(self, linearized: int, state: kv.KVState, parent: _Frame | None) -> _Frame | None:
        """The search node for ``(linearized, state)``; None when it is a dead end already.

        Revisions never decrease, and an operation's header shows the revision after it ran,
        so once the model's revision passes the header of an operation still to be
        linearized, no continuation can work. This cut is what keeps Unknown writes cheap:
        without it, every subset of them would be tried before the search backtracks.
        """
        lo = parent.lo if parent is not None else 0
        while lo < len(self.entries) and linearized >> lo & 1:
            lo += 1
        by_rev = parent.by_revision_lo if parent is not None else 0
        while by_rev < len(self.by_revision) and linearized >> self.by_revision[by_rev] & 1:
            by_rev += 1
        if by_rev < len(self.by_revision):
            lowest = self.entries[self.by_revision[by_rev]].revision
            if lowest < state.revision:
                self.blocked_by = self.by_revision[by_rev]
                return None
        return _Frame(linearized, state, lo, by_rev, self.candidates(linearized, lo))

    def run(self) -> Linearization:
        first = self.frame(0, self.initial, None)
        assert first is not None, "revisions below the initial one are refuted up front"
        stack = [first]
        path: list[int] = []
        """The entry each frame above the first was reached by (the stack's path, kept
        beside it rather than rebuilt from the frames at every new depth)."""
        visited: dict[int, list[kv.KVState] | set[kv.KVState]] = {}
        """The (linearized set, model state) pairs seen, by linearized set: a search that
        rarely backtracks meets each set once, so a membership test needs neither the state's
        hash (which walks the whole store the first time) nor any comparison. A set met with
        many different states (Unknown writes placed in every order) turns into a hash set
        past :data:`_VISITED_SCAN` states: a scan comparing each new state with every one
        before it made such a search quadratic, minutes for one history."""
        while stack:
            top = stack[-1]
            if top.linearized & self.required == self.required:
                order = [self.entries[i] for i in path]
                return Linearization(
                    tuple(e.op for e in order),
                    tuple(e.request for e in order),
                    self.initial,
                    top.state,
                )
            self.note_depth(len(stack) - 1, path, top)
            pushed = False
            while top.next < len(top.candidates):
                i = top.candidates[top.next]
                top.next += 1
                entry = self.entries[i]
                self.steps += 1
                if self.steps > self.max_steps:
                    raise LinearizabilityUndecided(
                        f"no decision within {self.max_steps} steps on {len(self.entries)} "
                        f"operations (deepest linearized prefix: {self.deepest_count()})"
                    )
                state, result = self.memo.apply(top.state, entry.request)
                at_deepest = self.deepest is not None and self.deepest[2] is top
                if entry.expected is None:
                    if state is top.state or state == top.state:
                        # An Unknown no-op here: the node it leads to can do nothing that
                        # this one cannot (the op stays available for later), so skip it.
                        continue
                elif not _matches(entry.request, result, entry.expected):
                    if at_deepest:
                        self.rejected[i] = (result, "the recorded result differs")
                    continue
                if state.revision != top.state.revision:
                    conflict = self.write_conflict(entry, state)
                    if conflict is not None:
                        if at_deepest:
                            self.rejected[i] = (result, conflict)
                        continue
                linearized = top.linearized | 1 << i
                if _seen_before(visited, linearized, state):
                    continue
                child = self.frame(linearized, state, top)
                if child is None:
                    if at_deepest:
                        late = self.entries[self.blocked_by]
                        self.rejected[i] = (
                            result,
                            f"op {late.op.op_id} reports revision {late.revision} "
                            f"but would come after revision {state.revision}",
                        )
                    continue
                if entry.expected is not None and (state is top.state or state == top.state):
                    # A completed operation that matches here without changing the state
                    # (a read, a refused write) may as well come first: any witness that
                    # places it later can place it here instead, since it is eligible now,
                    # taking it only loosens the real-time order for the rest, and its result
                    # says it changes no state wherever it matches. So no alternative at this
                    # node needs trying, which is what keeps bursts of concurrent reads and
                    # failed lease calls from exploding the search.
                    del top.candidates[top.next :]
                stack.append(child)
                path.append(i)
                pushed = True
                break
            if not pushed:
                stack.pop()
                if path:
                    path.pop()
        raise self.violation()

    def write_conflict(self, entry: _Entry, state: kv.KVState) -> str | None:
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

    def note_depth(self, count: int, path: list[int], top: _Frame) -> None:
        """Remember ``top``, reached by ``path`` (``count`` entries), if it is the deepest yet."""
        if self.deepest is None or count > self.deepest[0]:
            self.deepest = (count, list(path), top)
            self.rejected = {}

    def deepest_count(self) -> int:
        return 0 if self.deepest is None else self.deepest[0]

    def violation(self) -> Violation:
        assert self.deepest is not None
        count, path, frame = self.deepest
        stuck = [
            {
                **_render(self.entries[i].op),
                "model_result": describe(self.rejected[i][0]),
                "why_not": self.rejected[i][1],
            }
            for i in frame.candidates
            if i in self.rejected
        ]
        keys: set[str] = set()
        for i in self.rejected:
            keys.update(_keys(self.entries[i].request))
        related = [i for i in path if keys & set(_keys(self.entries[i].request))][-8:]
        evidence: dict[str, Any] = {
            "operations": len(self.entries),
            "linearized": count,
            "model_revision": frame.state.revision,
            "no_valid_next": stuck,
            "last_linearized_on_same_keys": [_render(self.entries[i].op) for i in related],
            "last_linearized": [_render(self.entries[i].op) for i in path[-4:]],
        }
        first = stuck[0] if stuck else None
        detail = (
            f"; e.g. op {first['op']} ({first['request']}) got {first['outcome']}, "
            f"the model says {first['model_result']}: {first['why_not']}"
            if first
            else ""
        )
        return Violation(
            "Linearizability",
            f"no linearization: stuck after {count} of {len(self.entries)} operations at "
            f"revision {frame.state.revision}{detail}",
            evidence,
        )


_VISITED_SCAN = 8
"""States a search compares one by one for one linearized set before it hashes them."""


def _seen_before(
    visited: dict[int, list[kv.KVState] | set[kv.KVState]], linearized: int, state: kv.KVState
) -> bool:
    """Whether ``(linearized, state)`` was visited; records it if not. The same answer as
    testing a set of such pairs, without hashing the state while few states share the set."""
    seen = visited.get(linearized)
    if seen is None:
        visited[linearized] = [state]
        return False
    if isinstance(seen, set):
        if state in seen:
            return True
        seen.add(state)
        return False
    if any(other is state or other == state for other in seen):
        return True
    if len(seen) < _VISITED_SCAN:
        seen.append(state)
    else:
        visited[linearized] = {*seen, state}
    return False


def _keys(request: kv.Request | kv.RequestOp) -> list[str]:
    """The keys a request names (for picking related operations in evidence)."""
    match request:
        case kv.RangeRequest() | kv.PutRequest() | kv.DeleteRangeRequest():
            return [describe(request.key)]
        case kv.TxnRequest():
            found = [describe(c.key) for c in request.compare]
            for op in (*request.success, *request.failure):
                found.extend(_keys(op))
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


def _render(op: Operation) -> dict[str, Any]:
    return {
        "op": op.op_id,
        "client": op.client_id,
        "call": op.call,
        "ret": op.ret,
        "request": describe(op.request),
        "outcome": describe(op.outcome) if op.outcome is not None else "pending",
    }
