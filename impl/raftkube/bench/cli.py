"""``raftkube bench put|range``: drive a cluster with concurrent requests and report throughput
and latency percentiles as etcd's ``benchmark`` tool does.

``--conns`` client connections carry ``--clients`` concurrent requesters (etcd's meaning of the
two flags); each requester issues one request at a time and records its latency, so the number
of requests in flight is ``--clients``. Keys come from a seeded generator, so two runs with the
same flags send the same keys.

Without ``--endpoints`` the command starts a throw-away 3-member cluster first, as ``raftkube up``
would (one process per member on 127.0.0.1, free ports, a temporary data directory), benchmarks
it, then stops the members and removes the directory.

``raftkube bench api``, the Kubernetes API server's benchmark, lives in :mod:`raftkube.bench.api`.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from raftkube.bench import api, cputime, longrun, side_by_side, snapshot_cost
from raftkube.bench import cluster as cluster_bench
from raftkube.bench import scheduler as scheduler_bench
from raftkube.bench.report import Summary, render
from raftkube.client import Client, ClientError
from raftkube.cluster.common import positive_int
from raftkube.cluster.up import UpError, local_cluster, local_plan
from raftkube.tuning import tune_gc

Request = Callable[[Client, int], Awaitable[object]]


def register(commands: Any) -> None:
    bench = commands.add_parser("bench", help="benchmark a cluster (etcd benchmark style)")
    sub = bench.add_subparsers(dest="bench_command", metavar="SUBCOMMAND", required=True)
    put = sub.add_parser("put", help="write keys as fast as the cluster acknowledges them")
    _common(put)
    put.add_argument("--key-size", type=positive_int, default=8, help="bytes per key")
    put.add_argument("--val-size", type=positive_int, default=256, help="bytes per value")
    put.add_argument(
        "--key-space-size", type=positive_int, default=1, help="distinct keys to spread writes over"
    )
    put.add_argument("--sequential-keys", action="store_true", help="keys 0, 1, 2, ... in order")
    put.add_argument(
        "--against-etcd",
        action="store_true",
        help="also run the same workload against a fresh 3-member etcd cluster (Debian's "
        "etcd-server), alternating with raftkube, and report both side by side",
    )
    put.add_argument(
        "--rounds",
        type=positive_int,
        default=1,
        help="with --against-etcd: how many times to run each store, alternating "
        "(raftkube, etcd, raftkube, ...); medians are reported",
    )
    put.add_argument(
        "--etcd-ports",
        default=None,
        help="with --against-etcd: six comma-separated ports (client, peer for each of the "
        "three etcd members); by default free ones are picked",
    )
    put.set_defaults(handler=run_put)
    rng = sub.add_parser("range", help="read one key or range repeatedly")
    _common(rng)
    rng.add_argument("key", help="the key (or start of the range) to read")
    rng.add_argument("range_end", nargs="?", default="", help="end of the range (exclusive)")
    rng.add_argument(
        "--consistency",
        choices=("l", "s"),
        default="l",
        help="l: linearizable (ReadIndex), s: serializable (local)",
    )
    rng.set_defaults(handler=run_range)
    api.register(sub)
    scheduler_bench.register(sub)
    cluster_bench.register(sub)
    longrun.register(sub)
    snapshot_cost.register(sub)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoints",
        default=None,
        help="comma-separated client endpoints; without it a 3-member cluster is started",
    )
    parser.add_argument("--conns", type=positive_int, default=1, help="client connections")
    parser.add_argument("--clients", type=positive_int, default=1, help="concurrent requesters")
    parser.add_argument("--total", type=positive_int, default=10_000, help="requests to send")
    parser.add_argument("--seed", type=int, default=0, help="seed of the key generator")


def run_put(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    value = bytes(rng.getrandbits(8) for _ in range(args.val_size))
    space = args.key_space_size

    def key(n: int) -> bytes:
        k = n % space if args.sequential_keys else rng.randrange(space)
        return str(k).zfill(args.key_size).encode()[-args.key_size :]

    keys = [key(n) for n in range(args.total)]

    async def put(client: Client, n: int) -> object:
        return await client.put(keys[n], value)

    if args.against_etcd:
        return side_by_side.run(args, lambda: _measure(args, put), keys, value)
    return _run(args, put)


def run_range(args: argparse.Namespace) -> int:
    key, end = args.key.encode(), args.range_end.encode()
    serializable = args.consistency == "s"

    async def get(client: Client, n: int) -> object:
        return await client.get(key, end, serializable=serializable)

    return _run(args, get)


def _measure(args: argparse.Namespace, request: Request) -> tuple[Summary, float | None]:
    """One run of ``request`` against raftkube (a fresh local cluster without
    ``--endpoints``) for the side-by-side comparison, with the CPU seconds its members spent
    during it (None when they are not ours to measure); raises :class:`UpError`."""
    if args.endpoints is None:
        spent: list[float] = []
        return trio.run(_drive_local, args, request, spent), spent[0]
    endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    return trio.run(_drive, endpoints, args.conns, args.clients, args.total, request), None


def _run(args: argparse.Namespace, request: Request) -> int:
    tune_gc()
    if args.endpoints is None:
        try:
            summary = trio.run(_drive_local, args, request)
        except UpError as exc:
            sys.stderr.write(f"raftkube bench: the local cluster did not come up: {exc}\n")
            return 1
    else:
        endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
        summary = trio.run(_drive, endpoints, args.conns, args.clients, args.total, request)
    sys.stdout.write(render(summary))
    return 0 if summary.errors == 0 else 1


async def _drive_local(
    args: argparse.Namespace, request: Request, member_cpu: list[float] | None = None
) -> Summary:
    """Benchmark a 3-member cluster started for this run, in a directory removed afterwards;
    with ``member_cpu``, append the CPU seconds the members spent during the benchmark."""
    with tempfile.TemporaryDirectory(prefix="raftkube-bench-") as tmp:
        plan = local_plan(Path(tmp))
        async with local_cluster(plan) as (leader, _term):
            sys.stderr.write(
                f"raftkube bench: started a local {len(plan.members)}-member cluster in {tmp} "
                f"(endpoints {','.join(plan.endpoints)}; member {leader} leads)\n"
            )
            sys.stderr.flush()
            before = cputime.sample()
            summary = await _drive(plan.endpoints, args.conns, args.clients, args.total, request)
            if member_cpu is not None:
                member_cpu.append(cputime.members_between(before, cputime.sample()))
            return summary
    raise AssertionError("unreachable")


async def _drive(
    endpoints: list[str], conns: int, clients: int, total: int, request: Request
) -> Summary:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def requester(client: Client) -> None:
        nonlocal errors
        for n in counter:
            started = time.perf_counter()
            try:
                await request(client, n)
            except ClientError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    async with trio.open_nursery() as nursery:
        pool = [Client(endpoints) for _ in range(conns)]
        for client in pool:
            await nursery.start(_hold, client)
        started = time.perf_counter()
        async with trio.open_nursery() as load:
            for n in range(clients):
                load.start_soon(requester, pool[n % conns])
        elapsed = time.perf_counter() - started
        nursery.cancel_scope.cancel()
    return Summary(elapsed, tuple(latencies), errors)


async def _hold(client: Client, *, task_status: trio.TaskStatus[None]) -> None:
    """Keep ``client`` open until the surrounding nursery is cancelled."""
    async with client:
        task_status.started()
        await trio.sleep_forever()
