"""``raftkube bench longrun``: does a cluster stay as fast after many writes as when fresh?

A store that keeps every revision, or re-encodes all of it in every snapshot, slows down and
grows as it ages; one that compacts and snapshots in proportion to its live data does not.
This command starts one local 3-member cluster (the member processes ``raftkube up`` runs,
with the auto-compaction flags given here, by default ``periodic`` with a 5 s retention), and
ages it with ``--total`` puts in rounds of ``--round`` puts (``raftkube bench put``'s load:
``--conns`` connections, ``--clients`` requesters, ``--val-size``-byte values over
``--key-space-size`` keys). Then it starts a fresh cluster beside it and measures the two in
alternate rounds, ``--window`` each, so that both see the same load from whatever else runs
on the machine. After every round it prints the round's write rate, the CPU time the three
members spent per write (user and system, all threads), each member's resident memory
(``VmRSS``), the size of each member's data directory (``/proc`` is read, so Linux only) and
how many snapshots the members saved during the round (from their logs).

The summary compares the medians of the alternated rounds, and then the whole windows: the
writes of all their rounds over the time of all their rounds, and the CPU per write over the
same rounds, with how many of the rounds held a snapshot. A snapshot of a large store costs
its round a lot of CPU, and a cluster snapshots every so many writes (an image's worth:
about 100,000-150,000 puts at 100,000 keys), so a median of a few rounds can leave every
snapshot out, and the whole-window figures are the ones to compare. A window holding only one
or two of the aged cluster's snapshots follows that count (each costs its round some 2.5 s of
the members' CPU at 100,000 keys): the default ``--window`` of 10 rounds of 25,000 covers its
snapshot cycle two or three times, as the runs in docs/performance.md do.
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
from raftkube.cluster.timing import TimingConfigError, add_timing_flags, raft_timing, timing_argv
from raftkube.cluster.up import Plan, UpError, local_cluster, local_plan
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
        "--window",
        type=positive_int,
        default=10,
        help="rounds of each cluster compared (10: at 100,000 keys, two or three of the aged "
        "cluster's snapshot cycles)",
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
    add_timing_flags(p)
    p.set_defaults(handler=run_longrun, auto_compaction_retention="5s")


@attrs.frozen
class Round:
    """What one round measured."""

    cluster: str
    """``aged`` or ``fresh``."""
    writes: int
    """Puts acknowledged since the cluster started, this round included."""
    rate: float
    errors: int
    cpu_us: float
    """Microseconds of CPU the members spent per acknowledged write, summed over members."""
    rss_mib: tuple[float, ...]
    disk_mib: tuple[float, ...]
    seconds: float = 0.0
    """How long the round's puts took."""
    acknowledged: int = 0
    """Puts acknowledged in this round (``writes`` counts those sent, errors included)."""
    snapshots: int = 0
    """Snapshots saved during the round by the member that saved the most (they usually
    snapshot at about the same index). A member logs a snapshot when it is saved, a second
    or two after it was taken at its index, so one encoded across the end of a round counts
    in the next, which then carries part of the other's cost."""


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of process ``pid`` in MiB (Linux ``/proc``; ``field`` ``VmHWM`` for its
    peak); NaN if unreadable."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
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


def _keys(args: argparse.Namespace, count: int) -> tuple[list[bytes], bytes]:
    rng = random.Random(args.seed)
    value = bytes(rng.getrandbits(8) for _ in range(args.val_size))
    space, size = args.key_space_size, args.key_size
    keys = [str(rng.randrange(space)).zfill(size).encode()[-size:] for _ in range(count)]
    return keys, value


@attrs.define
class _Cluster:
    """One running cluster under test and how far its writes have got."""

    name: str
    plan: Plan
    children: list[Child]
    done: int = 0
    log_offsets: dict[int, int] = attrs.Factory(dict)
    """How far each member's log has been read for snapshot lines."""

    def snapshots_since_last(self) -> int:
        """The most snapshots any member logged saving since the last call."""
        most = 0
        for m in self.plan.members:
            path = self.plan.data_dir / f"member-{m.member_id}.log"
            count, self.log_offsets[m.member_id] = count_saved_snapshots(
                path, self.log_offsets.get(m.member_id, 0)
            )
            most = max(most, count)
        return most


