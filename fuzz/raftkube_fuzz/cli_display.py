"""What ``raftkube fuzz`` shows: the live progress of a run and of a hunt for mutants, a
parallel run's workers, and the verdict with its trace and the command that replays it.
The commands themselves are :mod:`raftkube_fuzz.cli`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from raftkube_fuzz.suite_runner import RunResult, RunTotals


def make_console() -> Console:
    """Rich's console; when output is not a terminal (a log, CI), a width that fits the tables
    instead of the 80 columns rich assumes."""
    return Console() if sys.stdout.isatty() else Console(width=160)


def progress_table(title: str, p: RunTotals, elapsed: float) -> Table:
    """Live totals; for a parallel run, the sum over the workers, with rates per second of the
    whole run's wall time."""
    table = Table(title=title, show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    rate = elapsed if elapsed > 0 else 1.0
    table.add_row("elapsed", f"{elapsed:8.1f} s")
    table.add_row("examples", f"{p.examples:8d}")
    table.add_row("steps", f"{p.steps:8d}")
    table.add_row("virtual time", f"{p.virtual_seconds:8.1f} s  ({p.virtual_seconds / rate:.2f}x)")
    table.add_row("deliveries", f"{p.deliveries:8d}  ({p.deliveries / rate:,.0f}/s)")
    table.add_row("events", f"{p.events:8d}  ({p.events / rate:,.0f}/s)")
    faults = ", ".join(f"{k} {v}" for k, v in sorted(p.faults.items())) or "-"
    table.add_row("faults", faults)
    return table


def workers_table(outcome: RunResult, rerun: str) -> Table:
    """One row per worker and the totals, and the command that re-runs one worker alone (the
    first that failed, else the first)."""
    table = Table(title=f"{len(outcome.workers)} workers, run seed {outcome.seed}")
    for column in ("worker", "seed", "examples", "steps", "virtual s", "deliveries", "result"):
        table.add_column(column)
    for index, w in enumerate(outcome.workers):
        if w.trace is not None and w.trace.violation is not None:
            result = f"[red]FAILED[/] {w.trace.violation.prop}"
        elif w.error is not None:
            result = "[red]ERROR[/]"
        else:
            result = "passed"
        table.add_row(
            str(index),
            str(w.seed),
            str(w.examples),
            str(w.steps),
            f"{w.virtual_seconds:.1f}",
            str(w.deliveries),
            result,
        )
    table.add_row(
        "total",
        "",
        str(outcome.examples),
        str(outcome.steps),
        f"{outcome.virtual_seconds:.1f}",
        str(outcome.deliveries),
        "FAILED" if outcome.failed else "passed",
        style="bold",
    )
    table.caption = f"re-run one worker alone: {rerun}"
    return table


def print_outcome(console: Console, outcome: RunResult, *, interrupted: bool = False) -> None:
    """The verdict: the failure and its trace, a harness error, or a pass (``interrupted``:
    stopped by Ctrl-C before the budget was spent, no failure found so far)."""
    if outcome.trace is not None and outcome.trace.violation is not None:
        v = outcome.trace.violation
        console.print(
            f"[bold red]FAILED[/]: {v.prop} after step {v.step} "
            f"({len(outcome.trace.steps)} steps in the shrunk example)"
        )
        console.print(f"  {v.message}")
        console.print(f"  trace: {outcome.trace_path}")
        console.print(f"  replay: raftkube fuzz replay {outcome.trace_path}")
        print_more_traces(console, outcome)
    if outcome.error is not None:
        console.print(f"[bold red]ERROR[/] (not a property violation): {outcome.error}")
    if not outcome.failed:
        verdict = (
            "[bold]interrupted[/], no failure so far" if interrupted else "[bold green]passed[/]"
        )
        console.print(
            f"{verdict}: {outcome.examples} examples, {outcome.steps} steps, "
            f"{outcome.virtual_seconds:.1f} virtual s in {outcome.elapsed:.1f} s "
            f"({outcome.deliveries / max(outcome.elapsed, 1e-9):,.0f} deliveries/s)"
        )


def print_more_traces(console: Console, outcome: RunResult) -> None:
    """A parallel run's other workers' traces, in the order their failures were seen."""
    from raftkube_fuzz.workers import found_first

    for index in found_first(outcome.workers):
        w = outcome.workers[index]
        if w.trace_path is not None and w.trace_path != outcome.trace_path:
            console.print(f"  also found by worker {index} (seed {w.seed}): {w.trace_path}")


def hunts_table(names: list[str], snapshots: list[RunTotals | None], elapsed: float) -> Table:
    """Live view of ``fuzz mutants --jobs``: each mutant's hunt, waiting, running or found."""
    table = Table(title=f"mutants, {elapsed:.0f} s", box=None)
    for column in ("mutant", "state", "examples", "steps", "deliveries"):
        table.add_column(column)
    for name, p in zip(names, snapshots, strict=True):
        if p is None:
            table.add_row(name, "waiting", "", "", "")
        else:
            state = "found" if p.failures else "hunting"
            table.add_row(name, state, str(p.examples), str(p.steps), str(p.deliveries))
    return table
