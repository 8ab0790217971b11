"""``raftkube fuzz nemesis``: the command line of a nemesis run (its flags; the run and its
summary are in :mod:`.command`, imported only when the command runs, because it loads the
member, the client and the fuzzer's checkers and every ``raftkube`` command builds this parser).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from raftkube.cluster.common import port_number, positive_int
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
    """``--mutant``: a planted bug of the store (the nemesis runs members only, so a control
    plane mutant would change nothing it runs)."""
    from raftkube_fuzz.mutants import MUTANTS  # only when --mutant is given: it loads much

    store = [name for name, m in MUTANTS.items() if m.suite in ("raft", "kv")]
    if text not in store:
        raise argparse.ArgumentTypeError(
            f"no store mutant {text!r}: expected one of {', '.join(store)}"
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
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from raftkube_fuzz.nemesis.command import run_command

    return run_command(args)
