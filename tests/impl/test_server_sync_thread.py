"""The member's fsync thread: jobs run in another thread, one at a time, and a waiting task
neither misses the result nor abandons a job it was cancelled during."""

from __future__ import annotations

import threading

import pytest
import trio

from raftkube.server.sync_thread import SyncThread


@pytest.mark.trio
async def test_jobs_run_in_the_thread_and_report_back() -> None:
    ran_in: list[str] = []
    with SyncThread(name="test-sync") as sync:
        for _ in range(3):
            await sync.run_sync(lambda: ran_in.append(threading.current_thread().name))
    assert ran_in == ["test-sync"] * 3


@pytest.mark.trio
async def test_an_exception_in_the_job_is_raised_in_the_caller() -> None:
    def fail() -> None:
        raise OSError("disk gone")

    with SyncThread() as sync:
        with pytest.raises(OSError, match="disk gone"):
            await sync.run_sync(fail)
        await sync.run_sync(lambda: None)  # The thread survives a failed job.


@pytest.mark.trio
async def test_a_cancelled_caller_waits_for_its_job_to_finish() -> None:
    started, release = threading.Event(), threading.Event()
    finished: list[bool] = []

    def job() -> None:
        started.set()
        release.wait()
        finished.append(True)

    with SyncThread() as sync:
        with trio.move_on_after(0.05) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(sync.run_sync, job)
                await trio.to_thread.run_sync(started.wait)
                threading.Timer(0.2, release.set).start()
        assert scope.cancel_called
        assert finished == [True]  # The nursery could close only after the job returned.
