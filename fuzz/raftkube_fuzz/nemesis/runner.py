"""One nemesis run: start the cluster, run the workload under the schedule, heal, read back,
stop everything, judge.

Everything the run starts lives in one Trio nursery tree under :func:`open_cluster`, so the
members and relays are stopped however the run ends: at the end of its time, on a failure
of its own, or on Ctrl-C (Trio delivers KeyboardInterrupt into the run, and the cluster's exit
is shielded from the cancellation it brings).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import attrs
import trio

from raftkube.client import Client, ClientError
from raftkube.clock import Clock, TrioClock, move_on_after, sleep_for
from raftkube_fuzz.checks.history import History, Ok, Operation, to_json
from raftkube_fuzz.checks.watches import WatchRecord
from raftkube_fuzz.nemesis.cluster import NemesisError, ProcessCluster, open_cluster
from raftkube_fuzz.nemesis.faults import Injected, Nemesis
from raftkube_fuzz.nemesis.schedule import KINDS, plan
from raftkube_fuzz.nemesis.verdict import Verdict, judge
from raftkube_fuzz.nemesis.workload import Workload, new_client, record
from raftkube_fuzz.suites.kv import PREFIX
from raftkube_spec.kv.keyrange import prefix_range_end
from raftkube_spec.kv.requests import PutRequest, RangeRequest

START_TIMEOUT = 30.0
"""Seconds the fresh cluster gets to elect a leader and answer a linearizable read."""
RECOVERY_TIMEOUT = 60.0
"""Seconds a healed cluster gets to serve the final write and read."""
WATCH_CATCH_UP = 10.0
"""Seconds every open watch gets to deliver the final write once the read saw it."""
FENCE_KEY = PREFIX.encode() + b"-final"
"""The final write, inside the watched range, so each watch shows how far it got."""


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the run (every process it started is stopped first)."""


@attrs.frozen
class NemesisConfig:
    duration: float
    seed: int
    data_dir: Path
    base_port: int
    servers: int = 3
    clients: int = 4
    rate: float = 100.0
    kinds: tuple[str, ...] = KINDS
    mutant: str | None = None


@attrs.define
class NemesisResult:
    config: NemesisConfig
    history: History
    records: list[WatchRecord]
    injected: list[Injected]
    unexpected_exits: list[str]
    liveness: str | None
    """Why the healed cluster failed to serve, if it did."""
    verdict: Verdict
    check_seconds: float

    @property
    def failed(self) -> bool:
        v = self.verdict
        return bool(
            v.violation is not None
            or v.undecided is not None
            or v.lost_writes
            or self.unexpected_exits
            or self.liveness is not None
        )


async def _wait_serving(cluster: ProcessCluster, clock: Clock) -> None:
    """Until some member answers a linearizable read (which writes nothing, so the history
    still starts from the empty store)."""
    with move_on_after(clock, START_TIMEOUT):
        async with new_client(cluster.client_endpoints, session=False) as client:
            while True:
                cluster.check_started()
                try:
                    await client.request(RangeRequest(b"k0"))
                    return
                except ClientError:
                    await sleep_for(clock, 0.2)
    raise NemesisError(
        f"the cluster did not answer a linearizable read within {START_TIMEOUT:.0f} s of "
        "starting (see the members' logs)"
    )


async def _until_ok(
    history: History, client_id: int, client: Client, request: Any, clock: Clock, origin: float
) -> Operation | None:
    """Send ``request`` (recorded) until it is answered, within :data:`RECOVERY_TIMEOUT`."""
    with move_on_after(clock, RECOVERY_TIMEOUT):
        while True:
            outcome = await record(history, client_id, client, request, clock, origin=origin)
            if isinstance(outcome, Ok):
                return history.operations()[-1]
            await sleep_for(clock, 0.2)
    return None


