"""``raftkube bench snapshot``: where a member's MVCC snapshot costs, offline and repeatable.

It builds one store as an aged member holds it (``--keys`` keys of ``--key-size`` bytes with
``--val-size``-byte values, every key written once, then ``--writes`` puts to keys drawn
from a seeded generator, compacted ``--retention`` revisions behind the head and trimmed),
with the collector tuned and frozen as a member process does. Then, ``--repeat`` times, it
writes ``--writes-between`` more puts and compacts again (the writes between two snapshots of
a member, which decide how much of the image changed), and takes a snapshot through the
member's own functions, timing each step:

* ``capture``: the view of the store, on the event loop;
* ``encode``: the image and the snapshot file's bytes (``Snapshotter``'s worker-thread step,
  without the write); its CPU figure is the worker thread's own (``time.thread_time``), its
  wall figure includes waiting for the GIL while the event loop runs;
* ``stage``: the file written and fsynced under its temporary name (also in the worker);
* ``save``: the rename and the directory's fsync (the ready loop's part of the save);
* ``core``: the Raft core's snapshot data built from the file's bytes (on the event loop);
* ``read``: the newest snapshot file read back and checked, as at a restart;
* ``load``: the store rebuilt from the core's data, as a follower installing it does.

Each is reported as wall seconds and CPU seconds of this process (the median over the
repeats, and the range), beside the image size, the process's resident memory after the
snapshot and its peak during it (``VmHWM``, reset before each snapshot through
``/proc/self/clear_refs``; Linux only), and what the encoding, run in a worker thread as a
member runs it, left the event loop: a task on the loop sends a byte round a socket pair
and back, over and over, as a member's loop makes short system calls all the time; its
rate while the worker encodes, against its rate just before, and the longest wait between
two round trips. The GIL is shared, and each time the loop gives it up for a system call it
waits for the worker to reach the interpreter's switch interval (``--switch-interval``, the
member's ``WORKER_SWITCH_INTERVAL`` by default) before it runs again.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from raftkube.bench.longrun import rss_mib
from raftkube.clock import TrioClock, move_on_after
from raftkube.cluster.common import positive_int
from raftkube.mvcc import MvccStore
from raftkube.mvcc.snapshot import capture
from raftkube.server.cluster_members import MemberAttributes, MemberTable
from raftkube.server.snapshots import core_snapshot_data, restore_store
from raftkube.server.snapshotter import WORKER_SWITCH_INTERVAL, _encode, in_worker
from raftkube.storage.snapshot import SnapshotStore
from raftkube.storage.state import SnapshotMeta
from raftkube.tuning import freeze_long_lived, tune_gc
from raftkube_spec.kv.requests import CompactionRequest, PutRequest
from raftkube_spec.raft.types import Membership

STEPS = ("capture", "encode", "stage", "save", "core", "read", "load")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "snapshot",
        help="the cost of one MVCC snapshot, step by step, on a store built in memory",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--keys", type=positive_int, default=100_000, help="distinct keys (100,000)")
    p.add_argument("--key-size", type=positive_int, default=8, help="bytes per key (8)")
    p.add_argument("--val-size", type=positive_int, default=256, help="bytes per value (256)")
    p.add_argument(
        "--writes", type=positive_int, default=200_000, help="puts after the first (200,000)"
    )
    p.add_argument(
        "--writes-between",
        type=int,
        default=125_000,
        help="puts before each snapshot (125,000: a member's spacing at 100,000 keys)",
    )
    p.add_argument(
        "--retention",
        type=positive_int,
        default=50_000,
        help="revisions kept behind the head at each compaction (50,000: 5 s at 10,000/s)",
    )
    p.add_argument("--repeat", type=positive_int, default=5, help="snapshots taken (5)")
    p.add_argument(
        "--switch-interval",
        type=float,
        default=WORKER_SWITCH_INTERVAL,
        help=f"the interpreter's switch interval while encoding ({WORKER_SWITCH_INTERVAL} s, "
        "as a member; CPython's default is 0.005)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the key generator")
    p.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where the snapshot files go (default: a temporary directory, removed)",
    )
    p.set_defaults(handler=run_snapshot_bench)


@attrs.define
class _Aging:
    """The store under test and the seeded writes that age it."""

    store: MvccStore
    keys: list[bytes]
    value: bytes
    rng: random.Random
    retention: int

    def write(self, count: int) -> None:
        """``count`` puts to random keys, then a compaction ``retention`` revisions back."""
        store, keys, value, rng = self.store, self.keys, self.value, self.rng
        for _ in range(count):
            store.apply(PutRequest(keys[rng.randrange(len(keys))], value))
        at = store.revision - self.retention
        if at > store.compact_revision:
            store.apply(CompactionRequest(at))
        store.index.trim_all()


def _aged_store(args: argparse.Namespace) -> _Aging:
    rng = random.Random(args.seed)
    value = bytes(rng.getrandbits(8) for _ in range(args.val_size))
    keys = [str(n).zfill(args.key_size).encode()[-args.key_size :] for n in range(args.keys)]
    aging = _Aging(MvccStore(), keys, value, rng, args.retention)
    for key in keys:
        aging.store.apply(PutRequest(key, value))
    aging.write(args.writes)
    return aging


@attrs.define
class _Timer:
    """Wall and CPU seconds of each step, per snapshot."""

    wall: dict[str, list[float]] = attrs.Factory(dict)
    cpu: dict[str, list[float]] = attrs.Factory(dict)

    def time(self, step: str, work: Callable[[], Any]) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        self.cpu.setdefault(step, []).append(time.process_time() - cpu)
        self.wall.setdefault(step, []).append(time.perf_counter() - wall)
        return result


def _reset_peak_rss() -> None:
    """Start a new ``VmHWM`` period (Linux: ``clear_refs`` 5); nothing elsewhere."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss_mib() -> float:
    return rss_mib(os.getpid(), "VmHWM")


