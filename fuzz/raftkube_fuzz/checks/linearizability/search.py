"""The search itself: Wing & Gong's depth-first search with Lowe's memoization over
(linearized set, model state), its sound cuts, and the memo successive searches share.

How it works and why each cut is sound is the package docstring's subject
(:mod:`raftkube_fuzz.checks.linearizability`); the entry points are there too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from operator import attrgetter
from typing import Any

import attrs

from raftkube_fuzz.checks.history import History, Operation
from raftkube_fuzz.checks.linearizability.kv_model import KV_MODEL
from raftkube_fuzz.checks.linearizability.model import Model
from raftkube_fuzz.checks.linearizability.normalise import Entry, precedes, prepare
from raftkube_fuzz.checks.linearizability.render import stuck_violation
from raftkube_fuzz.violation import Violation

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

    ``requests`` are the operations' requests as the model replayed them
    (:meth:`.Model.normalized`: for the KV model, lease clock readings zeroed, leader-picked
    lease ids filled in), so replaying them from ``initial`` reaches ``final_state``. Unknown
    operations that the witness did not need are absent: they may have been applied after
    everything, or never, so the witness says nothing beyond ``final_state``.
    """

    operations: tuple[Operation, ...]
    requests: tuple[Any, ...]
    initial: Any
    final_state: Any


class SearchMemo:
    """What successive searches over one growing history share: prepared operations and
    model applications. It belongs to one run (one example) and one model, and dies with it.

    Sharing it cannot change a verdict or a witness. :meth:`.Model.apply` is a pure function of
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

    def __init__(
        self, limit: int = MEMO_LIMIT, *, model: Model[Any, Any, Any] | None = None
    ) -> None:
        self.limit = limit
        self.model: Model[Any, Any, Any] = model if model is not None else KV_MODEL
        """The model every search sharing this memo checks against (the KV store's unless
        told otherwise): remembered applications are this model's."""
        self._apply = self.model.apply
        self._applied: dict[tuple[int, int], tuple[Any, Any, Any, Any]] = {}
        self._prepared: dict[int, tuple[Operation, Entry | None]] = {}
        self._initial: dict[Any, Any] = {}

    def canonical(self, state: Any) -> Any:
        """The state object this memo uses for every state equal to ``state``."""
        return self._initial.setdefault(state, state)

    def apply(self, state: Any, request: Any) -> tuple[Any, Any]:
        """``model.apply(state, request)``, the same result objects for the same objects."""
        key = (id(state), id(request))
        found = self._applied.get(key)
        if found is not None:
            return found[2], found[3]
        after, result = self._apply(state, request)
        if len(self._applied) >= self.limit:
            # Forgetting everything is always safe (the memo only saves work) and keeps the
            # bound without bookkeeping on every hit.
            self._applied.clear()
        self._applied[key] = (state, request, after, result)
        return after, result

    def entries(self, operations: Iterable[Operation]) -> list[Entry]:
        """The operations the search takes part in, prepared, in the given order."""
        prepared = self._prepared
        found = []
        for op in operations:
            known = prepared.get(op.op_id)
            if known is None or known[0] is not op:
                known = prepared[op.op_id] = (op, prepare(op, self.model))
            if known[1] is not None:
                found.append(known[1])
        return found


def prepared_entries(history: History, memo: SearchMemo) -> list[Entry]:
    entries = memo.entries(history.operations())
    entries.sort(key=attrgetter("call", "op.op_id"))
    return entries


@attrs.define
class Frame:
    linearized: int
    state: Any
    lo: int
    by_revision_lo: int
    candidates: list[int]
    next: int = 0


class Search:
    """Depth-first search over (linearized set, model state), remembering its deepest point."""

    def __init__(
        self,
        entries: list[Entry],
        initial: Any,
        max_steps: int,
        watched: tuple[Any, ...],
        memo: SearchMemo,
    ) -> None:
        self.entries = entries
        self.initial = initial
        self.max_steps = max_steps
        self.memo = memo
        model = memo.model
        self.matches = model.matches
        self.revision = model.revision
        self.required = 0
        self.everything = (1 << len(entries)) - 1
        for i, entry in enumerate(entries):
            if entry.expected is not None:
                self.required |= 1 << i
        revisions = [e.revision for e in entries]
        # Only answers that reveal a revision take part in the cut (0: none, see
        # Model.result_revision): an object's 404 says nothing about where it stands.
        self.by_revision = sorted(
            (i for i, e in enumerate(entries) if e.expected is not None and e.revision > 0),
            key=revisions.__getitem__,
        )
        self.cuts = model.cuts(entries, watched)
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
        self.deepest: tuple[int, list[int], Frame] | None = None
        self.rejected: dict[int, tuple[Any, str]] = {}
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
                not linearized >> j & 1 and precedes(entries[j], entries[i]) for j in range(lo, i)
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

    def frame(self, linearized: int, state: Any, parent: Frame | None) -> Frame | None:
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
            if lowest < self.revision(state):
                self.blocked_by = self.by_revision[by_rev]
                return None
        return Frame(linearized, state, lo, by_rev, self.candidates(linearized, lo))

    def run(self) -> Linearization:
        first = self.frame(0, self.initial, None)
        assert first is not None, "revisions below the initial one are refuted up front"
        stack = [first]
        path: list[int] = []
        """The entry each frame above the first was reached by (the stack's path, kept
        beside it rather than rebuilt from the frames at every new depth)."""
        visited: dict[int, list[Any] | set[Any]] = {}
        """The (linearized set, model state) pairs seen, by linearized set: a search that
        rarely backtracks meets each set once, so a membership test needs neither the state's
        hash (which walks the whole store the first time) nor any comparison. A set met with
        many different states (Unknown writes placed in every order) turns into a hash set
        past :data:`VISITED_SCAN` states: a scan comparing each new state with every one
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
                elif not self.matches(entry.request, result, entry.expected):
                    if at_deepest:
                        self.rejected[i] = (result, "the recorded result differs")
                    continue
                if self.revision(state) != self.revision(top.state):
                    conflict = self.cuts.write_conflict(entry, state)
                    if conflict is not None:
                        if at_deepest:
                            self.rejected[i] = (result, conflict)
                        continue
                linearized = top.linearized | 1 << i
                if seen_before(visited, linearized, state):
                    continue
                child = self.frame(linearized, state, top)
                if child is None:
                    if at_deepest:
                        late = self.entries[self.blocked_by]
                        self.rejected[i] = (
                            result,
                            f"op {late.op.op_id} reports revision {late.revision} "
                            f"but would come after revision {self.revision(state)}",
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

    def note_depth(self, count: int, path: list[int], top: Frame) -> None:
        """Remember ``top``, reached by ``path`` (``count`` entries), if it is the deepest yet."""
        if self.deepest is None or count > self.deepest[0]:
            self.deepest = (count, list(path), top)
            self.rejected = {}

    def deepest_count(self) -> int:
        return 0 if self.deepest is None else self.deepest[0]

    def violation(self) -> Violation:
        assert self.deepest is not None
        return stuck_violation(self.entries, self.deepest, self.rejected, self.memo.model)


VISITED_SCAN = 8
"""States a search compares one by one for one linearized set before it hashes them."""


def seen_before(visited: dict[int, list[Any] | set[Any]], linearized: int, state: Any) -> bool:
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
    if len(seen) < VISITED_SCAN:
        seen.append(state)
    else:
        visited[linearized] = {*seen, state}
    return False
