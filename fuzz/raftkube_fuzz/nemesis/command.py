"""What ``raftkube fuzz nemesis`` does once its flags are parsed: run the nemesis, print the
summary, keep the run's directory on a violation.

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

import trio

from raftkube.cluster.common import describe, expected_error, root_cause
from raftkube_fuzz.checks.history import Failed, Ok, Unknown
from raftkube_fuzz.nemesis.cluster import NemesisError
from raftkube_fuzz.nemesis.faults import Injected
from raftkube_fuzz.nemesis.runner import (
    Interrupted,
    NemesisConfig,
    NemesisResult,
    run_nemesis,
    write_history,
)


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
