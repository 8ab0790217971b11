"""``raftkube bench put --against-etcd``: raftkube and etcd under one workload, alternated.

On a shared machine the load changes from minute to minute, so the two stores are measured in
alternation (raftkube, etcd, raftkube, etcd, ...; ``--rounds`` of each), each round on a fresh
3-member cluster, and the medians are compared. Besides the rate and latency percentiles each
round reports the CPU per acknowledged write of the benchmark process (the client) and of the
three members, since on two cores both come out of the same budget. The etcd side is
:mod:`raftkube.bench.etcd` (which says why its driver is a fair counterpart of raftkube's).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable, Sequence

import attrs

from raftkube.bench import cputime
from raftkube.bench import etcd as etcd_bench
from raftkube.bench.report import Summary
from raftkube.cluster.up import UpError
from raftkube.tuning import tune_gc

Measure = Callable[[], tuple[Summary, float | None]]


@attrs.frozen
class Round:
    store: str
    summary: Summary
    client_cpu: float
    """CPU seconds of the benchmark process during the run."""
    server_cpu: float | None
    """CPU seconds of the three members during the run, if they were measured."""

    def per_write(self, seconds: float | None) -> float | None:
        done = len(self.summary.latencies)
        return None if seconds is None or not done else seconds / done * 1e6

    def line(self, n: int) -> str:
        s = self.summary
        client = self.per_write(self.client_cpu)
        server = self.per_write(self.server_cpu)
        return (
            f"{self.store:<8} round {n}: {s.requests_per_second:>9,.0f} writes/s  "
            f"p50 {s.percentile(50) * 1e3:6.1f} ms  p99 {s.percentile(99) * 1e3:6.1f} ms  "
            f"errors {s.errors}  client CPU {_us(client)}/write  members CPU {_us(server)}/write"
        )


def _us(value: float | None) -> str:
    return "    - " if value is None else f"{value:5.0f} us"


def _process_cpu() -> float:
    times = os.times()
    return times.user + times.system


def parse_ports(text: str | None) -> list[int] | None:
    """The six ``--etcd-ports``; raises ValueError naming what is wrong."""
    if text is None:
        return None
    try:
        ports = [int(p) for p in text.split(",")]
    except ValueError:
        raise ValueError(f"--etcd-ports: not a list of port numbers: {text!r}") from None
    if len(ports) != 6 or len(set(ports)) != 6 or not all(0 < p < 65536 for p in ports):
        raise ValueError(f"--etcd-ports: six distinct ports in 1..65535 are needed, got {text!r}")
    return ports


def _etcd_round(
    args: argparse.Namespace, ports: list[int] | None, keys: Sequence[bytes], value: bytes
) -> Round:
    with etcd_bench.etcd_cluster(ports or etcd_bench.free_ports(6)) as endpoint:
        before, client_before = cputime.sample(), _process_cpu()
        summary = etcd_bench.drive_puts(endpoint, args.conns, args.clients, keys, value)
        after, client_after = cputime.sample(), _process_cpu()
    members = sum(max(0.0, after[n] - before.get(n, 0.0)) for n in after if n == "etcd")
    return Round("etcd", summary, client_after - client_before, members)


def run(args: argparse.Namespace, measure: Measure, keys: Sequence[bytes], value: bytes) -> int:
    """Alternate ``measure`` (raftkube) and etcd ``args.rounds`` times each; print every
    round and the medians. Exit status 1 if either store failed a request or did not start."""
    tune_gc()
    try:
        ports = parse_ports(args.etcd_ports)
        etcd_bench.find_binary()
    except (ValueError, etcd_bench.EtcdError) as exc:
        sys.stderr.write(f"raftkube bench: {exc}\n")
        return 2
    rounds: list[Round] = []
    out = sys.stdout
    out.write(
        f"# {args.total} puts, {args.conns} connections, {args.clients} clients, "
        f"{args.key_size}-byte keys, {args.val_size}-byte values, load average "
        f"{_load()} at the start\n"
    )
    for n in range(1, args.rounds + 1):
        try:
            client_before = _process_cpu()
            summary, members = measure()
            rounds.append(Round("raftkube", summary, _process_cpu() - client_before, members))
            out.write(rounds[-1].line(n) + "\n")
            out.flush()
            rounds.append(_etcd_round(args, ports, keys, value))
        except UpError as exc:
            sys.stderr.write(f"raftkube bench: the local cluster did not come up: {exc}\n")
            return 1
        except etcd_bench.EtcdError as exc:
            sys.stderr.write(f"raftkube bench: etcd: {exc}\n")
            return 1
        out.write(rounds[-1].line(n) + "\n")
        out.flush()
    out.write(f"# load average {_load()} at the end\n")
    for store in ("raftkube", "etcd"):
        mine = [r for r in rounds if r.store == store]
        out.write(_medians(store, mine) + "\n")
    return 0 if all(r.summary.errors == 0 for r in rounds) else 1


def _medians(store: str, rounds: Sequence[Round]) -> str:
    rate = statistics.median(r.summary.requests_per_second for r in rounds)
    p50 = statistics.median(r.summary.percentile(50) for r in rounds)
    p99 = statistics.median(r.summary.percentile(99) for r in rounds)
    client = _median_or_none([r.per_write(r.client_cpu) for r in rounds])
    server = _median_or_none([r.per_write(r.server_cpu) for r in rounds])
    return (
        f"{store:<8} median of {len(rounds)}: {rate:>7,.0f} writes/s  p50 {p50 * 1e3:6.1f} ms  "
        f"p99 {p99 * 1e3:6.1f} ms  client CPU {_us(client)}/write  "
        f"members CPU {_us(server)}/write"
    )


def _median_or_none(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"
