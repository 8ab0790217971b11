"""Work queues: client-go's ``util/workqueue`` (``Type``, the delaying queue, the rate-limited
queue and its rate limiters), in one Trio thread.

The queue promises what controllers rely on, with client-go's three structures:

- ``queue``: the order items will be handed out in;
- ``dirty``: every item that needs processing (queued, or re-added while being processed);
- ``processing``: every item a worker has taken and not yet marked :meth:`WorkQueue.done`.

An item is never in ``queue`` twice (adding a dirty item does nothing), and an item being
processed is not handed to a second worker: re-adding it only marks it dirty, and
:meth:`WorkQueue.done` puts it back on ``queue`` then. So a key is never synced by two workers
at once, and a change that arrives while its key is being synced is never lost: the key is
synced again afterwards.

:class:`RateLimitingQueue` adds :meth:`~DelayingQueue.add_after` (an item joins the queue once
its delay has passed on the queue's clock; an earlier request for the same item wins) and
:meth:`~RateLimitingQueue.add_rate_limited` (the delay comes from the rate limiter:
per-item exponential back-off, with an overall token bucket, unless told to
:meth:`~RateLimitingQueue.forget`). The delays need a timer: run :meth:`DelayingQueue.run` in a
nursery the caller owns.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import math
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

import attrs
import trio

from raftkube.clock import Clock

T = TypeVar("T", bound=Hashable)
T_contra = TypeVar("T_contra", bound=Hashable, contravariant=True)


class ShutDown(Exception):
    """:meth:`WorkQueue.get` on a queue that is shut down and empty: the worker should stop."""


class WorkQueue(Generic[T]):
    """client-go's ``workqueue.Type``; see the module docstring."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._queue: collections.deque[T] = collections.deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._shutting_down = False
        self._waiters = trio.lowlevel.ParkingLot()

    def add(self, item: T) -> None:
        """Mark ``item`` as needing processing (see the module docstring)."""
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        if item in self._processing:
            return
        self._queue.append(item)
        self._waiters.unpark()

    def try_get(self) -> T | None:
        """The next item, now marked as being processed; None if none is queued."""
        if not self._queue:
            return None
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        return item

    async def get(self) -> T:
        """Wait for the next item; raises :class:`ShutDown` once shut down and drained."""
        await trio.lowlevel.checkpoint()
        while True:
            item = self.try_get()
            if item is not None:
                return item
            if self._shutting_down:
                raise ShutDown(self.name)
            await self._waiters.park()

    def done(self, item: T) -> None:
        """The worker has finished with ``item``; if it was re-added meanwhile, queue it."""
        self._processing.discard(item)
        if item in self._dirty:
            self._queue.append(item)
            self._waiters.unpark()

    def shut_down(self) -> None:
        """Refuse new items; workers drain what is queued, then :meth:`get` raises."""
        self._shutting_down = True
        self._waiters.unpark_all()

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        return len(self._queue)

    def processing(self) -> frozenset[T]:
        return frozenset(self._processing)


@attrs.frozen(order=True)
class _Waiting(Generic[T]):
    ready_at: float
    seq: int
    item: T = attrs.field(order=False)


