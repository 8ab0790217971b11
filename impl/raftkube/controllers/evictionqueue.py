"""The node lifecycle controller's per-zone tainting queue: upstream's
``nodelifecycle/scheduler`` ``RateLimitedTimedQueue`` over a ``UniqueQueue``, with client-go's
``flowcontrol`` token bucket.

A node name is queued once (adding it again does nothing) and stays *known* after it was
processed, so a node already tainted is not tainted again, until :meth:`remove` forgets it
(the node is healthy again, or its taint vanished). :meth:`pop_due` hands out nodes in order
of their due time while the zone's token bucket has a token: one token per node, so the bucket
is the eviction rate (``--node-eviction-rate`` 0.1/s with a burst of one). A zone whose rate
drops to 0 gets a limiter that never accepts: tainting stops there. Time is the controller's
clock, passed in.
"""

from __future__ import annotations

import heapq
import itertools

import attrs

EVICTION_RATE_LIMITER_BURST = 1
"""upstream's ``EvictionRateLimiterBurst``."""


class TokenBucket:
    """``flowcontrol.NewTokenBucketRateLimiter(qps, burst)`` (``golang.org/x/time/rate``): the
    bucket starts full; :meth:`try_accept` takes a token if one is there."""

    def __init__(self, qps: float, burst: int, now: float) -> None:
        self._qps = qps
        self.burst = burst
        self._tokens = float(burst)
        self._last = now

    def qps(self) -> float:
        return self._qps

    def try_accept(self, now: float) -> bool:
        elapsed = max(0.0, now - self._last)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self._qps)
        self._last = max(self._last, now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class NeverLimiter:
    """``flowcontrol.NewFakeNeverRateLimiter``: never accepts. Its ``QPS()`` reads 1, as
    upstream's does, which :meth:`RateLimitedTimedQueue.swap_limiter` compares against."""

    def qps(self) -> float:
        return 1.0

    def try_accept(self, now: float) -> bool:
        return False


@attrs.frozen(order=True)
class TimedValue:
    """A queued node: its name, uid, when it was added and when it is due (controller
    clock)."""

    process_at: float
    seq: int
    value: str = attrs.field(order=False)
    uid: str = attrs.field(order=False)
    added_at: float = attrs.field(order=False)


class RateLimitedTimedQueue:
    """See the module docstring."""

    def __init__(self, qps: float, now: float) -> None:
        self.limiter: TokenBucket | NeverLimiter = (
            TokenBucket(qps, EVICTION_RATE_LIMITER_BURST, now) if qps > 0 else NeverLimiter()
        )
        self._heap: list[TimedValue] = []
        self._known: set[str] = set()
        self._queued: dict[str, TimedValue] = {}
        self._seq = itertools.count()

    def add(self, value: str, uid: str, now: float) -> bool:
        """Queue ``value`` due now, unless it is already known; True if it was added."""
        if value in self._known:
            return False
        entry = TimedValue(now, next(self._seq), value, uid, now)
        self._known.add(value)
        self._queued[value] = entry
        heapq.heappush(self._heap, entry)
        return True

    def remove(self, value: str) -> bool:
        """Forget ``value`` so it may be added again; True if it was known."""
        if value not in self._known:
            return False
        self._known.discard(value)
        self._queued.pop(value, None)
        return True

    def __contains__(self, value: str) -> bool:
        return value in self._queued

    def _head(self) -> TimedValue | None:
        while self._heap:
            entry = self._heap[0]
            if self._queued.get(entry.value) is entry:
                return entry
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now: float) -> TimedValue | None:
        """One step of ``Try``: the earliest queued node if a token is available (the token
        is taken first, as upstream takes it) and the node is due; None ends the pass. The
        caller processes it and reports with :meth:`finish`."""
        entry = self._head()
        if entry is None or not self.limiter.try_accept(now) or now < entry.process_at:
            return None
        return entry

    def finish(self, entry: TimedValue, done: bool, wait: float, now: float) -> None:
        """The outcome of processing ``entry``: done leaves the queue (the node stays known);
        otherwise it is due again ``wait`` (+1 ns, as upstream) from now. Nothing happens if
        the node was removed meanwhile."""
        if self._queued.get(entry.value) is not entry:
            return
        if done:
            del self._queued[entry.value]
            return
        again = attrs.evolve(entry, process_at=now + wait + 1e-9, seq=next(self._seq))
        self._queued[entry.value] = again
        heapq.heappush(self._heap, again)

    def swap_limiter(self, qps: float, now: float) -> None:
        """``SwapLimiter``: a new bucket at ``qps`` (never accepting at 0). A bucket that is
        empty now hands its debt on: the new one starts with its token taken."""
        if self.limiter.qps() == qps:
            return
        if qps <= 0:
            self.limiter = NeverLimiter()
            return
        fresh = TokenBucket(qps, EVICTION_RATE_LIMITER_BURST, now)
        if not self.limiter.try_accept(now):
            fresh.try_accept(now)
        self.limiter = fresh
