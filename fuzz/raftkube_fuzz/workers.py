"""Parallel fuzzing: one worker process per core, all searching the same suite.

A fuzz run is CPU-bound Python in one process, so it uses one core; as HypoFuzz, pytest-xdist
with Hypothesis and AFL's ``-M``/``-S`` do, the way to use the others is one worker process per
core, each running the ordinary single-process :func:`~raftkube_fuzz.suite_runner.run_suite`.

* **One seed describes the whole run.** Each worker's seed is drawn from the run's seed
  (:func:`worker_seeds`), so a run is repeated by its one number, and any one worker alone by
  ``--seed <its seed> --jobs 1`` (with its share of ``--examples``). Each worker is exactly as
  deterministic as a single-process run; which worker finds a failure first, and how far the
  others got meanwhile, depends on the machine's timing.
* **One example database.** Every worker opens the same Hypothesis directory database, so a
  failure any of them saved is replayed first by all of them next time. That directory is
  safe to share between processes: values are files named by their hash, written to a
  temporary file and renamed into place (Hypothesis PR #4232, "Write atomically in
  DirectoryBasedExampleDatabase", after issue #143, concurrent pytest-xdist workers reading a
  half-written entry), and reads skip entries another process deleted meanwhile (issue #372).
  A Hypothesis maintainer calls it "safe for concurrent use" ("a very basic best-effort KV
  store", Quansight-Labs/free-threaded-compatibility#116).
* **Budgets.** ``--time`` is the whole run's: every worker counts it from the moment the
  parent started the run, so the workers' start-up (a fresh interpreter importing Hypothesis,
  Trio and the project, about a second) is spent inside it; ``--examples`` is split between
  the workers, so the total is the number asked for.
* **The first failure stops the search.** A worker's progress snapshots (a few a second, over
  a queue) carry its failure count; as soon as one shows a failure the parent sets a shared
  event that every other worker's budget check reads. The finder goes on to shrink and save
  its trace exactly as a single-process run does; a worker already shrinking a failure of its
  own finishes and saves it too.

Workers are started with the ``spawn`` method: the parent may be running rich's refresh thread,
and forking a process with threads can copy a held lock into the child. Wall-clock time is read
here only to report the whole run's speed and the time to find.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import random
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from raftkube.tuning import tune_gc
from raftkube_fuzz import machine_context
from raftkube_fuzz.suite_runner import STATE_DIR, RunResult, RunTotals, run_suite
from raftkube_fuzz.suites import get_suite

_POLL_SECONDS = 0.1
"""How long the parent waits on the queue before checking on its workers and the display."""
_GRACE_SECONDS = 2.0
"""How long a worker that has exited is given for its last message to arrive through the
queue before it is counted as crashed."""
_INTERRUPT_SECONDS = 10.0
"""After Ctrl-C, how long workers get to stop (and send their outcome) before they are
terminated."""


def worker_seeds(seed: int, jobs: int) -> list[int]:
    """``jobs`` distinct seeds drawn from ``random.Random(seed)``: 32-bit, so a user can type
    one back in, and drawn again on the (unlikely) repeat so that no two workers search alike."""
    draw = random.Random(seed)
    seeds: list[int] = []
    while len(seeds) < jobs:
        candidate = draw.getrandbits(32)
        if candidate not in seeds:
            seeds.append(candidate)
    return seeds


def split_examples(examples: int, jobs: int) -> list[int]:
    """``examples`` shared as evenly as possible between ``jobs`` workers, the first ones taking
    the remainder; the shares sum to ``examples``."""
    base, extra = divmod(examples, jobs)
    return [base + (1 if i < extra else 0) for i in range(jobs)]


def resolve_jobs(jobs: int) -> int:
    """``--jobs 0`` means one worker per CPU core."""
    return jobs if jobs > 0 else (os.cpu_count() or 1)


@attrs.frozen
class _Job:
    """What one worker process is asked to run: ``run_suite``'s arguments, picklable."""

    index: int
    suite: str
    seed: int | None
    """None: ``run_suite`` draws one (and reports it in its outcome)."""
    kwargs: dict[str, Any]


