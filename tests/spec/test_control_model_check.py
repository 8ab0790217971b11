"""The control loops' composed model: every slice passes its safety properties and ESR, and
every mutant is caught by the property it breaks, with a trace that replays."""

from __future__ import annotations

import argparse
import io

import pytest

from raftkube.cli import main
from raftkube_spec.cli import run_kube_check
from raftkube_spec.control.check import check
from raftkube_spec.control.model import Loop
from raftkube_spec.control.mutants import MUTANTS
from raftkube_spec.control.slices import SLICES

# Slices that finish within seconds each; node-lifecycle (about 20 s) is marked slow.
QUICK = (
    "workloads",
    "rollout",
    "endpoints",
    "garbage-collector",
    "leader-election",
    "accounts",
    "cloud",
)
SLOW = tuple(name for name in SLICES if name not in QUICK)


@pytest.mark.parametrize("name", QUICK)
def test_slice_is_safe_and_reconciles(name: str) -> None:
    sl = SLICES[name]()
    result = check(sl)
    assert result.exploration.violation is None
    assert result.exploration.complete and result.exploration.distinct_states > 10
    assert 0 < result.esr_rounds <= sl.esr_bound


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_larger_slice_is_safe_and_reconciles(name: str) -> None:
    sl = SLICES[name]()
    result = check(sl)
    assert result.exploration.violation is None and result.exploration.complete


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_every_mutant_is_caught_with_a_replayable_trace(name: str) -> None:
    mutant = MUTANTS[name]
    sl = mutant.build()
    violation = check(sl, esr=mutant.esr).exploration.violation
    assert violation is not None and violation.property == mutant.expected
    state = violation.initial
    for action, after in violation.steps:
        assert (action, after) in list(sl.model.explore_successors(state))
        state = after


def test_esr_catches_a_loop_that_never_acts() -> None:
    sl = SLICES["endpoints"]()
    idle = sl.with_loop(Loop("endpoints", lambda m, v, n: (m, ()), None))
    violation = check(idle).exploration.violation
    assert violation is not None and violation.property == "EventualStableReconciliation"


def test_cli_kube_mutant_exits_1_with_the_trace(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["spec", "check", "--kube", "--mutant", "rs-no-expectations"])
    out = capsys.readouterr().out
    assert code == 1
    assert "VIOLATION of NoOverCreation" in out and "run replicaset" in out


def test_cli_lists_kube_mutants(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "check", "--kube", "--list-mutants"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in MUTANTS)


def test_cli_kube_refuses_a_raft_mutant() -> None:
    args = argparse.Namespace(list_mutants=False, mutant="figure8-commit", max_states=None)
    assert run_kube_check(args, io.StringIO()) == 2
