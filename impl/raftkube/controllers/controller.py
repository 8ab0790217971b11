"""The shell every controller shares: workers taking keys off a rate-limited work queue and
calling ``sync(key)``, the way client-go controllers' ``processNextWorkItem`` does.

A sync that returns means the key is done (its back-off is forgotten); one that raises
:class:`RequeueAfter` wants the key looked at again after a delay (the namespace controller
waiting for content to go); any other failure re-queues it with the rate limiter's back-off
(5 ms doubling per failure, at most 10/s overall) and is logged, as
``utilruntime.HandleError`` does. The queue guarantees a key is never synced by two workers at
once, so ``sync`` needs no locking of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import attrs
import trio

from raftkube.clock import Clock
from raftkube.controllers.informer import SharedIndexInformer
from raftkube.controllers.synctrace import sync_started
from raftkube.controllers.workqueue import (
    RateLimitingQueue,
    ShutDown,
    default_controller_rate_limiter,
)

logger = logging.getLogger("raftkube.controllers")

SyncFn = Callable[[str], Awaitable[None]]


class RequeueAfter(Exception):
    """Raised by a sync that is not finished and should run again in ``delay`` seconds."""

    def __init__(self, delay: float, reason: str = "") -> None:
        super().__init__(reason or f"requeue after {delay} s")
        self.delay = delay


def new_queue(clock: Clock, name: str) -> RateLimitingQueue[str]:
    """A queue with client-go's default controller rate limiter."""
    return RateLimitingQueue(clock, default_controller_rate_limiter(clock), name)


@attrs.define(eq=False)
class Worker:
    """Runs ``sync`` over ``queue``'s keys; see the module docstring."""

    name: str
    queue: RateLimitingQueue[str]
    sync: SyncFn
    informers: Sequence[SharedIndexInformer] = ()
    syncs: int = attrs.field(init=False, default=0)
    """How many syncs have finished (for tests and metrics)."""

    async def run(self, workers: int) -> None:
        """Wait for the informers' caches, then sync keys with ``workers`` tasks until
        cancelled; the queue is shut down on the way out."""
        try:
            logger.info("waiting for caches to sync for %s", self.name)
            for informer in self.informers:
                await informer.wait_for_sync()
            logger.info("caches are synced for %s", self.name)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.queue.run, name=f"{self.name} queue timer")
                for i in range(workers):
                    nursery.start_soon(self._work, name=f"{self.name} worker {i}")
        finally:
            self.queue.shut_down()

    async def _work(self) -> None:
        while await self.process_next_work_item():
            pass

    async def process_next_work_item(self) -> bool:
        try:
            key = await self.queue.get()
        except ShutDown:
            return False
        try:
            sync_started(self.name, key, self.informers)
            await self.sync(key)
        except RequeueAfter as again:
            self.queue.add_after(key, again.delay)
        except Exception as exc:
            # A failed sync must not stop the controller: retry the key with back-off.
            logger.warning("%s: syncing %r failed: %s", self.name, key, exc, exc_info=exc)
            self.queue.add_rate_limited(key)
        else:
            self.queue.forget(key)
        finally:
            self.syncs += 1
            self.queue.done(key)
        return True
