"""``raftkube fuzz``: run suites, replay traces, list suites and mutants, score the mutants.

Exit status: ``run`` exits 1 when a property failed (the trace path is printed), 0 when the
budget was spent without a failure and 130 when Ctrl-C stopped it first; with ``--jobs`` it runs
several worker processes (:mod:`raftkube_fuzz.workers`) and exits 1 if any of them failed.
``replay`` exits 1 when it reproduces the recorded violation at the recorded step, 0 when the run
now passes, 3 when it fails differently (the code changed, or determinism broke) and 2 for a
file it cannot read. ``mutants`` exits 0 when every mutant was found, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.live import Live
from rich.table import Table

from raftkube.tuning import tune_gc
from raftkube_fuzz.cli_display import (
    hunts_table,
    make_console,
    print_outcome,
    progress_table,
    workers_table,
)
from raftkube_fuzz.cli_replay import replay_trace

if TYPE_CHECKING:
    from collections.abc import Callable

    from raftkube_fuzz.machine_context import MachineContext
    from raftkube_fuzz.suite_runner import RunResult, RunTotals

STATE_DIR = Path(".raftkube") / "fuzz"


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``1.5h`` -> seconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: expected a number with an optional unit ms, s, m or h"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def config_item(text: str) -> tuple[str, Any]:
    """``servers=5`` -> ("servers", 5); values are JSON when they parse as JSON, else strings."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"invalid setting {text!r}: expected KEY=VALUE")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def jobs(text: str) -> int:
    """``--jobs``: a number of worker processes, 0 meaning one per CPU core."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"invalid number of jobs {text!r}: expected 0 (one per CPU core) or a positive "
            "number of worker processes"
        )
    return value


def register(commands: Any) -> None:
    fuzz = commands.add_parser(
        "fuzz",
        help="run fuzz suites against the implementation in a simulated world",
        description="Deterministic simulation testing: Hypothesis drives the real members "
        "in a simulated world and checks every run against the spec.",
    )
    sub = fuzz.add_subparsers(dest="fuzz_command", metavar="SUBCOMMAND", required=True)

    run = sub.add_parser("run", help="fuzz one suite for a budget of time or examples")
    run.add_argument("suite", help="the suite to run (raftkube fuzz list)")
    run.add_argument("--time", type=duration, default=None, help="time budget, e.g. 10m")
    run.add_argument("--examples", type=int, default=None, help="number of examples")
    run.add_argument("--seed", type=int, default=None, help="seed of the whole fuzz run")
    run.add_argument("--mutant", default=None, help="patch in a named bug (raftkube fuzz list)")
    run.add_argument(
        "--traces", type=Path, default=STATE_DIR / "traces", help="where failing traces go"
    )
    run.add_argument(
        "--steps", type=int, default=None, help="maximum steps per example (default 40)"
    )
    run.add_argument(
        "--config",
        type=config_item,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fix a suite setting for every example, e.g. servers=5 or read_mode=lease",
    )
    run.add_argument(
        "--shrink-time",
        type=duration,
        default=None,
        help="cap on shrinking a failure (default 90s)",
    )
    run.add_argument(
        "--jobs",
        type=jobs,
        default=1,
        metavar="N",
        help="worker processes sharing the example database (default 1; 0 = one per CPU "
        "core); --time applies to each, --examples is split between them",
    )
    run.set_defaults(handler=_run)

    replay = sub.add_parser("replay", help="re-run a trace file and show its timeline")
    replay.add_argument("trace", type=Path, help="a trace file written by 'fuzz run'")
    replay.add_argument("--until", type=int, default=None, help="stop after this step")
    replay.add_argument("--json", action="store_true", help="print the result as JSON")
    replay.add_argument(
        "--quiet", action="store_true", help="print only the verdict, not the timeline"
    )
    replay.add_argument(
        "--html",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the timeline as a self-contained HTML page (a lane per host, messages as "
        "arrows, faults as spans, the violation marked) instead of printing it",
    )
    replay.set_defaults(handler=replay_trace)

    listing = sub.add_parser("list", help="list the suites and the mutants")
    listing.set_defaults(handler=_list)

    mutants = sub.add_parser("mutants", help="check that every mutant is found")
    mutants.add_argument(
        "--time-per-mutant", type=duration, default=120.0, help="budget per mutant (120s)"
    )
    mutants.add_argument("--seed", type=int, default=None, help="seed of every fuzz run")
    # A long example replays slowly: no-conflict-truncation at --seed 90210 kept 40 steps
    # after 60 s of shrinking and reached 4 within 300 s.
    mutants.add_argument(
        "--shrink-time", type=duration, default=300.0, help="cap on shrinking each (300s)"
    )
    mutants.add_argument(
        "--only", nargs="+", default=None, metavar="MUTANT", help="these mutants only"
    )
    mutants.add_argument("--traces", type=Path, default=STATE_DIR / "traces" / "mutants")
    mutants.add_argument(
        "--jobs",
        type=jobs,
        default=1,
        metavar="N",
        help="hunt up to N mutants at a time, each in its own process (default 1; 0 = one per "
        "CPU core)",
    )
    mutants.set_defaults(handler=_mutants)

    # Imported here, like the other commands' modules: it loads the member and client code.
    from raftkube_fuzz.nemesis.cli import register as register_nemesis

    register_nemesis(sub, duration)


# --- run ----------------------------------------------------------------------------------------


def _rerun_command(args: argparse.Namespace, outcome: RunResult, index: int) -> str:
    """The command that repeats worker ``index`` of a parallel run alone: its seed, its share
    of the examples, the run's other options."""
    from raftkube_fuzz.workers import split_examples

    words = ["raftkube fuzz run", args.suite]
    if args.mutant is not None:
        words += ["--mutant", args.mutant]
    if args.time is not None:
        words += ["--time", f"{args.time:g}s"]
    if args.examples is not None or args.time is None:
        total = args.examples if args.examples is not None else 100
        words += ["--examples", str(split_examples(total, len(outcome.workers))[index])]
    if args.steps is not None:
        words += ["--steps", str(args.steps)]
    if args.shrink_time is not None:
        words += ["--shrink-time", f"{args.shrink_time:g}s"]
    for key, value in args.config:
        words += ["--config", f"{key}={json.dumps(value)}"]
    words += ["--seed", str(outcome.workers[index].seed), "--jobs", "1"]
    return " ".join(words)


