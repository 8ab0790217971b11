"""The Clock seam: TrioClock follows Trio's clock, so MockClock makes it virtual."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from raftkube.clock import Clock, TrioClock, sleep_for


def test_trio_clock_satisfies_the_protocol() -> None:
    assert isinstance(TrioClock(), Clock)


@pytest.mark.trio
async def test_trio_clock_is_virtual_under_an_autojumping_mock_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = TrioClock()
    start = clock.now()
    await clock.sleep_until(start + 3600.0)  # an hour, instantly
    assert clock.now() >= start + 3600.0
    await sleep_for(clock, 60.0)
    assert clock.now() >= start + 3660.0


@pytest.mark.trio
async def test_sleep_until_a_past_deadline_returns_at_once() -> None:
    clock = TrioClock()
    with trio.fail_after(1):
        await clock.sleep_until(clock.now() - 10.0)