def _work(job: _Job, messages: Any, stop: Any) -> None:
    """A worker process's body: run the suite, streaming progress, then send the outcome. Any
    exception is sent as text (with the traceback) so the parent can report it with the seed.

    Ctrl-C reaches every process of the terminal's group; a worker ignores it and leaves the
    stopping to the parent, which sets ``stop``: an interrupt landing inside a simulated
    member would be recorded as that member's crash, a failure to shrink, not a way out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tune_gc()

    def progress(s: machine_context.MachineContext, _elapsed: float) -> None:
        messages.put(("progress", job.index, RunTotals.of(s)))

    try:
        outcome = run_suite(
            job.suite, seed=job.seed, on_progress=progress, stop=stop.is_set, **job.kwargs
        )
    except BaseException:
        messages.put(("crashed", job.index, traceback.format_exc()))
        return
    messages.put(("done", job.index, outcome))


@attrs.define
class _Slot:
    """The parent's view of one worker."""

    job: _Job
    process: Any = None
    """None until the worker is started."""
    progress: RunTotals = attrs.Factory(RunTotals)
    outcome: RunResult | None = None
    found_at: float | None = None
    """The whole run's wall time when the parent first saw this worker's failure."""
    exited_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    @property
    def running(self) -> bool:
        return self.process is not None and not self.finished


ProgressView = Callable[[list[RunTotals | None], float], None]
"""Receives each worker's latest snapshot (None until it starts) and the wall time so far."""

DoneView = Callable[[int, RunResult], None]
"""Receives each job's index and outcome as soon as it ends."""


@attrs.define
class _Pool:
    """Worker processes for a list of jobs, at most ``limit`` running at a time, and the
    parent's side of them: the queue they report on and the event that stops them."""

    jobs: list[_Job]
    limit: int
    stop_at_failure: bool
    """A parallel run stops every worker at the first failure; independent runs (the mutants'
    hunts, where a failure is the goal) do not."""
    context: Any = attrs.field(init=False)
    messages: Any = attrs.field(init=False)
    stop: Any = attrs.field(init=False)
    slots: list[_Slot] = attrs.field(init=False)
    started: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.messages = self.context.Queue()
        self.stop = self.context.Event()
        self.slots = [_Slot(job=job) for job in self.jobs]
        self.started = time.monotonic()

    def run(self, on_progress: ProgressView | None, on_done: DoneView | None = None) -> None:
        """Run every job; Ctrl-C stops them all (each at its next step, or terminated after
        a while) and is raised again."""
        try:
            self._supervise(on_progress, on_done)
        except KeyboardInterrupt:
            self.stop.set()
            self._supervise(None, patience=_INTERRUPT_SECONDS)
            for slot in self.slots:
                if slot.running:
                    slot.process.terminate()
            raise
        for slot in self.slots:
            slot.process.join()

    def _supervise(
        self,
        on_progress: ProgressView | None,
        on_done: DoneView | None = None,
        patience: float | None = None,
    ) -> None:
        """Start jobs as places free up and receive the workers' messages until every one has
        sent its outcome or died (or for ``patience`` seconds at most), telling the rest to
        stop at the first failure if asked to, and draw their progress. Receiving is also what
        lets a finished worker exit: a process does not end while what it put on a queue is
        still unread."""
        last_drawn = -1.0
        give_up = None if patience is None else time.monotonic() + patience
        while not all(slot.finished for slot in self.slots):
            if give_up is not None and time.monotonic() >= give_up:
                return
            self._launch()
            try:
                kind, index, payload = self.messages.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                pass
            else:
                _receive(self.slots[index], kind, payload, time.monotonic() - self.started)
                if kind == "done" and on_done is not None:
                    on_done(index, payload)
            now = time.monotonic() - self.started
            if self.stop_at_failure and any(
                slot.progress.failures or _failed(slot) for slot in self.slots
            ):
                self.stop.set()
            for slot in self.slots:
                _check_alive(slot, now)
            if on_progress is not None and now - last_drawn >= 0.25:
                last_drawn = now
                on_progress(self._snapshots(), now)
        if on_progress is not None:
            on_progress(self._snapshots(), time.monotonic() - self.started)

    def _launch(self) -> None:
        """Start waiting jobs while fewer than ``limit`` run; none once told to stop."""
        for slot in self.slots:
            if self.stop.is_set() or sum(s.running for s in self.slots) >= self.limit:
                return
            if slot.process is None:
                slot.process = self.context.Process(
                    target=_work,
                    args=(slot.job, self.messages, self.stop),
                    name=f"fuzz-worker-{slot.job.index}",
                    daemon=True,
                )
                slot.process.start()

    def _snapshots(self) -> list[RunTotals | None]:
        return [slot.progress if slot.process is not None else None for slot in self.slots]