def _unknown(kind: str, name: str, known: list[str]) -> int:
    print(f"raftkube fuzz: no {kind} named {name!r}; {kind}s: {', '.join(known)}", file=sys.stderr)
    return 2


class _Interrupt:
    """Ctrl-C during a single-process run: while inside, the first one only asks the run to
    stop at its next step (calling the object then answers True), and a second one
    interrupts at once. An interrupt raised where it lands would most often land inside a
    simulated member's task: the run would judge that member as crashed and start shrinking
    a failure that is not one. (Trio leaves a handler installed before the run in place.) A
    parallel run needs none of this: its workers ignore SIGINT and the parent stops them."""

    def __init__(self) -> None:
        self.asked = False
        self._previous: Any = None

    def __call__(self) -> bool:
        return self.asked

    def _handle(self, signum: int, frame: object) -> None:
        if self.asked:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.asked = True

    def __enter__(self) -> _Interrupt:
        self._previous = signal.getsignal(signal.SIGINT)
        if self._previous is not signal.SIG_IGN:  # started with Ctrl-C ignored (nohup): keep it
            signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        signal.signal(signal.SIGINT, self._previous)


def _run(args: argparse.Namespace) -> int:
    tune_gc()
    from raftkube_fuzz.suite_runner import RunTotals, run_suite
    from raftkube_fuzz.suites import SUITE_NAMES
    from raftkube_fuzz.workers import resolve_jobs, run_parallel

    if args.suite not in SUITE_NAMES:
        return _unknown("suite", args.suite, sorted(SUITE_NAMES))
    if args.mutant is not None:
        # Only now: the catalogue imports every part of the system a mutant patches.
        from raftkube_fuzz.mutants import MUTANTS

        if args.mutant not in MUTANTS:
            return _unknown("mutant", args.mutant, list(MUTANTS))
    console = make_console()
    title = f"raftkube fuzz run {args.suite}" + (f" --mutant {args.mutant}" if args.mutant else "")
    kwargs: dict[str, Any] = {}
    if args.steps is not None:
        kwargs["steps_per_example"] = args.steps
    if args.shrink_time is not None:
        kwargs["shrink_time"] = args.shrink_time
    if args.config:
        kwargs["config"] = dict(args.config)
    from raftkube_fuzz.suites import get_suite

    suite = get_suite(args.suite)
    unknown = sorted(set(kwargs.get("config", {})) - set(suite.default_config))
    if unknown:
        return _unknown("setting", unknown[0], sorted(suite.default_config))
    kwargs.update(
        time_budget=args.time,
        examples=args.examples,
        seed=args.seed,
        mutant=args.mutant,
        traces_dir=args.traces,
    )
    workers = resolve_jobs(args.jobs)
    if workers > 1:
        title += f" --jobs {workers}"
    interrupt = _Interrupt()
    try:
        with Live(console=console, auto_refresh=False, transient=False) as live:

            def draw(p: RunTotals, elapsed: float) -> None:
                heading = title
                if interrupt.asked:
                    heading += ": stopping at the next step (Ctrl-C again to abort)"
                live.update(progress_table(heading, p, elapsed), refresh=True)

            if workers == 1:
                with interrupt:
                    outcome = run_suite(
                        args.suite,
                        on_progress=lambda s, t: draw(RunTotals.of(s), t),
                        stop=interrupt,
                        **kwargs,
                    )
            else:
                outcome = run_parallel(args.suite, jobs=workers, on_progress=draw, **kwargs)
    except KeyboardInterrupt:
        console.print("\n[bold]interrupted[/]" + (": every worker stopped" if workers > 1 else ""))
        return 130
    console.print()
    if outcome.workers:
        from raftkube_fuzz.workers import found_first

        shown = next(iter(found_first(outcome.workers)), 0)
        console.print(workers_table(outcome, _rerun_command(args, outcome, shown)))
    print_outcome(console, outcome, interrupted=interrupt.asked)
    if outcome.failed:
        return 1
    return 130 if interrupt.asked else 0


