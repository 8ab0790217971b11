"""The end of an example: how long a healed cluster may take to serve again, the probe that
waits for it to serve and then to go quiet, and what is judged once it has.

Once every fault is undone, a leader must emerge within :func:`liveness_bound`, a fresh write
and a linearizable read must succeed, every client operation must return, and the members
must converge; only then are the watches and the whole history judged (by
:meth:`Run.finish <raftkube_fuzz.example.Run.finish>`, which runs :func:`probe` under that
bound).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from raftkube.server.member import Member
from raftkube_fuzz.checks.history import History, Ok, describe
from raftkube_fuzz.checks.watches import WatchRecord
from raftkube_fuzz.violation import Violation
from raftkube_fuzz.world.client import RequestClient, WatchHandle
from raftkube_fuzz.world.driver import SimTask, sleep
from raftkube_fuzz.world.streams import RETRANSMIT
from raftkube_fuzz.world.world import World, WorldConfig
from raftkube_spec.kv.requests import PutRequest, RangeRequest


def liveness_bound(c: WorldConfig) -> float:
    """Virtual seconds a healed cluster may take to serve again: a few randomized election
    timeouts (each at most twice the base), with pre-vote's extra round, plus the slowest
    client operation still in flight."""
    election = 2 * c.election_ticks * c.tick_interval
    return 6 * election + 3 * c.request_timeout + 1.0


async def probe(
    world: World,
    client: RequestClient,
    pending: Sequence[SimTask[Any]],
    *,
    wire_clients: bool,
) -> None:
    """A write then a linearizable read, through whichever member leads, until both
    succeed; then wait for the ``pending`` client operations, and for every member to catch
    up with the others and stay caught up for a tick."""
    config = world.config
    key = b"__liveness__"
    while True:
        leader = world.leader()
        if leader is not None:
            outcome = await client.request(
                PutRequest(key, b"probe"),
                member=leader,
                timeout=config.request_timeout,
            )
            if isinstance(outcome, Ok):
                read = await client.request(
                    RangeRequest(key), member=leader, timeout=config.request_timeout
                )
                if isinstance(read, Ok):
                    break
        await sleep(config.tick_interval)
    for task in pending:
        while not task.done:
            await sleep(config.tick_interval)
    # Byte streams stalled by a partition retransmit every RETRANSMIT: by now (the links
    # healed before the probe) what they held, a watch's events or a crashed member's
    # reset, has arrived.
    if wire_clients:
        await sleep(RETRANSMIT)
    # Then every member catches up, and stays caught up for a whole tick: a watch stream
    # drains in the scheduler pass after its member applies, so the watches are judged
    # only once no apply is more recent than a tick (a follower may apply the last
    # operation's entry a heartbeat after the leader answered it, as late as the end of
    # that tick).
    while True:
        members = _configured(world)
        target = max(m.applied for m in members if m is not None)
        while any(m is None or m.applied < target for m in _configured(world)):
            await sleep(config.tick_interval)
        applied = [m.applied for m in _configured(world) if m is not None]
        await sleep(config.tick_interval)
        if applied == [m.applied for m in _configured(world) if m is not None]:
            break


def _configured(world: World) -> list[Member | None]:
    """The members of the leader's configuration (every member without membership
    changes): a removed member, or a spare never added, hears nothing more and never
    catches up, as it should not."""
    leader = world.leader()
    member = None if leader is None else world.members[leader]
    if member is None:
        return world.members
    configured = member.node.membership.members
    return [m for i, m in enumerate(world.members) if i in configured]


def check_pending_done(history: History) -> None:
    """Liveness: every client operation returned once the cluster healed."""
    pending = [op for op in history.operations() if op.outcome is None]
    if pending:
        raise Violation(
            "Liveness",
            f"{len(pending)} client operations never returned after the cluster healed",
            {"operations": [describe(op.request) for op in pending[:10]]},
        )


def watch_record(handle: WatchHandle, world: World) -> WatchRecord:
    """What a watch delivered, for the watch checks; an open watch is also told how far its
    member's store had got (the revision it must have caught up to)."""
    member = world.hosts[handle.member].member
    caught_up = member.mvcc.revision if handle.end == "open" and member is not None else None
    return WatchRecord(
        key=handle.key,
        range_end=handle.range_end,
        start_revision=handle.start_revision,
        events=tuple(handle.events),
        end=handle.end,
        compact_revision=handle.compact_revision,
        caught_up_to=caught_up,
    )
