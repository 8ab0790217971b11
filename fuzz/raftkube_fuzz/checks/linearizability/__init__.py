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

The package, by job: :mod:`.model` is the interface the search checks a history against
(Porcupine's ``Model`` shape, plus optional hooks for the cuts) and :mod:`.kv_model` the KV
store's implementation of it; :mod:`.normalise` prepares the operations, :mod:`.refute`
refutes what one or two operations already show and tabulates the observations the cuts use,
:mod:`.search` is the search and its memo, :mod:`.render` turns a failure into evidence.
Everything above about leases, revisions and records is the KV model's; the search itself
knows only the :class:`~.model.Model` interface.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from raftkube_fuzz.checks.history import History
from raftkube_fuzz.checks.linearizability.kv_model import KV_MODEL, KVModel
from raftkube_fuzz.checks.linearizability.model import Cuts, Model
from raftkube_fuzz.checks.linearizability.refute import check_revisions_never_go_back
from raftkube_fuzz.checks.linearizability.search import (
    DEFAULT_MAX_STEPS,
    MEMO_LIMIT,
    LinearizabilityUndecided,
    Linearization,
    Search,
    SearchMemo,
    prepared_entries,
)

__all__ = [
    "DEFAULT_MAX_STEPS",
    "KV_MODEL",
    "MEMO_LIMIT",
    "Cuts",
    "KVModel",
    "LinearizabilityUndecided",
    "Linearization",
    "Model",
    "SearchMemo",
    "check_linearizable",
    "find_linearization",
]


def check_linearizable(
    history: History,
    *,
    model: Model[Any, Any, Any] | None = None,
    initial: Any = None,
    watched: Iterable[Any] = (),
    max_steps: int = DEFAULT_MAX_STEPS,
    memo: SearchMemo | None = None,
) -> None:
    """Raise :class:`Violation` ("Linearizability") unless ``history`` is linearizable."""
    find_linearization(
        history, model=model, initial=initial, watched=watched, max_steps=max_steps, memo=memo
    )


def find_linearization(
    history: History,
    *,
    model: Model[Any, Any, Any] | None = None,
    initial: Any = None,
    watched: Iterable[Any] = (),
    max_steps: int = DEFAULT_MAX_STEPS,
    memo: SearchMemo | None = None,
) -> Linearization:
    """Search for a witness order against ``model`` (the KV store's by default, or the
    memo's); raise Violation if none exists.

    ``initial`` is the model state before the history (``model.init()`` by default).

    ``watched`` are extra observations the model's cuts take; for the KV model, events
    watchers received. They are observations like any read: when
    Unknown writes fill revisions no read pinned down, only they say which write really
    took a revision, so a witness that must agree with watches
    (:mod:`raftkube_fuzz.checks.watches` checks them against this witness) has to be built
    with them.

    ``memo`` lets repeated searches over one growing history share their work (pass the same
    one each time); without it the search uses a fresh one. A memo belongs to one model.

    Raises :class:`LinearizabilityUndecided` when ``max_steps`` model applications were not
    enough to decide: a budget overrun is reported, never mistaken for a pass.
    """
    if memo is None:
        memo = SearchMemo(model=model if model is not None else KV_MODEL)
    elif model is not None and memo.model is not model:
        raise ValueError(f"the memo belongs to model {memo.model.name!r}, not {model.name!r}")
    model = memo.model
    start = memo.canonical(initial if initial is not None else model.init())
    entries = prepared_entries(history, memo)
    check_revisions_never_go_back(entries, model.revision(start))
    model.refute(entries, start)
    return Search(entries, start, max_steps, tuple(watched), memo).run()
