"""A fuzz run is a sequence of bounded Hypothesis runs, so its memory stays flat.

Hypothesis's engine keeps every example one run of it executed (a cache of results and a tree
of choices); a fuzz run of ten minutes inside one Hypothesis run grew without bound. Small
budgets (raft suite, five steps an example) keep these to a few seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from raftkube_fuzz import suite_runner
from raftkube_fuzz.suite_runner import run_suite


def _recording(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    real = suite_runner._run_machine

    def run_machine(machine: type, *, settings: Any) -> None:
        sizes.append(settings.max_examples)
        real(machine, settings=settings)

    monkeypatch.setattr(suite_runner, "_run_machine", run_machine)
    return sizes


def test_a_run_of_many_examples_is_split_into_bounded_hypothesis_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = _recording(monkeypatch)
    runs = [
        run_suite(
            "raft",
            examples=5,
            seed=3,
            steps_per_example=5,
            generation=2,
            traces_dir=tmp_path / str(i),
            state_dir=tmp_path / str(i),
        )
        for i in range(2)
    ]
    assert sizes == [2, 2, 1] * 2
    first, second = runs
    assert first.trace is None and first.error is None
    assert first.examples >= 5
    # Each Hypothesis run is seeded from the run's seed: the whole run still repeats itself.
    assert (first.examples, first.steps, first.deliveries, first.events) == (
        second.examples,
        second.steps,
        second.deliveries,
        second.events,
    )


def test_a_run_within_one_generation_is_one_hypothesis_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So a run of up to :data:`~raftkube_fuzz.suite_runner.GENERATION` examples draws exactly
    what it drew when a run was always a single Hypothesis run."""
    sizes = _recording(monkeypatch)
    run_suite(
        "raft",
        examples=3,
        seed=3,
        steps_per_example=5,
        traces_dir=tmp_path,
        state_dir=tmp_path,
    )
    assert sizes == [3]
