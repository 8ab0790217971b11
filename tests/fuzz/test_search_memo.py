"""A run's searches share a SearchMemo: it must never change what a search finds.

A run checks its history after every step, so the memo sees a history that grows, whose
operations get their outcomes late, and whose verdict changes from one search to the next.
Every search with the shared memo is compared with a search that shares nothing (a fresh memo
per call); a remembered result that was wrong for its (state, request) pair would make the
two disagree on a witness or on the evidence of a violation.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import attrs
import pytest

import raftkube_spec.kv as kv
from raftkube_fuzz.checks.history import History, Ok, Operation, Unknown
from raftkube_fuzz.checks.linearizability import (
    LinearizabilityUndecided,
    SearchMemo,
    find_linearization,
)
from raftkube_fuzz.violation import Violation
from tests.helpers.histories import nonempty_reads, random_history, with_read_records

Verdict = tuple[object, ...]


def verdict(history: History, memo: SearchMemo | None, max_steps: int) -> Verdict:
    """Everything a search reports: the witness, or the violation and its evidence."""
    try:
        lin = find_linearization(history, memo=memo, max_steps=max_steps)
    except Violation as v:
        return ("violation", v.prop, v.message, repr(v.evidence))
    except LinearizabilityUndecided as u:
        return ("undecided", str(u))
    state = lin.initial
    for request in lin.requests:  # the witness replays without the memo
        state, _ = kv.apply(state, request)
    assert state == lin.final_state
    return ("witness", lin.operations, lin.requests, lin.initial, lin.final_state)


def check_growing(snapshots: Iterator[History], *, max_steps: int = 200_000) -> list[str]:
    """Compare shared-memo and memo-free searches on every snapshot; the verdicts' kinds."""
    shared = SearchMemo()
    tiny = SearchMemo(limit=3)  # forgets all the time: the bound must be harmless too
    kinds = []
    for history in snapshots:
        alone = verdict(history, None, max_steps)
        assert verdict(history, shared, max_steps) == alone
        assert verdict(history, tiny, max_steps) == alone
        kinds.append(str(alone[0]))
    return kinds


def replayed(final: History) -> Iterator[History]:
    """``final`` recorded again event by event, as a run records it, after each event."""
    done_at: dict[int, list[Operation]] = {}
    for op in final.operations():
        if op.invoked_before_ret is not None:
            done_at.setdefault(op.invoked_before_ret, []).append(op)
    history = History()
    for op in final.operations():
        history.invoke(op.client_id, op.request, op.call, serializable=op.serializable)
        yield history
        for done in done_at.get(len(history), []):
            assert done.outcome is not None
            history.complete(done.op_id, done.outcome, done.call if done.ret is None else done.ret)
            yield history


def put_response(revision: int) -> kv.PutResponse:
    return kv.PutResponse(kv.ResponseHeader(revision))


def read_response(revision: int, *records: kv.KeyValue) -> kv.RangeResponse:
    return kv.RangeResponse(kv.ResponseHeader(revision), records, False, len(records))


def record(value: bytes, revision: int, version: int) -> kv.KeyValue:
    return kv.KeyValue(b"a", 2, revision, version, value)


def test_a_history_whose_verdict_changes_step_by_step() -> None:
    def steps() -> Iterator[History]:
        h = History()
        first = h.invoke(0, kv.PutRequest(b"a", b"1"), 0.0)
        yield h
        h.complete(first, Ok(put_response(2)), 1.0)
        yield h
        lost = h.invoke(1, kv.PutRequest(b"a", b"2"), 2.0)  # pending, then Unknown
        yield h
        read = h.invoke(0, kv.RangeRequest(b"a"), 3.0)
        h.complete(read, Ok(read_response(2, record(b"1", 2, 1))), 4.0)
        yield h  # the pending write need not have happened yet
        h.complete(lost, Unknown("timeout"), 5.0)
        read = h.invoke(0, kv.RangeRequest(b"a"), 6.0)
        h.complete(read, Ok(read_response(3, record(b"2", 3, 2))), 7.0)
        yield h  # now it must have: the witness changes
        read = h.invoke(2, kv.RangeRequest(b"a"), 8.0)
        h.complete(read, Ok(read_response(3, record(b"1", 2, 1))), 9.0)
        yield h  # a stale read at a current revision: no order explains it
        read = h.invoke(0, kv.RangeRequest(b"a"), 10.0)
        h.complete(read, Ok(read_response(3, record(b"2", 3, 2))), 11.0)
        yield h

    kinds = check_growing(steps())
    assert kinds == ["witness"] * 5 + ["violation"] * 2


@pytest.mark.parametrize("seed", range(6))
def test_random_histories_growing_and_turning_bad(seed: int) -> None:
    rnd = random.Random(seed)
    final = random_history(rnd, 40, 3, unknown_rate=0.2)
    assert set(check_growing(replayed(final))) == {"witness"}
    # One read loses a record from some step on: every search after it must say so, with
    # the same evidence as a search that remembered nothing.
    reads = nonempty_reads(final)
    bad = with_read_records(final, reads[len(reads) // 2], ())
    kinds = check_growing(replayed(bad))
    assert "violation" in kinds
    assert kinds[-1] == "violation"


def test_a_small_budget_stays_undecided_with_the_memo() -> None:
    # A remembered application still counts as a step, so the memo cannot turn a search that
    # runs out of budget into a decided one.
    final = random_history(random.Random(3), 60, 4, unknown_rate=0.2)
    kinds = check_growing(replayed(final), max_steps=30)
    assert "undecided" in kinds


def test_visited_states_are_recognized_by_equality_before_and_after_hashing() -> None:
    """The search's visited test scans a few states per linearized set, then hashes them:
    either way a state equal to one seen (not the same object) counts as seen."""
    from raftkube_fuzz.checks.linearizability.search import VISITED_SCAN, seen_before

    states = []
    state = kv.initial_state()
    for n in range(3 * VISITED_SCAN):
        state, _ = kv.apply(state, kv.PutRequest(b"k%d" % n, b"v"))
        states.append(state)
    visited: dict[int, list[kv.KVState] | set[kv.KVState]] = {}
    for count, s in enumerate(states, start=1):
        assert not seen_before(visited, 5, s)
        assert all(seen_before(visited, 5, attrs.evolve(t)) for t in states[:count])
        assert not seen_before(visited, 6, attrs.evolve(s)) and seen_before(visited, 6, s)
    assert isinstance(visited[5], set) and len(visited[5]) == len(states)
