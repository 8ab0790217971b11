"""``raftkube bench longrun``: does a cluster stay as fast after many writes as when fresh?

A store that keeps every revision, or re-encodes all of it in every snapshot, slows down and
grows as it ages; one that compacts and snapshots in proportion to its live data does not.
This command starts one local 3-member cluster (the member processes ``raftkube up`` runs,
with the auto-compaction flags given here), then writes ``--total`` puts in rounds of
``--round`` puts (``raftkube bench put``'s load: ``--conns`` connections, ``--clients``
requesters, ``--val-size``-byte values over ``--key-space-size`` keys). After every round it
records the round's write rate, the CPU time the three members spent per write (user and
system, all threads), each member's resident memory (``VmRSS``) and the size of each
member's data directory (``/proc`` is read, so Linux only), and prints one line. The summary
compares the median of the first ``--window`` rounds (the fresh cluster) with that of the
last ``--window`` rounds (the aged one), for the rate and for the CPU per write. On a shared
machine the rate follows whatever else runs; the CPU per write much less so.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import attrs
import trio

from raftkube.bench.report import Summary
from raftkube.client import Client
from raftkube.cluster.common import positive_int
from raftkube.cluster.member import add_compaction_flags, compaction_argv
from raftkube.cluster.processes import Child
from raftkube.cluster.up import UpError, local_cluster, local_plan
from raftkube.server.compactor import AutoCompaction, CompactionConfigError
from raftkube.tuning import tune_gc


def register(sub: Any) -> None:
    p = sub.add_parser(
        "longrun",
        help="write rate, memory and disk of one cluster over many writes (fresh vs. aged)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--total", type=positive_int, default=500_000, help="puts in all (500,000)")
    p.add_argument("--round", type=positive_int, default=25_000, help="puts per round (25,000)")
    p.add_argument(
        "--window", type=positive_int, default=3, help="rounds in each median compared (3)"
    )
    p.add_argument("--conns", type=positive_int, default=8, help="client connections (8)")
    p.add_argument("--clients", type=positive_int, default=256, help="concurrent requesters")
    p.add_argument("--key-size", type=positive_int, default=8, help="bytes per key (8)")
    p.add_argument("--val-size", type=positive_int, default=256, help="bytes per value (256)")
    p.add_argument(
        "--key-space-size", type=positive_int, default=1, help="distinct keys written (1)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the key generator")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the members keep their data (default: a temporary directory, removed)",
    )
    add_compaction_flags(p)
    p.set_defaults(handler=run_longrun, auto_compaction_retention="5s")


@attrs.frozen
class Round:
    """What one round measured."""

    writes: int
    """Puts acknowledged since the cluster started, this round included."""
    rate: float
    errors: int
    cpu_us: float
    """Microseconds of CPU the members spent per acknowledged write, summed over members."""
    rss_mib: tuple[float, ...]
    disk_mib: tuple[float, ...]


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (Linux ``/proc``); NaN if unreadable."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` so far (``/proc/PID/stat``)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dir_mib(path: Path) -> float:
    """Bytes of every file under ``path``, in MiB (files may vanish while we count)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total / 2**20


def _keys(args: argparse.Namespace) -> tuple[list[bytes], bytes]:
    rng = random.Random(args.seed)
    value = bytes(rng.getrandbits(8) for _ in range(args.val_size))
    space, size = args.key_space_size, args.key_size
    keys = [str(rng.randrange(space)).zfill(size).encode()[-size:] for _ in range(args.total)]
    return keys, value