SAVED_SNAPSHOT = b": saved snapshot at index "
"""What a member logs for each snapshot it saves (``raftkube.server.snapshotter``)."""


def count_saved_snapshots(path: Path, offset: int) -> tuple[int, int]:
    """Snapshot-saved lines in the log at ``path`` from byte ``offset`` on, and the offset of
    its end (only whole lines are counted; a missing log has none)."""
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            text = log.read()
    except OSError:
        return 0, offset
    whole = text.rfind(b"\n") + 1
    return text[:whole].count(SAVED_SNAPSHOT), offset + whole


async def _round(
    cluster: _Cluster, args: argparse.Namespace, keys: list[bytes], value: bytes
) -> Round:
    """Write the next ``--round`` puts to ``cluster`` and measure them."""
    # Imported here: bench.cli imports this module to register it.
    from raftkube.bench.cli import _drive

    base = cluster.done

    async def put(client: Client, n: int) -> object:
        return await client.put(keys[(base + n) % len(keys)], value)

    children = cluster.children
    cpu_before = sum(cpu_seconds(c.process.pid) for c in children)
    summary: Summary = await _drive(
        cluster.plan.endpoints, args.conns, args.clients, args.round, put
    )
    cpu = sum(cpu_seconds(c.process.pid) for c in children) - cpu_before
    cluster.done += args.round
    row = Round(
        cluster.name,
        cluster.done,
        summary.requests_per_second,
        summary.errors,
        cpu / max(1, len(summary.latencies)) * 1e6,
        tuple(rss_mib(c.process.pid) for c in children),
        tuple(dir_mib(m.data_dir) for m in cluster.plan.members),
        summary.total_seconds,
        len(summary.latencies),
        cluster.snapshots_since_last(),
    )
    sys.stdout.write(_line(row) + "\n")
    sys.stdout.flush()
    return row


async def _longrun(args: argparse.Namespace, data_dir: Path) -> list[Round]:
    """Age one cluster by ``--total`` puts, then start a fresh one beside it and measure the
    two in alternate rounds, so that both see the same load from the rest of the machine."""
    keys, value = _keys(args, args.total + args.window * args.round)
    flags = (*compaction_argv(args), *timing_argv(args))
    aged = _Cluster("aged", local_plan(data_dir / "aged", member_flags=flags), [])
    fresh = _Cluster("fresh", local_plan(data_dir / "fresh", member_flags=flags), [])
    rounds: list[Round] = []
    async with local_cluster(aged.plan, member_children=aged.children):
        sys.stderr.write(
            f"raftkube bench longrun: a local 3-member cluster in {aged.plan.data_dir} "
            f"({' '.join(flags)})\n"
        )
        while aged.done + args.round <= args.total:
            rounds.append(await _round(aged, args, keys, value))
        async with local_cluster(fresh.plan, member_children=fresh.children):
            sys.stderr.write(
                f"raftkube bench longrun: a fresh cluster in {fresh.plan.data_dir}, measured "
                f"in turn with the aged one\n"
            )
            for _ in range(args.window):
                rounds.append(await _round(fresh, args, keys, value))
                rounds.append(await _round(aged, args, keys, value))
    return rounds


def _line(row: Round) -> str:
    rss = " ".join(f"{v:7.1f}" for v in row.rss_mib)
    disk = " ".join(f"{v:7.1f}" for v in row.disk_mib)
    errors = f"  errors {row.errors}" if row.errors else ""
    snapshots = f"  snapshots {row.snapshots}" if row.snapshots else ""
    return (
        f"{row.cluster:<6} {row.writes:>9,} {row.rate:>10,.0f} {row.cpu_us:>8,.0f}   "
        f"RSS MiB {rss}   disk MiB {disk}{errors}{snapshots}"
    )


