"""The ``kv`` workload against real processes, recorded as the fuzzer records it.

Requests are the ``kv`` suite's own steps turned into requests by its
:func:`~raftkube_fuzz.suites.kv.request_of` (puts, point and prefix reads, linearizable and
serializable, deletes and compare-and-swap transactions on the suite's keys), sent through
raftkube's client library over TCP, half of the clients with a session and half
``at_most_once``, each request starting at a member drawn from the seed. What a client
records is decided as the simulated wire clients decide it
(:func:`~raftkube_fuzz.world.wire_client.outcome_of_error`) into the same
:class:`~raftkube_fuzz.checks.history.History`, and watches are followed by the same
:func:`~raftkube_fuzz.world.wire_client.follow_watch` into the same
:class:`~raftkube_fuzz.world.client.WatchHandle`.

Left out of the suite's mix: leases (their expiry is a timing property the checker cannot
judge on real clocks any better than in simulation, and a lost lease only deletes keys) and
compaction (a real member's history is then cut under watches that reconnect from old
revisions, which the checker handles, but it shortens what the lost-write check can see).
"""

from __future__ import annotations

import random

import attrs
import trio

from raftkube.client import Client, ClientError
from raftkube.clock import Clock, move_on_after, sleep_for
from raftkube_fuzz.checks.history import Failed, History, Ok, Outcome, Unknown
from raftkube_fuzz.checks.watches import WatchRecord
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites.kv import KEYS, PREFIX, request_of
from raftkube_fuzz.world.client import WatchHandle, is_read
from raftkube_fuzz.world.wire_client import follow_watch, outcome_of_error
from raftkube_spec.kv.keyrange import prefix_range_end
from raftkube_spec.kv.requests import Request

REQUEST_TIMEOUT = 1.0
"""The client library's timeout per attempt (seconds): a paused member costs one of these."""
OPERATION_TIMEOUT = 5.0
"""The caller's deadline for one operation, retries included; a write still out then is
recorded Unknown, a read Failed."""
WATCH_RETRY = 0.5
"""Seconds between attempts to reopen a watch whose member was down or cut off."""


async def record(
    history: History,
    client_id: int,
    client: Client,
    req: Request,
    clock: Clock,
    *,
    serializable: bool = False,
    timeout: float = OPERATION_TIMEOUT,
    origin: float = 0.0,
) -> Outcome:
    """Send ``req`` through ``client``, recording its call and outcome in ``history`` as
    seconds since ``origin`` on ``clock`` (the run's start, which the faults count from)."""
    read = is_read(req)
    op_id = history.invoke(client_id, req, clock.now() - origin, serializable=read and serializable)
    outcome: Outcome = Failed("client deadline") if read else Unknown("client deadline")
    with move_on_after(clock, timeout):
        try:
            outcome = Ok(await client.request(req, serializable=serializable))
        except (ClientError, trio.TooSlowError) as exc:
            outcome = outcome_of_error(exc, read=read)
    history.complete(op_id, outcome, clock.now() - origin)
    return outcome


def new_client(endpoints: list[str], *, session: bool) -> Client:
    return Client(
        endpoints,
        attempts=4 * len(endpoints),
        retry_delay=0.05,
        request_timeout=REQUEST_TIMEOUT,
        at_most_once=not session,
    )


@attrs.define(eq=False)
class Workload:
    """``clients`` concurrent clients issuing ``rate`` operations per second in all, and a
    watch on every member's whole key range, reopened whenever it ends."""

    history: History
    endpoints: list[str]
    seed: int
    clients: int
    rate: float
    clock: Clock
    origin: float
    """The run's start on ``clock``: recorded times are seconds since it."""
    handles: list[WatchHandle] = attrs.Factory(list)
    _values: int = 0

    def step(self, rng: random.Random) -> tuple[Step, bool]:
        """A ``kv`` suite step drawn from ``rng``, and whether a read is serializable."""
        member = rng.randrange(len(self.endpoints))
        key = rng.choice(KEYS)
        self._values += 1
        value = f"v{self._values}"
        roll = rng.random()
        if roll < 0.4:
            return Step.of("put", member=member, key=key, value=value, lease=0), False
        if roll < 0.75:
            prefix = rng.random() < 0.3
            step = Step.of(
                "get",
                member=member,
                key=PREFIX if prefix else key,
                prefix=prefix,
                revision=0,
                limit=0,
                keys_only=False,
                count_only=False,
            )
            return step, rng.random() < 0.1
        if roll < 0.85:
            prefix = rng.random() < 0.2
            step = Step.of("delete", member=member, key=PREFIX if prefix else key, prefix=prefix)
            return step, False
        on = rng.choice(("mod", "value"))
        step = Step.of(
            "txn",
            member=member,
            key=key,
            on=on,
            mod_revision=rng.randrange(0, 2 * self._values + 2),
            value=f"v{rng.randrange(max(1, self._values - 8), self._values + 1)}",
            new_value=value,
        )
        return step, False

    async def run_client(self, client_id: int, stop: trio.Event) -> None:
        """One client's loop until ``stop``; the operation in flight then still completes."""
        rng = random.Random(f"{self.seed}/client/{client_id}")
        gap = self.clients / self.rate
        session = client_id % 2 == 0
        async with new_client(self.endpoints, session=session) as client:
            while session and client.session_id is None and not stop.is_set():
                with move_on_after(self.clock, OPERATION_TIMEOUT):
                    try:
                        await client.open_session()
                    except ClientError:
                        await sleep_for(self.clock, WATCH_RETRY)
            while not stop.is_set():
                started = self.clock.now()
                step, serializable = self.step(rng)
                request = request_of(step)
                assert request is not None
                client.use_endpoint(self.endpoints[step["member"]])
                await record(
                    self.history,
                    client_id,
                    client,
                    request,
                    self.clock,
                    serializable=serializable,
                    origin=self.origin,
                )
                rest = gap - (self.clock.now() - started)
                if rest > 0:
                    await sleep_for(self.clock, rest * rng.uniform(0.5, 1.5))

    async def watch_member(self, member: int) -> None:
        """Keep a watch on ``member`` over every key of the workload until cancelled: from
        revision 1 at first, then, after each end, from the revision after the last one
        delivered (so a reconnect must resume exactly where the stream broke)."""
        key = PREFIX.encode()
        end = prefix_range_end(key)
        start = 1
        async with new_client([self.endpoints[member]], session=False) as client:
            while True:
                handle = WatchHandle(member, key, end, start)
                async with trio.open_nursery() as nursery:
                    await nursery.start(follow_watch, client, handle)
                    if handle.end == "open":  # registered (a failed attempt ends at once)
                        self.handles.append(handle)
                if handle.events:
                    start = handle.events[-1].kv.mod_revision + 1
                await sleep_for(self.clock, WATCH_RETRY)

    def records(self, caught_up_to: int | None) -> list[WatchRecord]:
        """The watches as the checkers take them; open ones are judged complete through
        ``caught_up_to``."""
        return [
            WatchRecord(
                key=h.key,
                range_end=h.range_end,
                start_revision=h.start_revision,
                events=tuple(h.events),
                end=h.end,
                compact_revision=h.compact_revision,
                label=f"member {h.member} from revision {h.start_revision}",
                caught_up_to=caught_up_to if h.end == "open" else None,
            )
            for h in self.handles
        ]