class DelayingQueue(WorkQueue[T]):
    """client-go's delaying queue: :meth:`add_after`; :meth:`run` is its timer."""

    def __init__(self, clock: Clock, name: str = "") -> None:
        super().__init__(name)
        self.clock = clock
        self._heap: list[_Waiting[T]] = []
        self._ready_at: dict[T, float] = {}
        self._seq = itertools.count()
        self._timer = trio.lowlevel.ParkingLot()

    def add_after(self, item: T, delay: float) -> None:
        """Add ``item`` once ``delay`` seconds have passed (at once if ``delay`` <= 0). If the
        item already waits, the earlier of the two times is kept."""
        if self.shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        ready_at = self.clock.now() + delay
        if self._ready_at.get(item, math.inf) <= ready_at:
            return
        self._ready_at[item] = ready_at
        heapq.heappush(self._heap, _Waiting(ready_at, next(self._seq), item))
        self._timer.unpark_all()

    def waiting(self) -> int:
        """How many items wait for their delay."""
        return len(self._ready_at)

    def _release_due(self) -> None:
        now = self.clock.now()
        while self._heap and self._heap[0].ready_at <= now:
            entry = heapq.heappop(self._heap)
            if self._ready_at.get(entry.item) == entry.ready_at:
                del self._ready_at[entry.item]
                self.add(entry.item)

    async def run(self) -> None:
        """Move waiting items to the queue when due, until the queue is shut down."""
        while not self.shutting_down:
            self._release_due()
            scope = (
                self.clock.cancel_scope_at(self._heap[0].ready_at)
                if self._heap
                else trio.CancelScope()
            )
            with scope:
                await self._timer.park()

    def shut_down(self) -> None:
        super().shut_down()
        self._timer.unpark_all()


class RateLimiter(Protocol[T_contra]):
    """client-go's ``workqueue.TypedRateLimiter``."""

    def when(self, item: T_contra) -> float:
        """How long ``item`` should wait now; counts as one more failure of it."""
        ...

    def forget(self, item: T_contra) -> None:
        """Stop tracking ``item`` (it succeeded)."""
        ...

    def num_requeues(self, item: T_contra) -> int: ...


@attrs.define
class ItemExponentialFailureRateLimiter(Generic[T]):
    """``base_delay * 2**failures``, capped at ``max_delay``, per item."""

    base_delay: float = 0.005
    max_delay: float = 1000.0
    _failures: dict[T, int] = attrs.field(factory=dict, init=False)

    def when(self, item: T) -> float:
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        if exp > 64:
            return self.max_delay
        return float(min(self.base_delay * 2**exp, self.max_delay))

    def forget(self, item: T) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: T) -> int:
        return self._failures.get(item, 0)


@attrs.define
class BucketRateLimiter(Generic[T]):
    """An overall token bucket (``golang.org/x/time/rate``'s Limiter, reserving one token per
    call): ``qps`` tokens a second, at most ``burst`` saved up; each call takes one, and waits
    as long as the bucket is in debt."""

    clock: Clock
    qps: float = 10.0
    burst: int = 100
    _tokens: float = attrs.field(init=False, default=0.0)
    _last: float | None = attrs.field(init=False, default=None)

    def when(self, item: T) -> float:
        now = self.clock.now()
        if self._last is None:
            self._tokens, self._last = float(self.burst), now
        elapsed = max(0.0, now - self._last)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.qps)
        self._last = max(self._last, now)
        self._tokens -= 1.0
        return max(0.0, -self._tokens / self.qps)

    def forget(self, item: T) -> None:
        return None

    def num_requeues(self, item: T) -> int:
        return 0


@attrs.frozen
class MaxOfRateLimiter(Generic[T]):
    """The longest delay of several limiters."""

    limiters: tuple[RateLimiter[T], ...]

    def when(self, item: T) -> float:
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: T) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter(clock: Clock) -> MaxOfRateLimiter[str]:
    """client-go's ``DefaultControllerRateLimiter``: 5 ms doubling to 1000 s per item, and
    10 qps with a burst of 100 overall."""
    return MaxOfRateLimiter(
        (ItemExponentialFailureRateLimiter(0.005, 1000.0), BucketRateLimiter(clock, 10.0, 100))
    )


class RateLimitingQueue(DelayingQueue[T]):
    """client-go's rate-limiting queue: :meth:`add_rate_limited`, :meth:`forget`,
    :meth:`num_requeues`."""

    def __init__(self, clock: Clock, rate_limiter: RateLimiter[T], name: str = "") -> None:
        super().__init__(clock, name)
        self.rate_limiter = rate_limiter

    def add_rate_limited(self, item: T) -> None:
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self.rate_limiter.num_requeues(item)
