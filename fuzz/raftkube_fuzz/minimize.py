"""Delta debugging of a failing step list, after Hypothesis has shrunk it.

Hypothesis shrinks a step towards the *simplest* value its strategy can produce, which for a
fault is its first kind (``heal``), and it can rarely delete a step outright: every step lets
virtual time pass, so deleting one shifts everything after it, and timing-dependent failures
then vanish. Its shrunk examples therefore keep runs of steps that do nothing but pass time.

This pass keeps the timing and drops the noise, re-running every candidate exactly as a replay
would (same suite, seed and mutant) and keeping a change only if the run still fails with the
same property:

1. replace each step that is not a ``wait`` by ``wait(STEP_TIME)``, the time it let pass;
2. merge adjacent waits into one;
3. delete steps one at a time, last to first.

Steps after the failing one are dropped. It stops when a round changes nothing or the time is
up, so the result is as small as the budget allowed, never bigger than what it was given.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from raftkube_fuzz.example import Run, run_steps
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites.base import STEP_TIME, Suite


def minimize(suite: Suite, failing: Run, *, seconds: float) -> Run:
    """A run that fails like ``failing`` (same property) with as few and as simple steps as
    found within ``seconds`` of wall-clock time; ``failing`` itself if nothing helped."""
    assert failing.violation is not None, "minimize a failing run"
    prop = failing.violation.prop
    deadline = time.monotonic() + seconds
    best = failing

    def attempt(candidate: list[Step]) -> bool:
        nonlocal best
        if time.monotonic() >= deadline:
            return False
        run = run_steps(suite, failing.config, failing.seed, candidate, mutant=failing.mutant)
        if run.violation is None or run.violation.prop != prop:
            return False
        best = run
        return True

    changed = True
    while changed and time.monotonic() < deadline:
        changed = False
        for rewrite in (_to_wait, _merge_waits, _delete):
            changed |= rewrite(_through_failure(best), attempt)
    return best


def _to_wait(steps: list[Step], attempt: Callable[[list[Step]], bool]) -> bool:
    changed = False
    i = len(steps) - 1
    while i >= 0:
        if steps[i].kind != "wait":
            candidate = [*steps[:i], Step.of("wait", seconds=STEP_TIME), *steps[i + 1 :]]
            if attempt(candidate):
                steps = candidate
                changed = True
        i -= 1
    return changed


def _merge_waits(steps: list[Step], attempt: Callable[[list[Step]], bool]) -> bool:
    changed = False
    i = len(steps) - 2
    while i >= 0:
        if i + 1 < len(steps) and steps[i].kind == steps[i + 1].kind == "wait":
            total = float(steps[i]["seconds"]) + float(steps[i + 1]["seconds"])
            candidate = [*steps[:i], Step.of("wait", seconds=total), *steps[i + 2 :]]
            if attempt(candidate):
                steps = candidate
                changed = True
        i -= 1
    return changed


def _delete(steps: list[Step], attempt: Callable[[list[Step]], bool]) -> bool:
    changed = False
    i = len(steps) - 1
    while i >= 0:
        candidate = steps[:i] + steps[i + 1 :]
        if attempt(candidate):
            steps = candidate
            changed = True
        i = min(i - 1, len(steps) - 1)
    return changed


def _through_failure(run: Run) -> list[Step]:
    v = run.violation
    assert v is not None
    end = len(run.steps) if v.step is None else v.step + 1
    return list(run.steps[:end])
