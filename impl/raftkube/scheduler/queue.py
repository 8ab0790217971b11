"""The scheduling queue: upstream's ``PriorityQueue`` (``internal/queue``), in one Trio thread.

A pending pod is in exactly one of three places:

- **activeQ**: ready to be tried, popped highest ``spec.priority`` first, then the one that
  entered the queue first (the PrioritySort plugin);
- **backoffQ**: it failed recently and waits out its back-off, 1 s doubling per attempt up to
  10 s (``--pod-initial-backoff-seconds``, ``--pod-max-backoff-seconds``), then goes to activeQ;
- **unschedulablePods**: no node fitted; it waits for a cluster event that may make one fit (a
  node added or changed, an assigned pod deleted), which moves it to backoffQ (or straight to
  activeQ once its back-off is over), or for 5 minutes to pass
  (``podMaxInUnschedulablePodsDuration``).

A pod popped for scheduling is *in flight* until :meth:`SchedulingQueue.done`. If a move
request arrives while it is in flight and its attempt then fails, it goes to backoffQ rather
than unschedulablePods, so the event that might have helped it is not missed (upstream's
``moveRequestCycle``).

Simplification: upstream (1.32) asks each plugin's queueing hints whether an event can help
a given pod; here every such event moves every unschedulable pod, which retries more but never
misses a pod upstream would retry.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from typing import Any

import attrs
import trio

from raftkube.clock import Clock
from raftkube.scheduler.nodeinfo import pod_key

Obj = dict[str, Any]

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_IN_UNSCHEDULABLE = 300.0
UNSCHEDULABLE_FLUSH_PERIOD = 30.0


@attrs.define(eq=False)
class QueuedPodInfo:
    """A pod in the queue: ``timestamp`` is when it last entered it, ``attempts`` how often it
    has been popped."""

    pod: Obj
    key: str
    timestamp: float
    attempts: int = 0
    initial_attempt_timestamp: float | None = None

    @property
    def priority(self) -> int:
        return int((self.pod.get("spec") or {}).get("priority") or 0)


class SchedulingQueue:
    """See the module docstring. Run :meth:`run` (the back-off timer) in a nursery."""

    def __init__(
        self,
        clock: Clock,
        *,
        initial_backoff: float = INITIAL_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        max_in_unschedulable: float = MAX_IN_UNSCHEDULABLE,
    ) -> None:
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_in_unschedulable = max_in_unschedulable
        self._seq = itertools.count()
        self._active: list[tuple[int, float, int, str]] = []
        self._backoff: list[tuple[float, int, str]] = []
        self._where: dict[str, str] = {}  # key -> "active" | "backoff" | "unschedulable"
        self._infos: dict[str, QueuedPodInfo] = {}
        self._in_flight: dict[str, QueuedPodInfo] = {}
        self.scheduling_cycle = 0
        self._move_request_cycle = -1
        self._ready = trio.lowlevel.ParkingLot()
        self._timer = trio.lowlevel.ParkingLot()

    # --- reads -----------------------------------------------------------------------------

    def where(self, key: str) -> str | None:
        """ "active", "backoff", "unschedulable", "in flight", or None."""
        if key in self._in_flight:
            return "in flight"
        return self._where.get(key)

    def pending(self) -> Iterator[QueuedPodInfo]:
        yield from self._infos.values()

    def __len__(self) -> int:
        return len(self._infos)

    # --- informer events -------------------------------------------------------------------

    def add(self, pod: Obj) -> None:
        """A new pending pod: straight to activeQ."""
        key = pod_key(pod)
        if key in self._infos or key in self._in_flight:
            self.update(pod)
            return
        self._to_active(QueuedPodInfo(pod, key, self.clock.now()))

    def update(self, pod: Obj) -> None:
        """A pending pod changed: keep the newest object; a change to an unschedulable pod
        may make it fit, so it is moved as a cluster event would move it."""
        key = pod_key(pod)
        flying = self._in_flight.get(key)
        if flying is not None:
            flying.pod = pod
            return
        info = self._infos.get(key)
        if info is None:
            self.add(pod)
            return
        changed = _scheduling_view(info.pod) != _scheduling_view(pod)
        info.pod = pod
        if changed and self._where[key] == "unschedulable":
            self._move(info)

    def delete(self, pod: Obj) -> None:
        key = pod_key(pod)
        self._in_flight.pop(key, None)
        if self._infos.pop(key, None) is not None:
            # Stale heap entries are skipped when they surface.
            del self._where[key]

    def move_all_to_active_or_backoff(self) -> None:
        """A cluster event that may let unschedulable pods fit (upstream's
        ``MoveAllToActiveOrBackoffQueue``)."""
        for key in [k for k, w in self._where.items() if w == "unschedulable"]:
            self._move(self._infos[key])
        self._move_request_cycle = self.scheduling_cycle

    # --- the scheduling loop ---------------------------------------------------------------

    def try_pop(self) -> QueuedPodInfo | None:
        while self._active:
            _, _, _, key = heapq.heappop(self._active)
            if self._where.get(key) != "active":
                continue
            info = self._infos.pop(key)
            del self._where[key]
            info.attempts += 1
            if info.initial_attempt_timestamp is None:
                info.initial_attempt_timestamp = self.clock.now()
            self.scheduling_cycle += 1
            self._in_flight[key] = info
            return info
        return None

    async def pop(self) -> QueuedPodInfo:
        """The next pod to schedule (waits for one); it is in flight until :meth:`done`."""
        await trio.lowlevel.checkpoint()
        while True:
            info = self.try_pop()
            if info is not None:
                return info
            await self._ready.park()

    def done(self, key: str) -> None:
        self._in_flight.pop(key, None)

    def add_unschedulable(self, info: QueuedPodInfo, pod_scheduling_cycle: int) -> None:
        """Requeue a pod whose attempt failed (upstream's ``AddUnschedulableIfNotPresent``):
        to backoffQ if a move request came during its attempt, else to unschedulablePods."""
        self._in_flight.pop(info.key, None)
        if info.key in self._infos:
            return
        info.timestamp = self.clock.now()
        self._infos[info.key] = info
        if self._move_request_cycle >= pod_scheduling_cycle:
            self._to_backoff(info)
        else:
            self._where[info.key] = "unschedulable"

    def backoff_duration(self, info: QueuedPodInfo) -> float:
        duration = self.initial_backoff
        for _ in range(1, info.attempts):
            duration *= 2
            if duration > self.max_backoff:
                return self.max_backoff
        return duration

    # --- internals -------------------------------------------------------------------------

    def _backoff_expiry(self, info: QueuedPodInfo) -> float:
        return info.timestamp + self.backoff_duration(info)

    def _to_active(self, info: QueuedPodInfo) -> None:
        self._infos[info.key] = info
        self._where[info.key] = "active"
        heapq.heappush(self._active, (-info.priority, info.timestamp, next(self._seq), info.key))
        self._ready.unpark()

    def _to_backoff(self, info: QueuedPodInfo) -> None:
        self._where[info.key] = "backoff"
        heapq.heappush(self._backoff, (self._backoff_expiry(info), next(self._seq), info.key))
        self._timer.unpark_all()

    def _move(self, info: QueuedPodInfo) -> None:
        if self._backoff_expiry(info) > self.clock.now():
            self._to_backoff(info)
        else:
            self._to_active(info)

    def flush_backoff_completed(self) -> None:
        now = self.clock.now()
        while self._backoff and self._backoff[0][0] <= now:
            _, _, key = heapq.heappop(self._backoff)
            if self._where.get(key) == "backoff":
                self._to_active(self._infos[key])

    def flush_unschedulable_leftover(self) -> None:
        now = self.clock.now()
        for key in [k for k, w in self._where.items() if w == "unschedulable"]:
            info = self._infos[key]
            if now - info.timestamp > self.max_in_unschedulable:
                self._move(info)

    async def run(self) -> None:
        """Move pods whose back-off is over to activeQ, and unschedulable pods that waited
        too long out of unschedulablePods, until cancelled."""
        next_leftover_flush = self.clock.now() + UNSCHEDULABLE_FLUSH_PERIOD
        while True:
            self.flush_backoff_completed()
            now = self.clock.now()
            if now >= next_leftover_flush:
                self.flush_unschedulable_leftover()
                next_leftover_flush = now + UNSCHEDULABLE_FLUSH_PERIOD
            wake = next_leftover_flush
            if self._backoff:
                wake = min(wake, self._backoff[0][0])
            with self.clock.cancel_scope_at(wake):
                await self._timer.park()


def _scheduling_view(pod: Obj) -> tuple[Any, Any, Any]:
    """What of a pod can change and matter to its scheduling: labels, spec (tolerations,
    scheduling gates) and annotations; status writes (our own condition) do not count."""
    meta = pod.get("metadata") or {}
    return meta.get("labels"), pod.get("spec"), meta.get("annotations")