async def _finish(
    workload: Workload, history: History, client_id: int, clock: Clock
) -> tuple[Operation | None, int | None, str | None]:
    """The final write and linearizable read of every key; then wait for the watches to
    deliver the write. Returns the read, the write's revision, and a liveness failure."""
    # At most once, without a session: each retry is its own recorded operation.
    async with new_client(workload.endpoints, session=False) as client:
        fence = await _until_ok(
            history, client_id, client, PutRequest(FENCE_KEY, b"fence"), clock, workload.origin
        )
        if fence is None:
            return (
                None,
                None,
                f"the healed cluster did not acknowledge a write within {RECOVERY_TIMEOUT:.0f} s",
            )
        key = PREFIX.encode()
        final = await _until_ok(
            history,
            client_id,
            client,
            RangeRequest(key, prefix_range_end(key)),
            clock,
            workload.origin,
        )
        if final is None:
            return (
                None,
                None,
                f"the healed cluster did not answer a read within {RECOVERY_TIMEOUT:.0f} s",
            )
    assert isinstance(fence.outcome, Ok)
    revision = fence.outcome.result.header.revision
    with move_on_after(clock, WATCH_CATCH_UP):
        while not all(
            h.end != "open" or any(e.kv.mod_revision >= revision for e in h.events)
            for h in workload.handles
        ):
            await sleep_for(clock, 0.1)
    return final, revision, None


async def run_nemesis(config: NemesisConfig, progress: Any = None) -> NemesisResult:
    """One whole run; ``progress`` (a callable taking an :class:`Injected`) hears about faults
    as they land. SIGINT and SIGTERM end it with :class:`Interrupted` once the cluster is
    stopped (both are taken over for the run: a shell starts background jobs with SIGINT
    ignored, and SIGTERM would otherwise end the process without stopping the members)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def interrupt() -> None:
                async for signum in signals:
                    raise Interrupted(signal.Signals(signum).name)

            nursery.start_soon(interrupt)
            result = await _run(config, progress)
            nursery.cancel_scope.cancel()
    return result


async def _run(config: NemesisConfig, progress: Any) -> NemesisResult:
    clock = TrioClock()
    history = History()
    faults = plan(config.seed, config.duration, config.servers, config.kinds)
    async with open_cluster(
        config.data_dir, config.base_port, servers=config.servers, mutant=config.mutant
    ) as cluster:
        endpoints = cluster.client_endpoints
        await _wait_serving(cluster, clock)
        workload = Workload(
            history, endpoints, config.seed, config.clients, config.rate, clock, clock.now()
        )
        nemesis = Nemesis(cluster, clock, workload.origin, progress=progress)
        stop = trio.Event()
        async with trio.open_nursery() as watches:
            for m in range(config.servers):
                watches.start_soon(workload.watch_member, m)
            async with trio.open_nursery() as clients:
                for c in range(config.clients):
                    clients.start_soon(workload.run_client, c, stop)
                await nemesis.run(faults, config.duration)
                await cluster.heal_all()
                stop.set()
            final, revision, liveness = await _finish(workload, history, config.clients, clock)
            records = workload.records(revision)
            watches.cancel_scope.cancel()
        cluster.note_exits()
        exits = list(cluster.unexpected_exits)
    started = clock.now()
    verdict = judge(history, records, final)
    return NemesisResult(
        config, history, records, nemesis.injected, exits, liveness, verdict, clock.now() - started
    )


def write_history(result: NemesisResult, path: Path) -> None:
    """The whole run as JSON: its settings, the faults, every operation and watch, and what
    failed (the operations and watch events in the fuzzer's trace encoding)."""
    v = result.verdict
    data = {
        "config": {
            k: str(x) if isinstance(x, Path) else x for k, x in attrs.asdict(result.config).items()
        },
        "faults": [
            {"at": i.at, "undone_at": i.undone_at, "what": i.description} for i in result.injected
        ],
        "violation": None
        if v.violation is None
        else {
            "property": v.violation.prop,
            "message": v.violation.message,
            "evidence": v.violation.evidence,
        },
        "undecided": v.undecided,
        "lost_writes": list(v.lost_writes),
        "unexpected_exits": result.unexpected_exits,
        "liveness": result.liveness,
        "history": result.history.to_json(),
        "watches": [
            {
                "label": r.label,
                "key": to_json(r.key),
                "range_end": to_json(r.range_end),
                "start_revision": r.start_revision,
                "end": r.end,
                "compact_revision": r.compact_revision,
                "caught_up_to": r.caught_up_to,
                "events": to_json(r.events),
            }
            for r in result.records
        ],
    }
    path.write_text(json.dumps(data, indent=1, default=str))
