"""``raftkube spec ...``: the shell around the model checker.

This is the only module under ``raftkube_spec`` that reads a clock or prints; the models and the
explorer stay pure, and this file turns their results into figures and readable traces.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

import attrs

from .control import render as render_kube
from .control.check import check as check_slice
from .control.mutants import MUTANTS as KUBE_MUTANTS
from .control.slices import SLICES
from .explore import Problem, SearchStats, explore
from .raft import render
from .raft.config import RaftConfig, all_features
from .raft.events import Event
from .raft.invariants import INVARIANTS, STEP_PROPERTIES, state_violation, step_violation
from .raft.model import RaftSpec
from .raft.mutants import MUTANTS
from .raft.state import RaftState
from .raft.symmetry import Symmetry

_FEATURES = (
    "pipelining",
    "pre_vote",
    "check_quorum",
    "read_index",
    "compaction",
    "leader_transfer",
    "membership",
    "parallel_persist",
)
_BOUNDS = (
    "servers",
    "max_term",
    "max_log",
    "max_messages",
    "max_restarts",
    "max_reads",
    "max_batch",
    "spares",
)


def register(commands: Any) -> None:
    spec = commands.add_parser("spec", help="the executable specification and its model checker")
    sub = spec.add_subparsers(dest="spec_command", metavar="SUBCOMMAND", required=True)
    check = sub.add_parser(
        "check",
        help="explore the Raft model exhaustively under bounds, checking every invariant",
        description="Breadth-first exploration of the Raft model. Exits 1 with a shortest "
        "counterexample when an invariant is violated.",
    )
    defaults = RaftConfig()
    for bound in _BOUNDS:
        check.add_argument(
            "--" + bound.replace("_", "-"),
            type=_positive if bound == "servers" else _natural,
            default=None,
            help=f"default {getattr(defaults, bound)}",
        )
    for feature in _FEATURES:
        check.add_argument(
            "--" + feature.replace("_", "-"), action="store_true", help=f"switch on {feature}"
        )
    check.add_argument(
        "--no-network-faults",
        dest="network_faults",
        action="store_false",
        default=None,
        help="the network only reorders: it never drops or duplicates a message",
    )
    check.add_argument(
        "--all-features",
        action="store_true",
        help="switch on every feature (and batches of up to 2 entries)",
    )
    check.add_argument(
        "--kube",
        action="store_true",
        help="check the control loops' composed model (every slice) instead of Raft",
    )
    check.add_argument(
        "--mutant",
        choices=sorted({*MUTANTS, *KUBE_MUTANTS}),
        help="check a named buggy variant (with --kube: a control-loop mutant)",
    )
    check.add_argument("--list-mutants", action="store_true", help="list the mutants and exit")
    check.add_argument(
        "--max-states",
        type=_positive,
        default=None,
        help="stop (exit 0, reporting an incomplete search) after this many distinct states",
    )
    check.add_argument(
        "--no-symmetry",
        dest="symmetry",
        action="store_false",
        help="explore states that differ only by renaming servers separately",
    )
    check.set_defaults(handler=run_check)


def _natural(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _positive(text: str) -> int:
    value = _natural(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number >= 1, got 0")
    return value


def configure(args: argparse.Namespace) -> RaftConfig:
    """Defaults, then the mutant's needs, then the user's flags, in that order of precedence."""
    config = RaftConfig()
    if args.all_features:
        config = all_features(config)
    if args.mutant:
        config = MUTANTS[args.mutant].configure(config)
    changes: dict[str, Any] = {b: getattr(args, b) for b in _BOUNDS if getattr(args, b) is not None}
    changes.update({f: True for f in _FEATURES if getattr(args, f)})
    if args.network_faults is False:
        changes["network_faults"] = False
    return attrs.evolve(config, **changes)


def run_check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if args.kube:
        return run_kube_check(args, out)
    if args.list_mutants:
        for name in sorted(MUTANTS):
            out.write(f"{name:28} {MUTANTS[name].description.splitlines()[0]}\n")
        return 0
    try:
        config = configure(args)
    except ValueError as e:
        out.write(f"raftkube spec check: {e}\n")
        return 2
    mutant = MUTANTS[args.mutant] if args.mutant else None
    spec = mutant.spec(config) if mutant else RaftSpec(config)
    features = ", ".join(config.features()) or "none (raft.tla)"
    out.write(
        f"model: raft{' mutant ' + args.mutant if args.mutant else ''}, {config.servers} servers; "
        f"features: {features}\n"
        f"bounds: max-term {config.max_term}, max-log {config.max_log}, max-messages "
        f"{config.max_messages}, max-restarts {config.max_restarts}"
        + (f", max-reads {config.max_reads}" if config.read_index else "")
        + (f", spares {config.spares}" if config.membership else "")
        + "\n"
        f"checking {len(INVARIANTS)} invariants and {len(STEP_PROPERTIES)} step properties\n"
    )
    try:
        start = mutant.start(spec) if mutant else spec.initial()
    except ValueError as e:
        out.write(f"raftkube spec check: the mutant's prefix does not fit these bounds: {e}\n")
        return 2
    if mutant and mutant.prefix:
        out.write("starting from the state after the mutant's prefix (docs/spec.md)\n")
    # Configuration entries name servers and the spares start outside the configuration, so
    # servers are no longer interchangeable: no symmetry reduction with membership changes.
    symmetric = args.symmetry and not config.membership
    out.flush()
    started = time.perf_counter()

    def progress(p: SearchStats) -> None:
        rate = p.distinct_states / max(time.perf_counter() - started, 1e-9)
        sys.stderr.write(
            f"  {p.distinct_states:,} states, depth {p.depth}, {p.queued:,} queued, "
            f"{rate:,.0f} states/s\n"
        )

    problem: Problem[RaftState, Event] = Problem(
        initial=[start],
        successors=spec.successors,
        check_state=state_violation,
        check_step=step_violation,
        canonical=Symmetry() if symmetric else _as_is,
    )
    result = explore(problem, max_states=args.max_states, on_progress=progress)
    elapsed = time.perf_counter() - started
    out.write(
        f"distinct states: {result.distinct_states:,}\n"
        f"transitions:     {result.transitions:,}\n"
        f"depth reached:   {result.depth}\n"
        f"time:            {elapsed:.1f} s ({result.distinct_states / max(elapsed, 1e-9):,.0f} "
        "states/s)\n"
    )
    if result.violation is None:
        verdict = "complete" if result.complete else "stopped at --max-states"
        out.write(f"no violation ({verdict})\n")
        return 0
    v = result.violation
    out.write(f"\nVIOLATION of {v.property}: {v.evidence}\n")
    out.write(f"shortest trace, {len(v.steps)} steps:\n  0. initial state\n")
    out.write(render.state(v.initial, indent="       ") + "\n")
    for n, (event, state) in enumerate(v.steps, start=1):
        out.write(f"{n:3}. {render.event(event)}\n")
        out.write(render.state(state, indent="       ") + "\n")
    out.write(f"VIOLATION of {v.property}\n")
    return 1


def run_kube_check(args: argparse.Namespace, out: TextIO) -> int:
    """Every slice of the control loops' model, or the slice a mutant is planted in."""
    if args.list_mutants:
        for name in sorted(KUBE_MUTANTS):
            out.write(f"{name:30} {KUBE_MUTANTS[name].description}\n")
        return 0
    if args.mutant and args.mutant not in KUBE_MUTANTS:
        out.write(f"{args.mutant} is a Raft mutant; drop --kube\n")
        return 2
    if args.mutant:
        mutant = KUBE_MUTANTS[args.mutant]
        jobs = [(f"{mutant.build().name} with mutant {mutant.name}", mutant.build(), mutant.esr)]
    else:
        jobs = [(name, build(), True) for name, build in SLICES.items()]
    for title, sl, esr in jobs:
        started = time.perf_counter()
        result = check_slice(sl, esr=esr, max_states=args.max_states)
        elapsed = time.perf_counter() - started
        e = result.exploration
        out.write(
            f"slice {title}: {e.distinct_states:,} states, {e.transitions:,} transitions, "
            f"depth {e.depth}, ESR within {result.esr_rounds} rounds (bound {sl.esr_bound}), "
            f"{elapsed:.1f} s\n"
        )
        out.flush()
        if e.violation is not None:
            v = e.violation
            out.write(f"\nVIOLATION of {v.property}: {v.evidence}\n")
            out.write(f"shortest trace, {len(v.steps)} steps:\n  0. initial state\n")
            out.write(render_kube.state(v.initial, indent="       ") + "\n")
            for n, (action, state) in enumerate(v.steps, start=1):
                out.write(f"{n:3}. {action}\n")
                out.write(render_kube.state(state, indent="       ") + "\n")
            out.write(f"VIOLATION of {v.property}\n")
            return 1
        if not e.complete:
            out.write("  stopped at --max-states\n")
    out.write("no violation\n")
    return 0


def _as_is(s: RaftState) -> RaftState:
    return s
