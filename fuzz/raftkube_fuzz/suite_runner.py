"""Running a suite under Hypothesis for a budget of time or examples, and saving what fails.

Hypothesis has no time budget of its own, so the runner starts long
``run_state_machine_as_test`` runs (each seeded from the run's seed) and the suite machine stops
the current one when the budget is spent by raising
:class:`~raftkube_fuzz.machine_context.BudgetSpent`, a BaseException Hypothesis lets through
without shrinking. (Many short Hypothesis runs would be simpler, but each starts from its
simplest examples, all first choices: a tenth of the time went to them.) A run is not endless,
though: it covers at most :data:`GENERATION` examples, then the next one starts. Hypothesis's
engine keeps what every example of its run did (a cache of up to 10,000 results, each holding
all its choices, and the tree of every choice made), so the memory of one endless run only grew.
Once any example has failed the budget no longer applies, so shrinking is never cut short.
When it fails, Hypothesis has already shrunk the failure and re-run the smallest example last,
so the most
recent :class:`~raftkube_fuzz.example.Run` is the shrunk one; :mod:`raftkube_fuzz.minimize` then
deletes the steps Hypothesis left in place, and that run is the trace written.

Hypothesis's example database lives under ``.raftkube/fuzz/hypothesis/<suite>/<mutant>`` so a
failure found once is tried first next time, and mutant failures never leak into clean runs.
The ``explain`` phase is off: it traces every executed line and costs a factor of ten. So is
the ``target`` phase: over a long run its hill-climbing took over, breeding thousands of cheap
near-copies of the best-scoring examples (a 3-minute kv run made half the simulated progress,
with partitions all but gone from the fault mix), while the search it was meant to steer
(lease exposure) is now done by pinning the scenario instead (``Mutant.config``).

Wall-clock time is read here (and in :mod:`raftkube_fuzz.workers`, which runs this in several
processes), only to enforce the budget and report speed; nothing inside a simulated run sees it.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import attrs
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import FlakyStrategyDefinition
from hypothesis.stateful import run_state_machine_as_test

from raftkube_fuzz import machine_context
from raftkube_fuzz.example import Run
from raftkube_fuzz.minimize import minimize
from raftkube_fuzz.suites import get_suite
from raftkube_fuzz.trace import Trace
from raftkube_fuzz.violation import Violation

_run_machine: Any = run_state_machine_as_test
"""Hypothesis releases differ on whether this function is typed; calling it through ``Any``
keeps mypy quiet on both kinds."""

STATE_DIR = Path(".raftkube") / "fuzz"
STEPS_PER_EXAMPLE = 40
GENERATION = 100
"""The most examples one Hypothesis run covers before the next starts afresh: few enough to
bound what its engine keeps, enough that its first, simplest examples cost little."""
SHRINK_SECONDS = 90.0
"""Default cap on shrinking one failure. Hypothesis stops shrinking after a fixed 300 s; a
failing example here can cost seconds per re-run, so the runner lowers the cap."""


@contextmanager
def _shrink_budget(seconds: float) -> Iterator[None]:
    """Cap Hypothesis's shrinking time. Hypothesis exposes no setting for it, only the module
    constant its engine reads when shrinking starts; if a release renames it, the cap is
    silently Hypothesis's own, which is slower but still correct."""
    from hypothesis.internal.conjecture import engine

    saved = getattr(engine, "MAX_SHRINKING_SECONDS", None)
    if saved is None:
        yield
        return
    engine.MAX_SHRINKING_SECONDS = seconds  # type: ignore[assignment]
    try:
        yield
    finally:
        engine.MAX_SHRINKING_SECONDS = saved


