"""The member's fsync thread: one long-lived worker that runs ``Storage.sync`` off the event loop.

:class:`~raftkube.server.member.Member` takes any ``run_sync`` hook; ``trio.to_thread.run_sync``
would do, but it pays per call for a general thread pool (a thread-cache lookup, naming the OS
thread after the job, a capacity limiter), which under load is several percent of a member's
CPU because a member syncs hundreds of times a second. A member has at most one sync in flight
(one Ready at a time), so one dedicated thread fed by a queue is enough: the calling task parks,
the thread runs the job and hands the outcome back through the Trio token.

A sync cannot be interrupted halfway, so a task waiting for one is not cancellable until it
returns (as with ``trio.to_thread.run_sync`` without ``abandon_on_cancel``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import outcome
import trio

_Job = tuple[Callable[[], Any], Callable[[outcome.Outcome[Any]], None]]


class SyncThread:
    """Runs blocking callables one at a time in its own thread; use as a context manager
    (the thread starts on entry and is stopped, after the job in progress, on exit)."""

    def __init__(self, name: str = "raftkube-sync") -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)

    def __enter__(self) -> SyncThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._jobs.put(None)
        self._thread.join()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, report = job
            report(outcome.capture(fn))

    async def run_sync(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` in the thread and return (or raise) what it did, meanwhile letting the
        event loop run everything else."""
        token = trio.lowlevel.current_trio_token()
        task = trio.lowlevel.current_task()

        def report(result: outcome.Outcome[Any]) -> None:
            token.run_sync_soon(trio.lowlevel.reschedule, task, result)

        await trio.lowlevel.checkpoint_if_cancelled()
        self._jobs.put((fn, report))
        result = await trio.lowlevel.wait_task_rescheduled(
            lambda _: trio.lowlevel.Abort.FAILED  # The job runs to its end; so do we.
        )
        assert result is None
