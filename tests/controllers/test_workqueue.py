"""The work queue's promises: a key is never handed to two workers at once, a key added while
it is being processed is processed again afterwards, nothing added is lost; delays and rate
limits follow the queue's clock."""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from raftkube.clock import TrioClock
from raftkube.controllers.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    RateLimitingQueue,
    ShutDown,
    WorkQueue,
    default_controller_rate_limiter,
)

KEYS = st.sampled_from(["a", "b", "c", "d"])


class WorkQueueMachine(RuleBasedStateMachine):
    """Workers take, finish and re-add keys in any interleaving. The model: which keys are
    held by a worker, and which need processing (added after their last take began)."""

    def __init__(self) -> None:
        super().__init__()
        self.queue: WorkQueue[str] = WorkQueue("test")
        self.held: list[str] = []
        self.pending: set[str] = set()

    @rule(key=KEYS)
    def add(self, key: str) -> None:
        self.queue.add(key)
        self.pending.add(key)

    @rule()
    def take(self) -> None:
        key = self.queue.try_get()
        if key is None:
            # Nothing queued: every pending key is held by a worker and will be re-queued.
            assert self.pending <= set(self.held)
            return
        assert key not in self.held, f"{key} handed to a second worker"
        assert key in self.pending, f"{key} handed out without having been added"
        self.held.append(key)
        self.pending.discard(key)

    @precondition(lambda self: self.held)
    @rule(index=st.integers(min_value=0))
    def finish(self, index: int) -> None:
        key = self.held.pop(index % len(self.held))
        self.queue.done(key)

    @invariant()
    def queue_has_each_key_once(self) -> None:
        assert len(self.queue) <= len(self.pending)
        assert self.queue.processing() == frozenset(self.held)

    def teardown(self) -> None:
        # Drain: finish everything held, process everything queued; every pending key is seen.
        for key in self.held:
            self.queue.done(key)
        seen: set[str] = set()
        while (key := self.queue.try_get()) is not None:
            assert key not in seen
            seen.add(key)
            self.queue.done(key)
        assert seen == self.pending


TestWorkQueueStateful = WorkQueueMachine.TestCase


@pytest.mark.trio
async def test_concurrent_workers_never_share_a_key() -> None:
    queue: WorkQueue[int] = WorkQueue("workers")
    active: set[int] = set()
    processed: list[int] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def worker() -> None:
                while True:
                    try:
                        key = await queue.get()
                    except ShutDown:
                        return
                    assert key not in active
                    active.add(key)
                    if key % 3 == 0:
                        await trio.testing.wait_all_tasks_blocked()
                    await trio.lowlevel.checkpoint()
                    # Re-adding while processing must not reach another worker now.
                    if len(processed) < 50:
                        queue.add(key)
                    active.discard(key)
                    processed.append(key)
                    queue.done(key)

            for _ in range(4):
                nursery.start_soon(worker)
            for key in range(6):
                queue.add(key)
            while len(processed) < 50:
                await trio.sleep(0)
            queue.shut_down()
    assert set(processed) == set(range(6))


@pytest.mark.trio
async def test_add_after_waits_on_the_queue_clock(autojump_clock: trio.testing.MockClock) -> None:
    clock = TrioClock()
    queue: RateLimitingQueue[str] = RateLimitingQueue(
        clock, ItemExponentialFailureRateLimiter(), "delays"
    )
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(queue.run)
            start = clock.now()
            queue.add_after("late", 10.0)
            queue.add_after("early", 3.0)
            queue.add_after("late", 20.0)  # the earlier request for "late" wins
            assert len(queue) == 0 and queue.waiting() == 2
            assert await queue.get() == "early"
            assert clock.now() - start == pytest.approx(3.0)
            assert await queue.get() == "late"
            assert clock.now() - start == pytest.approx(10.0)
            queue.add_after("now", 0)
            assert await queue.get() == "now"
            queue.shut_down()


def test_item_exponential_backoff_and_forget() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(0.005, 1.0)
    delays = [limiter.when("k") for _ in range(10)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 1.0
    assert limiter.num_requeues("k") == 10 and limiter.when("other") == 0.005
    limiter.forget("k")
    assert limiter.num_requeues("k") == 0 and limiter.when("k") == 0.005


@pytest.mark.trio
async def test_bucket_allows_a_burst_then_paces(autojump_clock: trio.testing.MockClock) -> None:
    clock = TrioClock()
    bucket: BucketRateLimiter[str] = BucketRateLimiter(clock, qps=10.0, burst=3)
    assert [bucket.when(str(i)) for i in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.when("x") == pytest.approx(0.1)
    assert bucket.when("y") == pytest.approx(0.2)
    await trio.sleep(1.0)
    assert bucket.when("z") == 0.0


@pytest.mark.trio
async def test_rate_limited_requeue_backs_off_per_item(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = TrioClock()
    queue: RateLimitingQueue[str] = RateLimitingQueue(
        clock, default_controller_rate_limiter(clock), "retries"
    )
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(queue.run)
            times = []
            queue.add("k")
            for _ in range(5):
                key = await queue.get()
                times.append(clock.now())
                queue.add_rate_limited(key)
                queue.done(key)
            gaps = [b - a for a, b in itertools.pairwise(times)]
            assert gaps == pytest.approx([0.005, 0.01, 0.02, 0.04])
            assert queue.num_requeues("k") == 5
            queue.forget("k")
            assert queue.num_requeues("k") == 0
            queue.shut_down()


@settings(max_examples=60)
@given(
    requests=st.lists(
        st.tuples(
            st.floats(0.0, 5.0),  # wait before the request
            st.sampled_from("xyz"),
            st.floats(-1.0, 10.0),  # the delay asked for
        ),
        max_size=12,
    )
)
def test_add_after_delivers_each_request_on_time_and_never_early(
    requests: list[tuple[float, str, float]],
) -> None:
    """Every ``add_after(item, delay)`` made at time s is met by a delivery of the item at
    some d with s <= d <= s + delay; no delivery comes before some request made it due."""

    made: list[tuple[str, float, float]] = []
    delivered: list[tuple[str, float]] = []

    async def scenario() -> None:
        clock = TrioClock()
        queue: RateLimitingQueue[str] = RateLimitingQueue(
            clock, ItemExponentialFailureRateLimiter(), "timed"
        )

        async def consumer() -> None:
            while True:
                try:
                    item = await queue.get()
                except ShutDown:
                    return
                delivered.append((item, clock.now()))
                queue.done(item)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(queue.run)
            nursery.start_soon(consumer)
            for wait, item, delay in requests:
                await trio.sleep(wait)
                made.append((item, clock.now(), clock.now() + max(delay, 0.0)))
                queue.add_after(item, delay)
            await trio.sleep(20)
            queue.shut_down()

    trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))
    eps = 1e-9
    for item, start, due in made:
        assert any(i == item and start - eps <= d <= due + eps for i, d in delivered), (
            f"{item} asked for at {start} (due {due}) not delivered in time: {delivered}"
        )
    for item, d in delivered:
        assert any(i == item and s <= d + eps and due <= d + eps for i, s, due in made), (
            f"{item} delivered at {d} before any request made it due: {made}"
        )