def summarize(rounds: list[Round], window: int) -> str:
    """The fresh-versus-aged comparison printed at the end: the last ``window`` rounds of
    each cluster, which ran in alternation."""
    fresh_rounds = [r for r in rounds if r.cluster == "fresh"][-window:]
    aged_rounds = [r for r in rounds if r.cluster == "aged"][-window:]
    if not fresh_rounds or not aged_rounds:
        return "no comparison: --total is smaller than one --round\n"
    fresh = statistics.median(r.rate for r in fresh_rounds)
    aged = statistics.median(r.rate for r in aged_rounds)
    cpu_fresh = statistics.median(r.cpu_us for r in fresh_rounds)
    cpu_aged = statistics.median(r.cpu_us for r in aged_rounds)
    all_aged = [r for r in rounds if r.cluster == "aged"]
    members = range(len(all_aged[0].rss_mib))
    return (
        f"fresh: {fresh:,.0f} writes/s, {cpu_fresh:,.0f} us member CPU per write\n"
        f"aged:  {aged:,.0f} writes/s ({_change(fresh, aged)}), {cpu_aged:,.0f} us member "
        f"CPU per write ({_change(cpu_fresh, cpu_aged)}), in rounds ending at "
        f"{aged_rounds[0].writes:,}..{aged_rounds[-1].writes:,} writes\n"
        f"(medians of {len(fresh_rounds)} rounds each, run in alternation)\n"
        "aged cluster, peak RSS MiB per member: "
        + " ".join(f"{max(r.rss_mib[i] for r in all_aged):.1f}" for i in members)
        + "\naged cluster, peak data dir MiB per member: "
        + " ".join(f"{max(r.disk_mib[i] for r in all_aged):.1f}" for i in members)
        + "\n"
        + _whole_windows(fresh_rounds, aged_rounds)
    )


def _whole_windows(fresh_rounds: list[Round], aged_rounds: list[Round]) -> str:
    """The same rounds taken whole: all their writes over all their time, CPU per write over
    all their writes, and how many rounds held a snapshot (the medians can leave those out)."""

    def whole(rounds: list[Round]) -> tuple[float, float, str]:
        acknowledged = sum(r.acknowledged for r in rounds)
        seconds = sum(r.seconds for r in rounds)
        rate = acknowledged / seconds if seconds > 0 else 0.0
        cpu = sum(r.cpu_us * r.acknowledged for r in rounds) / max(1, acknowledged)
        with_snapshot = sum(1 for r in rounds if r.snapshots)
        return rate, cpu, f"{with_snapshot} of {len(rounds)} rounds with a snapshot"

    fresh, cpu_fresh, fresh_snaps = whole(fresh_rounds)
    aged, cpu_aged, aged_snaps = whole(aged_rounds)
    return (
        "whole windows (all writes over all time; CPU over all writes):\n"
        f"fresh: {fresh:,.0f} writes/s, {cpu_fresh:,.0f} us member CPU per write, {fresh_snaps}\n"
        f"aged:  {aged:,.0f} writes/s ({_change(fresh, aged)}), {cpu_aged:,.0f} us member CPU "
        f"per write ({_change(cpu_fresh, cpu_aged)}), {aged_snaps}\n"
    )


def _change(before: float, after: float) -> str:
    return f"{(after - before) / before * 100:+.1f}%" if before else "n/a"


def run_longrun(args: argparse.Namespace) -> int:
    try:
        AutoCompaction.parse(args.auto_compaction_mode, args.auto_compaction_retention)
        raft_timing(args.heartbeat_interval, args.election_timeout)
    except (CompactionConfigError, TimingConfigError) as exc:
        sys.stderr.write(f"raftkube bench longrun: {exc}\n")
        return 1
    tune_gc()
    sys.stdout.write(
        f"{'':<6} {'writes':>9} {'writes/s':>10} {'CPU us/w':>8}   (per member: 0 1 2)\n"
    )
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