async def _longrun(args: argparse.Namespace, data_dir: Path) -> list[Round]:
    # Imported here: bench.cli imports this module to register it.
    from raftkube.bench.cli import _drive

    keys, value = _keys(args)
    plan = local_plan(data_dir, member_flags=compaction_argv(args))
    children: list[Child] = []
    rounds: list[Round] = []
    async with local_cluster(plan, member_children=children) as (leader, _term):
        sys.stderr.write(
            f"raftkube bench longrun: a local 3-member cluster in {data_dir} "
            f"(endpoints {','.join(plan.endpoints)}; member {leader} leads; "
            f"{' '.join(compaction_argv(args))})\n"
        )
        done = 0
        while done < args.total:
            count = min(args.round, args.total - done)
            base = done

            async def put(client: Client, n: int, base: int = base) -> object:
                return await client.put(keys[base + n], value)

            cpu_before = sum(cpu_seconds(c.process.pid) for c in children)
            summary: Summary = await _drive(plan.endpoints, args.conns, args.clients, count, put)
            cpu = sum(cpu_seconds(c.process.pid) for c in children) - cpu_before
            done += count
            row = Round(
                done,
                summary.requests_per_second,
                summary.errors,
                cpu / max(1, len(summary.latencies)) * 1e6,
                tuple(rss_mib(c.process.pid) for c in children),
                tuple(dir_mib(m.data_dir) for m in plan.members),
            )
            rounds.append(row)
            sys.stdout.write(_line(row) + "\n")
            sys.stdout.flush()
    return rounds


def _line(row: Round) -> str:
    rss = " ".join(f"{v:7.1f}" for v in row.rss_mib)
    disk = " ".join(f"{v:7.1f}" for v in row.disk_mib)
    errors = f"  errors {row.errors}" if row.errors else ""
    return (
        f"{row.writes:>9,} {row.rate:>10,.0f} {row.cpu_us:>8,.0f}   "
        f"RSS MiB {rss}   disk MiB {disk}{errors}"
    )


def summarize(rounds: list[Round], window: int) -> str:
    """The fresh-versus-aged comparison printed at the end."""
    window = max(1, min(window, len(rounds) // 2 or 1))
    fresh = statistics.median(r.rate for r in rounds[:window])
    aged = statistics.median(r.rate for r in rounds[-window:])
    last = rounds[-1]
    change = (aged - fresh) / fresh * 100 if fresh else float("nan")
    cpu_fresh = statistics.median(r.cpu_us for r in rounds[:window])
    cpu_aged = statistics.median(r.cpu_us for r in rounds[-window:])
    cpu_change = (cpu_aged - cpu_fresh) / cpu_fresh * 100 if cpu_fresh else float("nan")
    return (
        f"fresh: {fresh:,.0f} writes/s, {cpu_fresh:,.0f} us member CPU per write "
        f"(medians of the first {window} rounds)\n"
        f"aged: {aged:,.0f} writes/s ({change:+.1f}%), {cpu_aged:,.0f} us member CPU per "
        f"write ({cpu_change:+.1f}%) (medians of the last {window} rounds, up to "
        f"{last.writes:,} writes)\n"
        f"peak RSS MiB per member: "
        + " ".join(f"{max(r.rss_mib[i] for r in rounds):.1f}" for i in range(len(last.rss_mib)))
        + "\npeak data dir MiB per member: "
        + " ".join(f"{max(r.disk_mib[i] for r in rounds):.1f}" for i in range(len(last.disk_mib)))
        + "\n"
    )


def run_longrun(args: argparse.Namespace) -> int:
    try:
        AutoCompaction.parse(args.auto_compaction_mode, args.auto_compaction_retention)
    except CompactionConfigError as exc:
        sys.stderr.write(f"raftkube bench longrun: {exc}\n")
        return 1
    tune_gc()
    sys.stdout.write(f"{'writes':>9} {'writes/s':>10} {'CPU us/w':>8}   (per member: 0 1 2)\n")
    try:
        if args.data_dir is not None:
            args.data_dir.mkdir(parents=True, exist_ok=True)
            rounds = trio.run(_longrun, args, args.data_dir)
        else:
            with tempfile.TemporaryDirectory(prefix="raftkube-longrun-") as tmp:
                rounds = trio.run(_longrun, args, Path(tmp))
    except UpError as exc:
        sys.stderr.write(f"raftkube bench longrun: the local cluster did not come up: {exc}\n")
        return 1
    sys.stdout.write(summarize(rounds, args.window))
    return 0 if all(r.errors == 0 for r in rounds) else 1
