"""What the linearizability checker makes of random histories that are linearizable by
construction (:mod:`tests.helpers.histories`), and of the same histories with one read's answer
changed."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import raftkube_spec.kv as kv
from raftkube_fuzz.checks.history import History, Ok
from raftkube_fuzz.checks.linearizability import (
    LinearizabilityUndecided,
    check_linearizable,
    find_linearization,
)
from raftkube_fuzz.checks.watches import (
    WatchRecord,
    check_watches,
    committed_events,
    events_from_linearization,
)
from raftkube_fuzz.violation import Violation
from raftkube_spec.kv.keyrange import KeyRange
from tests.helpers.histories import (
    nonempty_reads,
    random_history,
    random_run,
    with_read_records,
)


def rejected(h: History) -> Violation:
    with pytest.raises(Violation) as caught:
        check_linearizable(h)
    assert caught.value.prop == "Linearizability"
    json.dumps(caught.value.evidence)
    return caught.value


def test_step_budget_is_reported_not_passed() -> None:
    h = random_history(random.Random(3), 120, 4, unknown_rate=0.2)
    with pytest.raises(LinearizabilityUndecided):
        check_linearizable(h, max_steps=5)


# -- random histories that are linearizable by construction -------------------------------


@settings(max_examples=60)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_ops=st.integers(1, 60),
    clients=st.integers(1, 5),
    unknown_rate=st.sampled_from([0.0, 0.05, 0.2]),
)
def test_random_linearizable_histories_pass(
    seed: int, n_ops: int, clients: int, unknown_rate: float
) -> None:
    h = random_history(random.Random(seed), n_ops, clients, unknown_rate=unknown_rate)
    lin = find_linearization(h)
    completed = {op.op_id for op in h.operations() if isinstance(op.outcome, Ok)}
    assert completed <= {op.op_id for op in lin.operations}
    state = lin.initial
    for request in lin.requests:
        state, _ = kv.apply(state, request)
    assert state == lin.final_state


@settings(max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), n_ops=st.integers(2, 60), clients=st.integers(1, 4))
def test_a_read_missing_one_record_is_always_rejected(seed: int, n_ops: int, clients: int) -> None:
    # The spec always answers count == len(kvs) here (no limits), so no order explains a read
    # that lost one record: this is refuted by the search itself, not by a shortcut.
    rnd = random.Random(seed)
    h = random_history(rnd, n_ops, clients, unknown_rate=0.05)
    reads = nonempty_reads(h)
    assume(reads)
    i = rnd.choice(reads)
    outcome = h.operations()[i].outcome
    assert isinstance(outcome, Ok) and isinstance(outcome.result, kv.RangeResponse)
    rejected(with_read_records(h, i, outcome.result.kvs[1:]))


def test_300_operation_4_client_histories_need_little_search() -> None:
    """Cost measured in model steps, not seconds (wall time belongs in benchmarks): a
    linearizable 300-operation history from 4 clients takes a few hundred steps, about one per
    operation plus the few overlaps; a search that backtracked needlessly would blow the budget
    and raise LinearizabilityUndecided."""
    for seed in range(5):
        check_linearizable(random_history(random.Random(seed), 300, 4), max_steps=1_000)


@settings(max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), n_ops=st.integers(1, 60), clients=st.integers(1, 4))
def test_watches_of_the_real_commit_order_agree_with_the_witness(
    seed: int, n_ops: int, clients: int
) -> None:
    # Unknown writes make several witnesses possible; built with what the watches saw, the
    # one found must agree with every watch of the real commit order.
    rnd = random.Random(seed)
    h, applied = random_run(rnd, n_ops, clients, unknown_rate=0.2)
    truth = committed_events(applied)
    records = []
    for _ in range(3):
        key, end = rnd.choice([(b"a", b""), (b"b", b""), (b"a", b"d"), (b"b", kv.FROM_KEY)])
        start = rnd.randrange(2, max(3, len(truth.events) + 2))
        in_range = [
            e
            for e in truth.events
            if e.kv.mod_revision >= start and e.kv.key in KeyRange.of(key, end)
        ]
        seen = tuple(in_range[: rnd.randrange(len(in_range) + 1)])
        records.append(WatchRecord(key, end, start, seen, rnd.choice(["open", "cancelled"])))
    watched = [e for r in records for e in r.events]
    witness = find_linearization(h, watched=watched)
    check_watches(records, events_from_linearization(witness))
