"""Waiting for a condition in tests: poll it at a short interval until it holds, within a
deadline, so a test waits exactly as long as the system needs and a system that never gets
there fails the test with what it was waiting for (instead of sleeping a guessed time).

Both run on Trio's clock, which in these tests is real time: they wait for real sockets,
processes and servers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T]],
    what: str = "the condition",
    timeout: float = 30.0,
    interval: float = 0.05,
) -> T:
    """Await ``check()`` until it returns something true, and return that."""
    with trio.move_on_after(timeout):
        while not (result := await check()):
            await trio.sleep(interval)
        return result
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def wait_for(
    predicate: Callable[[], object],
    what: str = "the condition",
    timeout: float = 15.0,
    interval: float = 0.02,
) -> None:
    """Poll the synchronous ``predicate`` until it holds."""
    with trio.move_on_after(timeout):
        while not predicate():
            await trio.sleep(interval)
        return
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
