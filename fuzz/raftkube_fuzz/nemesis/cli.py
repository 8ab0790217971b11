"""``raftkube fuzz nemesis``: the command line of a nemesis run and its summary.

Exit status: 0 when the history is linearizable, every watch delivered what it had to, no
acknowledged write was lost and the healed cluster served again; 1 on any violation (the run's
directory, with the history as JSON and every member's log, is kept and named); 2 when the
run could not be carried out (bad flags, a port in use, a cluster that never started); 130 on
Ctrl-C. Every process it started is stopped in all four cases.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import trio

from raftkube.cluster.common import (
    describe,
    expected_error,
    port_number,
    positive_int,
    root_cause,
)
from raftkube_fuzz.checks.history import Failed, Ok, Unknown
from raftkube_fuzz.mutants import MUTANTS
from raftkube_fuzz.nemesis.cluster import NemesisError
from raftkube_fuzz.nemesis.faults import Injected
from raftkube_fuzz.nemesis.runner import (
    Interrupted,
    NemesisConfig,
    NemesisResult,
    run_nemesis,
    write_history,
)
from raftkube_fuzz.nemesis.schedule import KINDS

DEFAULT_PORT = 24000
"""First port of the default range (it uses the next 122 ports: clients, Raft, relays)."""


def fault_kinds(text: str) -> tuple[str, ...]:
    """``--faults``: a comma-separated subset of the fault kinds, or ``none``."""
    if text.strip() == "none":
        return ()
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(
            f"unknown fault kind(s) {', '.join(unknown) or repr(text)}: expected a comma-separated "
            f"list of {', '.join(KINDS)}, or none"
        )
    return kinds


def mutant_name(text: str) -> str:
    if text not in MUTANTS:
        raise argparse.ArgumentTypeError(
            f"no mutant {text!r}: expected one of {', '.join(MUTANTS)}"
        )
    return text


def positive_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a rate > 0, got {text}")
    return value


def register(sub: Any, duration: Any) -> None:
    """Add ``nemesis`` to ``raftkube fuzz``'s subcommands (``duration`` parses ``--time``)."""
    p = sub.add_parser(
        "nemesis",
        help="Jepsen-style: the kv workload on real member processes under kills, pauses "
        "and partitions",
        description="Start a cluster of `raftkube member` processes on loopback, run the kv "
        "workload against it while SIGKILLing, SIGSTOPping and partitioning members (through "
        "TCP relays between them) on a seeded schedule, then check the history with the "
        "fuzzer's linearizability and watch checkers and count lost acknowledged writes.",
    )
    p.add_argument("--time", type=duration, default=60.0, help="how long to inject faults (1m)")
    p.add_argument(
        "--seed", type=int, default=None, help="seed of the fault schedule and the workload"
    )
    p.add_argument("--servers", type=int, choices=(3, 5), default=3, help="members (3)")
    p.add_argument("--clients", type=positive_int, default=4, help="concurrent clients (4)")
    p.add_argument(
        "--rate", type=positive_rate, default=100.0, help="operations per second, all clients (100)"
    )
    p.add_argument(
        "--faults",
        type=fault_kinds,
        default=KINDS,
        metavar="KIND,...",
        help=f"fault kinds to inject: some of {','.join(KINDS)}, or none (default: all)",
    )
    p.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help=f"first of the 122 loopback ports the run uses ({DEFAULT_PORT})",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="a new or empty directory for the members' data, logs and the history (default: "
        "a temporary one, removed after a passing run)",
    )
    p.add_argument(
        "--mutant",
        type=mutant_name,
        default=None,
        help="run every member with this planted bug (raftkube fuzz list): the run must fail",
    )
    p.set_defaults(handler=run_command)


def _summary(result: NemesisResult, history_path: Path | None) -> str:
    c, v = result.config, result.verdict
    ops = result.history.operations()
    outcomes = Counter(type(op.outcome) for op in ops)
    kinds = Counter(i.fault.kind for i in result.injected)
    events = sum(len(r.events) for r in result.records)
    lines = [
        f"raftkube fuzz nemesis: {c.servers} members, seed {c.seed}, {c.duration:.0f} s of "
        f"faults, {c.clients} clients at {c.rate:g} ops/s"
        + (f", mutant {c.mutant}" if c.mutant else ""),
        f"faults injected: {len(result.injected)}"
        + (f" ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})" if kinds else ""),
        *(f"  {i.line()}" for i in result.injected),
        f"operations: {len(ops)} (ok {outcomes[Ok]}, failed {outcomes[Failed]}, "
        f"indeterminate {outcomes[Unknown]}), {len(ops) / max(c.duration, 1e-9):.0f}/s",
        f"watches: {len(result.records)} streams, {events} events",
    ]
    if v.undecided is not None:
        lines.append(f"linearizable: undecided ({v.undecided}): NOT a pass")
    else:
        lines.append(
            f"linearizable: {'yes' if v.linearizable else 'NO'} "
            f"(checked in {result.check_seconds:.1f} s)"
        )
    if v.violation is not None:
        lines.append(f"violation: {v.violation.prop}: {v.violation.message}")
    lines.append(f"lost writes: {len(v.lost_writes)} of {v.acknowledged_writes} acknowledged puts")
    lines.extend(f"  lost: {text}" for text in v.lost_writes[:20])
    if result.liveness is not None:
        lines.append(f"liveness: {result.liveness}")
    for text in result.unexpected_exits:
        lines.append(f"unexpected exit: {text}")
    lines.append(f"verdict: {'FAILED' if result.failed else 'passed'}")
    if history_path is not None:
        lines.append(f"history and faults in {history_path}; member logs in {history_path.parent}")
    return "\n".join(lines)


def _data_dir(given: Path | None) -> tuple[Path, bool]:
    """The run's directory and whether it is a temporary one of ours."""
    if given is None:
        return Path(tempfile.mkdtemp(prefix="raftkube-nemesis-")), True
    if given.exists() and (not given.is_dir() or any(given.iterdir())):
        raise NemesisError(
            f"--data-dir {given} is not a new or empty directory: the checks start from an "
            "empty store, so give a fresh one"
        )
    return given, False


def run_command(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    try:
        data_dir, temporary = _data_dir(args.data_dir)
    except NemesisError as exc:
        print(f"raftkube fuzz nemesis: {exc}", file=sys.stderr)
        return 2
    config = NemesisConfig(
        duration=args.time,
        seed=seed,
        data_dir=data_dir,
        base_port=args.port,
        servers=args.servers,
        clients=args.clients,
        rate=args.rate,
        kinds=args.faults,
        mutant=args.mutant,
    )
    print(f"raftkube fuzz nemesis: seed {seed}, data in {data_dir}", flush=True)

    def progress(injected: Injected) -> None:
        print(f"  {injected.at:7.1f} s  {injected.description}", flush=True)

    try:
        result = trio.run(run_nemesis, config, progress)
    except BaseException as exc:
        root = root_cause(exc)
        if isinstance(root, KeyboardInterrupt | Interrupted):
            print(
                f"raftkube fuzz nemesis: stopped by {root or 'SIGINT'}; every member stopped; "
                f"data in {data_dir}",
                file=sys.stderr,
            )
            return 130
        cause = root if isinstance(root, NemesisError) else expected_error(exc)
        if cause is None:
            raise
        print(f"raftkube fuzz nemesis: {describe(cause)}; data in {data_dir}", file=sys.stderr)
        return 2
    history_path = None
    if result.failed:
        history_path = data_dir / "history.json"
        write_history(result, history_path)
    print(_summary(result, history_path), flush=True)
    if not result.failed and temporary:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 1 if result.failed else 0