# --- list and mutants ---------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    from raftkube_fuzz.mutants import MUTANTS
    from raftkube_fuzz.suites import SUITE_NAMES, get_suite

    console = make_console()
    suites = Table(title="suites")
    suites.add_column("suite")
    suites.add_column("what it exercises")
    for name in sorted(SUITE_NAMES):
        suites.add_row(name, get_suite(name).description)
    console.print(suites)
    mutants = Table(title="mutants (raftkube fuzz run SUITE --mutant NAME)")
    mutants.add_column("mutant")
    mutants.add_column("suite")
    mutants.add_column("caught by")
    mutants.add_column("the bug")
    for m in MUTANTS.values():
        mutants.add_row(m.name, m.suite, m.expected, m.description)
    console.print(mutants)
    return 0


def _mutant_row(outcome: RunResult) -> list[str]:
    """A hunt's columns after the mutant's name and suite: found, time, steps, property, trace."""
    if outcome.trace is not None and outcome.trace.violation is not None:
        v = outcome.trace.violation
        found_in = outcome.time_to_find if outcome.time_to_find is not None else outcome.elapsed
        return ["yes", f"{found_in:.1f} s", str(v.step + 1), v.prop, str(outcome.trace_path)]
    return ["NO", "-", "-", outcome.error or "-", "-"]


def _mutants(args: argparse.Namespace) -> int:
    tune_gc()
    from raftkube_fuzz.mutants import MUTANTS
    from raftkube_fuzz.suite_runner import RunTotals, run_suite
    from raftkube_fuzz.workers import resolve_jobs, run_each

    for name in args.only or ():
        if name not in MUTANTS:
            return _unknown("mutant", name, list(MUTANTS))
    console = make_console()
    names = args.only if args.only else list(MUTANTS)
    table = Table(title=f"mutants, {args.time_per_mutant:.0f} s each")
    for column in ("mutant", "suite", "found", "time to find", "steps", "property", "trace"):
        table.add_column(column)
    settings: dict[str, Any] = {
        "time_budget": args.time_per_mutant,
        "seed": args.seed,
        "traces_dir": args.traces,
        "shrink_time": args.shrink_time,
    }
    at_once = resolve_jobs(args.jobs)
    rows: dict[str, list[str]] = {}

    def done(name: str, outcome: RunResult, say: Callable[[str], None]) -> None:
        rows[name] = _mutant_row(outcome)
        row = rows[name]
        say(f"{name}: {row[0]} {row[1]} {row[3]}")

    if at_once > 1:
        with Live(console=console, auto_refresh=False, transient=True) as live:

            def hunting(snapshots: list[RunTotals | None], elapsed: float) -> None:
                live.update(hunts_table(names, snapshots, elapsed), refresh=True)

            run_each(
                [(MUTANTS[name].suite, dict(settings, mutant=name)) for name in names],
                jobs=at_once,
                on_progress=hunting,
                on_done=lambda index, outcome: done(names[index], outcome, live.console.print),
            )
    else:
        for name in names:
            with Live(console=console, auto_refresh=False, transient=True) as live:

                def progress(s: MachineContext, elapsed: float, name: str = name) -> None:
                    live.update(
                        progress_table(f"mutant {name}", RunTotals.of(s), elapsed), refresh=True
                    )

                outcome = run_suite(
                    MUTANTS[name].suite, mutant=name, on_progress=progress, **settings
                )
            done(name, outcome, console.print)
    missed = sum(rows[name][0] != "yes" for name in names)
    for name in names:
        table.add_row(name, MUTANTS[name].suite, *rows[name])
    console.print(table)
    return 0 if missed == 0 else 1