def run_parallel(
    suite_name: str,
    *,
    jobs: int,
    time_budget: float | None = None,
    examples: int | None = None,
    seed: int | None = None,
    mutant: str | None = None,
    traces_dir: Path = STATE_DIR / "traces",
    state_dir: Path = STATE_DIR,
    on_progress: Callable[[RunTotals, float], None] | None = None,
    **kwargs: Any,
) -> RunResult:
    """Fuzz ``suite_name`` in ``jobs`` worker processes (see the module's docstring) and return
    the totals of them all, the first failure found, and each worker's own outcome.

    ``kwargs`` are passed to every worker's ``run_suite`` (``steps_per_example``,
    ``shrink_time``, ``config``). ``on_progress`` receives the sum of the workers' latest
    snapshots and the run's wall time. Ctrl-C stops every worker and is raised again here."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    suite = get_suite(suite_name).name  # an unknown suite fails here, not in every worker
    if time_budget is None and examples is None:
        examples = 100  # run_suite's default, shared out rather than run by each worker
    run_seed = seed if seed is not None else time.time_ns()
    shares: Sequence[int | None]
    if examples is not None:
        jobs = max(1, min(jobs, examples))  # a worker with no examples to run is not started
        shares = split_examples(examples, jobs)
    else:
        shares = [None] * jobs
    seeds = worker_seeds(run_seed, jobs)
    common = dict(
        kwargs,
        time_budget=time_budget,
        mutant=mutant,
        traces_dir=traces_dir,
        state_dir=state_dir,
        started=time.monotonic(),
    )
    pool = _Pool(
        jobs=[
            _Job(index=i, suite=suite, seed=seeds[i], kwargs=dict(common, examples=shares[i]))
            for i in range(jobs)
        ],
        limit=jobs,
        stop_at_failure=True,
    )

    def draw(snapshots: list[RunTotals | None], elapsed: float) -> None:
        if on_progress is not None:
            on_progress(sum((p for p in snapshots if p is not None), RunTotals()), elapsed)

    pool.run(draw)
    return _combine(suite, mutant, run_seed, pool.slots, time.monotonic() - pool.started)


def run_each(
    runs: Sequence[tuple[str, dict[str, Any]]],
    *,
    jobs: int,
    on_progress: ProgressView | None = None,
    on_done: DoneView | None = None,
) -> list[RunResult]:
    """Independent fuzz runs (``run_suite``'s suite and keyword arguments, ``seed`` among
    them), up to ``jobs`` at a time, each in a process of its own; their outcomes in order,
    and each told to ``on_done`` as it ends. A run that crashed has an outcome with ``error``
    set. Ctrl-C stops them all."""
    pool = _Pool(
        jobs=[
            _Job(
                index=i,
                suite=suite,
                seed=kwargs.get("seed"),
                kwargs={key: value for key, value in kwargs.items() if key != "seed"},
            )
            for i, (suite, kwargs) in enumerate(runs)
        ],
        limit=max(1, jobs),
        stop_at_failure=False,
    )
    pool.run(on_progress, on_done)
    outcomes: list[RunResult] = []
    for slot in pool.slots:
        assert slot.outcome is not None
        outcomes.append(slot.outcome)
    return outcomes


def _receive(slot: _Slot, kind: str, payload: Any, at: float) -> None:
    if kind == "progress":
        slot.progress = payload
        if payload.failures and slot.found_at is None:
            slot.found_at = at
    elif kind == "done":
        slot.outcome = payload
        slot.progress = _progress_of(payload)
        if payload.failed and slot.found_at is None:
            slot.found_at = at
    else:
        slot.outcome = _lost(slot, f"crashed:\n{payload}")
        slot.found_at = at if slot.found_at is None else slot.found_at


def _check_alive(slot: _Slot, now: float) -> None:
    """A worker that exited without sending its outcome (killed, out of memory) is given a
    moment for a message still in the queue, then counted as crashed. ``now`` is the run's
    wall time."""
    if not slot.running or slot.process.is_alive():
        return
    if slot.exited_at is None:
        slot.exited_at = now
    elif now - slot.exited_at >= _GRACE_SECONDS:
        slot.outcome = _lost(slot, f"exited with status {slot.process.exitcode}")
        slot.found_at = now


def _failed(slot: _Slot) -> bool:
    return slot.outcome is not None and slot.outcome.failed


def _lost(slot: _Slot, what: str) -> RunResult:
    """The outcome of a worker that ended without one of its own: its last progress, its
    seed, and what happened as the error."""
    p = slot.progress
    return RunResult(
        suite=slot.job.suite,
        mutant=slot.job.kwargs.get("mutant"),
        examples=p.examples,
        steps=p.steps,
        elapsed=0.0,
        virtual_seconds=p.virtual_seconds,
        deliveries=p.deliveries,
        events=p.events,
        faults=dict(p.faults),
        error=what,
        seed=slot.job.seed,
    )


def _progress_of(outcome: RunResult) -> RunTotals:
    return RunTotals(
        examples=outcome.examples,
        steps=outcome.steps,
        virtual_seconds=outcome.virtual_seconds,
        deliveries=outcome.deliveries,
        events=outcome.events,
        faults=dict(outcome.faults),
        failures=1 if outcome.failed else 0,
    )


def _combine(
    suite: str, mutant: str | None, seed: int, slots: list[_Slot], elapsed: float
) -> RunResult:
    """The whole run's outcome: the workers' totals, and the first failure the parent saw.
    Each worker's ``time_to_find`` is restated on the whole run's clock (from before the
    workers started), so the workers' times compare and the first is the run's."""
    workers: list[RunResult] = []
    for slot in slots:
        assert slot.outcome is not None
        outcome = slot.outcome
        if outcome.failed:
            outcome = attrs.evolve(outcome, time_to_find=slot.found_at)
        workers.append(outcome)
    totals = sum((_progress_of(outcome) for outcome in workers), RunTotals())
    combined = RunResult(
        suite=suite,
        mutant=mutant,
        examples=totals.examples,
        steps=totals.steps,
        elapsed=elapsed,
        virtual_seconds=totals.virtual_seconds,
        deliveries=totals.deliveries,
        events=totals.events,
        faults=totals.faults,
        seed=seed,
        workers=workers,
    )
    order = found_first(workers)
    traced = [i for i in order if workers[i].trace is not None]
    if traced:
        first = workers[traced[0]]
        combined.trace = first.trace
        combined.trace_path = first.trace_path
        combined.time_to_find = first.time_to_find
    errors = [
        f"worker {i} (seed {workers[i].seed}): {workers[i].error}"
        for i in order
        if workers[i].error is not None
    ]
    if errors:
        combined.error = "; ".join(errors)
    return combined


def found_first(workers: list[RunResult]) -> list[int]:
    """The indices of the workers that failed, in the order the parent saw their failures."""
    failed = [i for i, w in enumerate(workers) if w.failed]
    return sorted(failed, key=lambda i: workers[i].time_to_find or 0.0)
