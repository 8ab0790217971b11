"""The model checker: it completes on the real model, its symmetry reduction is sound, and every
mutant is caught with the property it breaks."""

from __future__ import annotations

import attrs
import pytest

from raftkube.cli import main
from raftkube_spec.explore import Exploration, Problem, explore
from raftkube_spec.raft.config import RaftConfig
from raftkube_spec.raft.events import Event
from raftkube_spec.raft.invariants import INVARIANTS, state_violation, step_violation
from raftkube_spec.raft.model import RaftSpec
from raftkube_spec.raft.mutants import MUTANTS
from raftkube_spec.raft.state import RaftState
from raftkube_spec.raft.symmetry import Symmetry, canonical

SMALL = RaftConfig(servers=3, max_term=2, max_log=1, max_messages=1, max_restarts=0)

# Each feature alone, exhaustively, at bounds that keep CI quick; every feature at once is
# covered by the deep random walks (test_raft_walks.py) instead, because the product of all
# of them is too large to exhaust in Python here (see docs/spec.md).
FEATURE_CONFIGS = {
    "raft.tla": SMALL,
    "restarts": attrs.evolve(SMALL, max_restarts=1),
    "pre-vote": attrs.evolve(SMALL, pre_vote=True, max_log=0),
    "check-quorum": attrs.evolve(SMALL, check_quorum=True),
    "read-index": attrs.evolve(SMALL, read_index=True),
    "compaction": attrs.evolve(SMALL, compaction=True),
    "leader-transfer": attrs.evolve(SMALL, leader_transfer=True),
    "pipelined-batches": attrs.evolve(SMALL, pipelining=True, max_batch=2, max_log=2),
    # With restarts: what a leader's crash loses is what the feature is about.
    "parallel-persist": attrs.evolve(SMALL, parallel_persist=True, max_restarts=1),
}


def check(
    spec: RaftSpec, symmetry: bool = True, start: RaftState | None = None
) -> Exploration[RaftState, Event]:
    # Configuration entries name servers, so membership changes are checked without symmetry.
    symmetry = symmetry and not spec.config.membership
    problem: Problem[RaftState, Event] = Problem(
        initial=[start if start is not None else spec.initial()],
        successors=spec.successors,
        check_state=state_violation,
        check_step=step_violation,
        canonical=Symmetry() if symmetry else (lambda s: s),
    )
    return explore(problem)


def reachable(spec: RaftSpec) -> set[RaftState]:
    seen = {spec.initial()}
    todo = [spec.initial()]
    while todo:
        for _, t in spec.successors(todo.pop()):
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return seen


@pytest.mark.parametrize("config", FEATURE_CONFIGS.values(), ids=FEATURE_CONFIGS.keys())
def test_the_model_satisfies_every_property_at_small_bounds(config: RaftConfig) -> None:
    result = check(RaftSpec(config))
    assert result.violation is None
    assert result.complete and result.distinct_states > 1000


def test_symmetry_reduction_explores_exactly_the_renamed_classes() -> None:
    spec = RaftSpec(attrs.evolve(SMALL, max_term=1, max_restarts=0))
    every = reachable(spec)
    reduced = check(spec, symmetry=True)
    assert reduced.complete
    assert reduced.distinct_states == len({canonical(s) for s in every}) < len(every)


EXPECTED = {
    "figure8-commit": "LeaderCompleteness",
    "forget-vote-on-restart": "ElectionSafety",
    "skip-log-consistency-check": "LogMatching",
    "vote-twice-in-term": "ElectionSafety",
    "count-stale-votes": "ElectionSafety",
    "read-without-quorum": "ReadIndexSafety",
    "truncate-on-stale-append": "CommittedInQuorum",
    "count-unpersisted-own-entries": "CommittedInQuorum",
    "config-change-before-own-term-commit": "LeaderCompleteness",
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_every_mutant_is_caught(name: str) -> None:
    mutant = MUTANTS[name]
    spec = mutant.spec(mutant.configure(RaftConfig()))
    start = mutant.start(spec)
    result = check(spec, start=start)
    assert result.violation is not None, f"{name} survived"
    assert result.violation.property == EXPECTED[name]
    # The counterexample is a real run of the mutant, ending in the violation.
    s = result.violation.initial
    assert s == start
    for event, after in result.violation.steps:
        assert spec.step(s, event) == after
        s = after


def test_every_invariant_has_a_distinct_name() -> None:
    assert len({inv.name for inv in INVARIANTS}) == len(INVARIANTS)


def test_cli_reports_a_mutant_as_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "check", "--mutant", "vote-twice-in-term"]) == 1
    out = capsys.readouterr().out
    assert "VIOLATION of ElectionSafety" in out
    assert "1. Timeout(server=" in out


def test_cli_lists_mutants(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "check", "--list-mutants"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in MUTANTS)


def test_cli_checks_small_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["spec", "check", "--max-term", "1", "--max-log", "1", "--max-messages", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "no violation (complete)" in out and "distinct states:" in out


def test_cli_rejects_bad_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["spec", "check", "--max-term", "-1"])
    assert exit_.value.code == 2
    assert "--max-term" in capsys.readouterr().err