async def _encode_beside_loop_io(encode: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run ``encode`` in a worker thread while a task on this event loop sends a byte round a
    socket pair and back, over and over (see the module docstring); return its result, the
    round trips' rate during it as a fraction of their rate in the 0.3 s before, and the
    longest wait between two round trips (s)."""
    clock = TrioClock()
    left, right = trio.socket.socketpair()
    with left, right:
        trips, worst, last = 0, 0.0, clock.now()

        async def trip() -> None:
            nonlocal trips, worst, last
            await left.send(b"x")
            await right.recv(1)
            now = clock.now()
            trips, worst, last = trips + 1, max(worst, now - last), now

        with move_on_after(clock, 0.3):
            while True:
                await trip()
        alone = trips / 0.3
        trips, worst, last = 0, 0.0, clock.now()
        started = last
        done = trio.Event()
        result: Any = None

        async def worker() -> None:
            nonlocal result
            result = await trio.to_thread.run_sync(encode)
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(worker)
            while not done.is_set():
                await trip()
        rate = trips / max(1e-9, clock.now() - started)
    return result, rate / alone if alone else float("nan"), worst


def _snapshot_once(
    aging: _Aging, directory: Path, index: int, timer: _Timer, switch_interval: float
) -> dict[str, float]:
    """One snapshot of the store as a member takes it (membership on: the configuration and
    member table ride in the file), then read back and loaded; returns its figures."""
    store = aging.store
    conf = Membership((0, 1, 2))
    table = MemberTable()
    for j in range(3):
        table.set(MemberAttributes(j, f"m{j}", (f"http://127.0.0.1:{2380 + j}",)))
    meta = SnapshotMeta(index, 1)
    files = SnapshotStore(directory)
    _reset_peak_rss()
    view = timer.time("capture", lambda: capture(store))

    def encode() -> tuple[Any, float]:
        return in_worker(lambda: _encode(meta, view, (conf, table), None), switch_interval)

    try:
        wall = time.perf_counter()
        (stored, cpu), share, late = trio.run(_encode_beside_loop_io, encode)
        timer.cpu.setdefault("encode", []).append(cpu)
        timer.wall.setdefault("encode", []).append(time.perf_counter() - wall)
    finally:
        view.release()
    timer.time("stage", lambda: files.stage(stored))
    timer.time("save", lambda: files.save(stored))
    data = timer.time("core", lambda: core_snapshot_data(1, stored.data, conf))
    size = len(stored.data)
    timer.time("read", files.load_latest)
    loaded = timer.time("load", lambda: restore_store(data, index=index))
    peak = _peak_rss_mib()
    assert loaded.revision == store.revision
    del loaded
    # The loaded store's cycles (its observers) must go before the next freeze keeps them.
    gc.collect()
    files.prune()
    return {"size": size, "share": share, "late": late, "peak": peak, "rss": rss_mib_self()}


def rss_mib_self() -> float:
    """This process's resident memory in MiB."""
    return rss_mib(os.getpid())


def _row(name: str, values: list[float], scale: float = 1.0, unit: str = "s") -> str:
    low, high = min(values) * scale, max(values) * scale
    median = statistics.median(values) * scale
    return f"{name:<10} {median:9.3f} {unit}   ({low:.3f}-{high:.3f})"


def run_snapshot_bench(args: argparse.Namespace) -> int:
    if args.writes_between < 0:
        sys.stderr.write("raftkube bench snapshot: --writes-between must be 0 or more\n")
        return 1
    if not args.switch_interval > 0:
        sys.stderr.write("raftkube bench snapshot: --switch-interval must be above 0\n")
        return 1
    tune_gc()
    started = time.perf_counter()
    aging = _aged_store(args)
    freeze_long_lived()
    records = sum(len(h.kvs) for _k, h in aging.store.index.items())
    sys.stdout.write(
        f"store: {len(aging.store.index):,} keys, {records:,} records, revision "
        f"{aging.store.revision:,}, compacted at {aging.store.compact_revision:,} "
        f"(built in {time.perf_counter() - started:.1f} s); RSS {rss_mib_self():.1f} MiB\n"
    )
    timer = _Timer()
    figures: list[dict[str, float]] = []
    tmp = None
    if args.dir is None:
        tmp = tempfile.mkdtemp(prefix="raftkube-snapbench-")
        directory = Path(tmp)
    else:
        directory = args.dir
        directory.mkdir(parents=True, exist_ok=True)
    try:
        for n in range(args.repeat):
            if args.writes_between:
                aging.write(args.writes_between)
            # A member freezes the collector's objects before and after each snapshot.
            freeze_long_lived()
            figures.append(
                _snapshot_once(
                    aging, directory, aging.store.revision + n, timer, args.switch_interval
                )
            )
            freeze_long_lived()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    gc.collect()
    sys.stdout.write(
        f"{args.repeat} snapshots, {args.writes_between:,} puts before each; medians (range):\n"
        f"{'step':<10} {'wall':>11}\n"
    )
    for step in STEPS:
        sys.stdout.write(_row(step, timer.wall[step]) + "\n")
    sys.stdout.write(f"{'step':<10} {'CPU':>11}\n")
    for step in STEPS:
        sys.stdout.write(_row(step, timer.cpu[step]) + "\n")
    for name, field, scale, unit in (
        ("image", "size", 1 / 2**20, "MiB"),
        ("loop I/O", "share", 100, "% of its rate alone"),
        ("loop late", "late", 1000, "ms"),
        ("peak RSS", "peak", 1, "MiB"),
        ("RSS after", "rss", 1, "MiB"),
    ):
        sys.stdout.write(_row(name, [f[field] for f in figures], scale, unit) + "\n")
    return 0