@attrs.frozen
class RunTotals:
    """A snapshot of a run's totals, small and picklable: what a worker process sends its parent
    a few times a second, and what the live display draws (one run, or the sum of several)."""

    examples: int = 0
    steps: int = 0
    virtual_seconds: float = 0.0
    deliveries: int = 0
    events: int = 0
    faults: dict[str, int] = attrs.Factory(dict)
    failures: int = 0

    @classmethod
    def of(cls, session: machine_context.MachineContext) -> RunTotals:
        """The session's totals, including the example in progress."""
        t = session.totals()
        return cls(
            examples=int(t["examples"]),
            steps=int(t["steps"]),
            virtual_seconds=t["virtual_seconds"],
            deliveries=int(t["deliveries"]),
            events=int(t["events"]),
            faults=dict(sorted(session.faults.items())),
            failures=session.failures,
        )

    def __add__(self, other: RunTotals) -> RunTotals:
        faults = dict(self.faults)
        for kind, count in other.faults.items():
            faults[kind] = faults.get(kind, 0) + count
        return RunTotals(
            examples=self.examples + other.examples,
            steps=self.steps + other.steps,
            virtual_seconds=self.virtual_seconds + other.virtual_seconds,
            deliveries=self.deliveries + other.deliveries,
            events=self.events + other.events,
            faults=dict(sorted(faults.items())),
            failures=self.failures + other.failures,
        )


@attrs.define
class RunResult:
    """What one fuzz run (or a mutant hunt) ended with: its totals and the first violation.
    Not an operation's ``Outcome`` (Ok/Failed/Unknown) in a checked history."""

    suite: str
    mutant: str | None
    examples: int
    steps: int
    elapsed: float
    virtual_seconds: float
    deliveries: int
    events: int
    faults: dict[str, int]
    trace: Trace | None = None
    trace_path: Path | None = None
    time_to_find: float | None = None
    error: str | None = None
    """A failure that is not a property violation (a bug in the harness itself)."""
    seed: int | None = None
    """The seed the run was derived from (drawn from the clock when none was given), so any
    run, or any one worker of a parallel run, can be repeated with ``--seed``."""
    workers: list[RunResult] = attrs.Factory(list)
    """For a parallel run (:mod:`raftkube_fuzz.workers`), each worker's own outcome in worker
    order; empty for a single-process run."""

    @property
    def failed(self) -> bool:
        return self.trace is not None or self.error is not None


def patch_for(mutant: str | None) -> AbstractContextManager[Any]:
    if mutant is None:
        return nullcontext()
    from raftkube_fuzz.mutants import MUTANTS  # only now: it imports what the mutants patch

    try:
        return MUTANTS[mutant].patch()
    except KeyError:
        raise KeyError(f"no mutant named {mutant!r}; mutants: {', '.join(MUTANTS)}") from None


@contextmanager
def _seeded(machine: type, seed: int) -> Iterator[None]:
    """Force the seed Hypothesis runs ``machine`` with, so a whole fuzz run is repeatable from
    ``--seed``. Hypothesis draws an unforced seed from a generator of its own, seeded from the
    OS (not from the ``random`` module, whose seeding it saves and restores around every
    example), so the public ``@seed`` decorator is the way in. It marks the class itself, so
    the previous mark is put back afterwards and a plain pytest run of the suite stays random.
    """
    missing = object()
    saved = machine.__dict__.get("_hypothesis_internal_use_seed", missing)
    hypothesis_seed(seed)(machine)
    try:
        yield
    finally:
        if saved is missing:
            delattr(machine, "_hypothesis_internal_use_seed")
        else:
            machine._hypothesis_internal_use_seed = saved  # type: ignore[attr-defined]


