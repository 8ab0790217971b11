"""Slow, reordered watch delivery to one component: each of its connections lags on its own.

A component's informers each hold a watch on a connection of its own (HTTP/1.1), and its
requests go over pooled connections. When the path to the API server is congested, or the
API server's dispatch to one watcher falls behind, those connections do not lag alike: one
watch delivers an event seconds after another watch delivered a later one. That is what a
controller's expectations, and a scheduler's assumed pods, exist for.

:func:`lagging_dial` wraps a host's dialler: every connection it opens draws, once, a share
of the host's current *lag ceiling* (:class:`Lags`, per host, 0 = none), and hands on every
chunk it receives no earlier than that share of the ceiling after it arrived. A connection
stays in order; two connections are out of order with each other by the difference of their
shares. The ceiling is read at each chunk, so raising it (the suite's ``host_slow`` step)
slows connections already open, and the final heal sets it back to 0. The shares come from
a generator seeded from the host's own, so a run stays a function of its seed.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable

import trio

from raftkube.clock import Clock

Dial = Callable[[str, int], Awaitable[trio.abc.Stream]]


class Lags:
    """The lag ceiling (seconds) of each host, by name; absent means none."""

    def __init__(self) -> None:
        self._ceilings: dict[str, float] = {}

    def set(self, host: str, seconds: float) -> None:
        self._ceilings[host] = seconds

    def clear(self) -> None:
        self._ceilings.clear()

    def of(self, host: str) -> float:
        return self._ceilings.get(host, 0.0)


class LaggingStream(trio.abc.Stream):
    """``inner``, with what it receives handed on ``share`` x the ceiling after arrival."""

    def __init__(
        self, inner: trio.abc.Stream, clock: Clock, share: float, ceiling: Callable[[], float]
    ) -> None:
        self._inner = inner
        self._clock = clock
        self._share = share
        self._ceiling = ceiling

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        data = await self._inner.receive_some(max_bytes)
        lag = self._share * self._ceiling()
        if lag > 0:
            await self._clock.sleep_until(self._clock.now() + lag)
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._inner.aclose()


def lagging_dial(
    dial: Dial, clock: Clock, rng: random.Random, ceiling: Callable[[], float]
) -> Dial:
    """``dial``, with every connection lagging by its own share of ``ceiling()``."""
    shares = random.Random(rng.random())

    async def open_stream(host: str, port: int) -> trio.abc.Stream:
        stream = await dial(host, port)
        return LaggingStream(stream, clock, shares.random(), ceiling)

    return open_stream
