"""``raftkube fuzz run --jobs N``: several worker processes, one seed, one example database.

Small budgets (raft suite, five steps an example) keep each run to a few seconds, most of it
the workers' interpreters starting up.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from raftkube.cli import build_parser, main
from raftkube_fuzz.suite_runner import RunResult, run_suite
from raftkube_fuzz.trace import load_trace
from raftkube_fuzz.workers import (
    resolve_jobs,
    run_each,
    run_parallel,
    split_examples,
    worker_seeds,
)


def test_worker_seeds_are_derived_deterministically_and_distinct() -> None:
    seeds = worker_seeds(7, 4)
    assert seeds == worker_seeds(7, 4)
    assert len(set(seeds)) == 4
    assert worker_seeds(7, 2) == seeds[:2]  # more workers only add seeds
    assert worker_seeds(8, 4) != seeds


def test_examples_are_split_to_the_requested_total() -> None:
    assert split_examples(4, 2) == [2, 2]
    assert split_examples(7, 3) == [3, 2, 2]
    assert sum(split_examples(101, 4)) == 101


def test_jobs_zero_means_one_per_core() -> None:
    assert resolve_jobs(0) == (os.cpu_count() or 1)
    assert resolve_jobs(3) == 3


def test_cli_parses_jobs_and_rejects_negative(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(["fuzz", "run", "raft"]).jobs == 1
    assert parser.parse_args(["fuzz", "run", "raft", "--jobs", "0"]).jobs == 0
    assert parser.parse_args(["fuzz", "run", "raft", "--jobs", "2"]).jobs == 2
    for bad in ("-1", "two"):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(["fuzz", "run", "raft", "--jobs", bad])
        assert exit_info.value.code == 2
        assert "invalid number of jobs" in capsys.readouterr().err


def test_two_workers_pass_and_sum_to_the_whole(tmp_path: Path) -> None:
    outcome = run_parallel(
        "raft",
        jobs=2,
        examples=4,
        seed=7,
        steps_per_example=5,
        traces_dir=tmp_path / "traces",
        state_dir=tmp_path / "state",
    )
    assert not outcome.failed, outcome.error
    assert outcome.examples == 4
    assert len(outcome.workers) == 2
    assert [w.seed for w in outcome.workers] == worker_seeds(7, 2)
    assert [w.examples for w in outcome.workers] == [2, 2]
    for field in ("examples", "steps", "deliveries", "events"):
        assert getattr(outcome, field) == sum(getattr(w, field) for w in outcome.workers)
    assert outcome.virtual_seconds == pytest.approx(sum(w.virtual_seconds for w in outcome.workers))
    faults: dict[str, int] = {}
    for w in outcome.workers:
        for kind, count in w.faults.items():
            faults[kind] = faults.get(kind, 0) + count
    assert outcome.faults == faults
    assert outcome.elapsed >= max(w.elapsed for w in outcome.workers)

    # A worker re-run alone with its seed and its share (a fresh database) repeats itself.
    first = outcome.workers[0]
    alone = run_suite(
        "raft",
        examples=2,
        seed=first.seed,
        steps_per_example=5,
        traces_dir=tmp_path / "alone",
        state_dir=tmp_path / "alone",
    )
    assert (alone.examples, alone.steps, alone.deliveries, alone.events, alone.faults) == (
        first.examples,
        first.steps,
        first.deliveries,
        first.events,
        first.faults,
    )


def test_a_time_budget_counts_from_the_given_start(tmp_path: Path) -> None:
    """A parallel run hands its workers its own start, so their start-up is inside ``--time``:
    a budget already spent when the worker begins runs no step."""
    outcome = run_suite(
        "raft",
        time_budget=2.0,
        started=time.monotonic() - 2.0,
        traces_dir=tmp_path / "traces",
        state_dir=tmp_path / "state",
    )
    assert not outcome.failed, outcome.error
    assert outcome.steps == 0
    assert outcome.elapsed >= 2.0


def test_a_mutant_found_by_a_worker_fails_the_run_and_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the example database goes under ./.raftkube
    traces = tmp_path / "traces"
    code = main(
        [
            "fuzz",
            "run",
            "raft",
            "--mutant",
            "unsynced-vote",
            "--examples",
            "40",
            "--steps",
            "5",
            "--seed",
            "3",
            "--shrink-time",
            "10s",
            "--jobs",
            "2",
            "--traces",
            str(traces),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED: Durability" in out
    assert "re-run one worker alone" in out
    saved = sorted(traces.glob("*.json"))
    assert saved and any(path.name in out.replace("\n", "") for path in saved)
    assert load_trace(saved[0]).mutant == "unsynced-vote"
    assert main(["fuzz", "replay", "--quiet", str(saved[0])]) == 1
    assert "reproduced: Durability" in capsys.readouterr().out


def test_a_harness_error_in_a_worker_names_its_seed(tmp_path: Path) -> None:
    outcome = run_parallel(
        "raft",
        jobs=2,
        examples=2,
        seed=5,
        config={"no_such_setting": 1},
        traces_dir=tmp_path,
        state_dir=tmp_path,
    )
    assert outcome.failed and outcome.trace is None
    assert outcome.error is not None
    for index, seed in enumerate(worker_seeds(5, 2)):
        assert f"worker {index} (seed {seed}): crashed" in outcome.error
    assert "no_such_setting" in outcome.error


def test_independent_runs_do_not_stop_each_other(tmp_path: Path) -> None:
    common = {"steps_per_example": 5, "traces_dir": tmp_path, "state_dir": tmp_path}
    told: dict[int, RunResult] = {}
    hunt, clean = run_each(
        [
            ("raft", dict(common, mutant="unsynced-vote", examples=20, seed=1, shrink_time=5)),
            ("raft", dict(common, examples=3, seed=2)),
        ],
        jobs=2,
        on_done=told.__setitem__,
    )
    assert hunt.trace is not None and hunt.trace_path is not None
    assert not clean.failed and clean.examples == 3 and clean.seed == 2
    # Each outcome was told as its run ended (what `fuzz mutants` prints a line from).
    assert told == {0: hunt, 1: clean}


def test_mutants_command_hunts_several_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(
        [
            "fuzz",
            "mutants",
            "--only",
            "unsynced-vote",
            "--time-per-mutant",
            "30s",
            "--shrink-time",
            "5s",
            "--seed",
            "1",
            "--jobs",
            "2",
            "--traces",
            str(tmp_path / "traces"),
        ]
    )
    assert code == 0
    assert "unsynced-vote: yes" in capsys.readouterr().out