def run_suite(
    suite_name: str,
    *,
    time_budget: float | None = None,
    examples: int | None = None,
    seed: int | None = None,
    mutant: str | None = None,
    traces_dir: Path = STATE_DIR / "traces",
    state_dir: Path = STATE_DIR,
    steps_per_example: int = STEPS_PER_EXAMPLE,
    shrink_time: float = SHRINK_SECONDS,
    config: dict[str, Any] | None = None,
    on_progress: Callable[[machine_context.MachineContext, float], None] | None = None,
    stop: Callable[[], bool] | None = None,
    started: float | None = None,
    generation: int = GENERATION,
) -> RunResult:
    """Fuzz ``suite_name`` until the budget (seconds and/or examples) is spent or a property
    fails; returns totals and, on failure, the shrunk trace and where it was saved.

    ``stop``, when given, ends the search early once it returns true (a parallel run's other
    worker found a failure, or the user pressed Ctrl-C); like the budget, it never cuts short
    the shrinking of a failure this run found itself.

    ``started`` is the ``time.monotonic()`` reading the time budget (and the reported elapsed
    time) counts from, by default now: a parallel run passes its own start, so that its
    workers' start-up is spent inside ``--time`` and the whole run takes as long as asked
    (the monotonic clock is the machine's, the same in every process).

    ``generation`` is the most examples one Hypothesis run covers (:data:`GENERATION`)."""
    suite = get_suite(suite_name)
    if time_budget is None and examples is None:
        examples = 100
    run_seed = seed if seed is not None else time.time_ns()
    master = random.Random(run_seed)
    if started is None:
        started = time.monotonic()
    found_at: list[float] = []
    last_report = 0.0

    def found(_run: Run) -> None:
        nonlocal last_report
        found_at.append(time.monotonic() - started)
        last_report = -1.0  # report the failure at once, not up to a quarter second later

    session = machine_context.MachineContext(mutant=mutant, on_violation=found)
    if mutant is not None:
        from raftkube_fuzz.mutants import MUTANTS

        session.config_overrides = dict(MUTANTS[mutant].config)
    if config:
        unknown = sorted(set(config) - set(suite.default_config))
        if unknown:
            raise KeyError(
                f"suite {suite.name!r} has no setting {', '.join(unknown)}; settings: "
                + ", ".join(sorted(suite.default_config))
            )
        session.config_overrides.update(config)
    database = DirectoryBasedExampleDatabase(
        state_dir / "hypothesis" / suite.name / (mutant or "none")
    )
    failure: BaseException | None = None

    def spent() -> bool:
        if session.failures:
            return False  # never cut a shrink short: the budget is for searching
        if stop is not None and stop():
            return True
        if time_budget is not None and time.monotonic() - started >= time_budget:
            return True
        return examples is not None and session.examples >= examples

    def report() -> None:
        nonlocal last_report
        now = time.monotonic()
        if on_progress is not None and now - last_report >= 0.25:
            last_report = now
            on_progress(session, now - started)

    session.on_step = report
    session.spent = spent
    hypothesis_settings = settings(
        stateful_step_count=steps_per_example,
        deadline=None,
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
        database=database,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
        print_blob=False,
    )
    with machine_context.use(session), patch_for(mutant), _shrink_budget(shrink_time):
        try:
            left = examples
            while left is None or left > 0:
                size = generation if left is None else min(left, generation)
                with _seeded(suite.machine, master.getrandbits(64)):
                    _run_machine(
                        suite.machine, settings=settings(hypothesis_settings, max_examples=size)
                    )
                # The collector runs rarely in a fuzz process (raftkube.tuning): without a full
                # pass here, the cyclic garbage of a hundred examples (Hypothesis's engine and
                # machines, tracebacks) piles up until one happens to run, minutes later.
                gc.collect()
                if left is not None:
                    left -= size
                if spent():
                    break
        except machine_context.BudgetSpent:
            pass
        except FlakyStrategyDefinition:
            # Stopping mid-example can look to Hypothesis like a replay that drew less data
            # than before; after the budget ran out, with nothing failed, that is just the end.
            if not (session.budget_hit and session.failures == 0):
                raise
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            failure = exc
        run = session.last_run
        if isinstance(failure, Violation) and run is not None and run.violation is failure:
            session.last_run = minimize(suite, run, seconds=shrink_time / 2)
    elapsed = time.monotonic() - started
    if on_progress is not None:
        on_progress(session, elapsed)
    outcome = RunResult(
        suite=suite.name,
        mutant=mutant,
        examples=session.examples,
        steps=session.steps,
        elapsed=elapsed,
        virtual_seconds=session.virtual_seconds,
        deliveries=session.deliveries,
        events=session.events,
        faults=dict(sorted(session.faults.items())),
        time_to_find=found_at[0] if found_at else None,
        seed=run_seed,
    )
    if failure is not None:
        run = session.last_run
        if isinstance(failure, Violation) and run is not None and run.violation is not None:
            outcome.trace = run.trace()
            outcome.trace_path = outcome.trace.save(traces_dir / trace_name(run))
        else:
            outcome.error = f"{type(failure).__name__}: {failure}"
    return outcome


def trace_name(run: Run) -> str:
    v = run.violation
    prop = v.prop if v is not None else "failure"
    mutant = f"-{run.mutant}" if run.mutant else ""
    return f"{run.suite.name}{mutant}-{prop}-{run.digest()[:10]}.json"
