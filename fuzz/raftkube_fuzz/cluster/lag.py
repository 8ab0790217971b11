"""Slow, reordered watch delivery to one component: each of its connections lags on its own.

A component's informers each hold a watch on a connection of its own (HTTP/1.1), and its
requests go over pooled connections. When the path to the API server is congested, or the
API server's dispatch to one watcher falls behind, those connections do not lag alike: one
watch delivers an event seconds after another watch delivered a later one. That is what a
controller's expectations, and a scheduler's assumed pods, exist for.

:func:`lagging_dial` wraps a host's dialler: every connection it opens draws, once, a share
of the host's current *lag ceiling* (:class:`Lags`, per host, 0 = none), and hands on every
chunk it reads from the network that share of the ceiling after reading it. Chunks are read
one at a time, so a burst that arrived at once is handed on one lag apart: a connection lags
by at least its share, more while it has a backlog, as a congested link does (and no task
reads ahead in the background). A connection stays in order; two connections are out of
order with each other by at least the difference of their shares. The ceiling is read at
each chunk, so raising it (the suite's ``host_slow`` step) slows connections already open,
and the final heal sets it back to 0. The shares come from a generator seeded from the
host's own, so a run stays a function of its seed.

A second, narrower lag delays a component's *watches* alone (:class:`LaggingWatchClient`),
as when the API server's dispatch to one watcher falls behind while its requests are still
answered at once: each watch draws its share of the host's *watch* ceiling when it starts
and hands on every event that much after it read the previous one. A controller then reads
the objects fresh by GET but sees even its own writes come back late through its informers,
which is the view the endpoints controller's comparison with its cache went wrong on
(kubernetes #125638). Its generator is drawn from the host's only when a watch first lags, so
a run that never asks for it draws exactly what it drew before.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from raftkube.clock import Clock
from raftkube.kubeclient import KubeClient, Watch

Dial = Callable[[str, int], Awaitable[trio.abc.Stream]]


class Lags:
    """The lag ceiling (seconds) of each host, by name; absent means none."""

    def __init__(self) -> None:
        self._ceilings: dict[str, float] = {}
        self._watch_ceilings: dict[str, tuple[float, frozenset[str] | None]] = {}

    def set(self, host: str, seconds: float) -> None:
        self._ceilings[host] = seconds

    def set_watches(
        self, host: str, seconds: float, resources: frozenset[str] | None = None
    ) -> None:
        """The ceiling of ``host``'s watch lag alone (:class:`LaggingWatchClient`), for its
        watches of ``resources`` (plural names, e.g. ``endpoints``) or, None, of every
        resource."""
        self._watch_ceilings[host] = (seconds, resources)

    def clear(self) -> None:
        self._ceilings.clear()
        self._watch_ceilings.clear()

    def of(self, host: str) -> float:
        return self._ceilings.get(host, 0.0)

    def watches_of(self, host: str, resource: str) -> float:
        """The watch lag ceiling of ``host``'s watches of ``resource`` (its plural name)."""
        seconds, resources = self._watch_ceilings.get(host, (0.0, None))
        return seconds if resources is None or resource in resources else 0.0


class LaggingStream(trio.abc.Stream):
    """``inner``, with each chunk handed on ``share`` x the ceiling after it was read."""

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


class LaggingWatch(Watch):
    """``inner``, handing on each event its share of the ceiling after it read the previous
    one (in order: a watch never reorders). The share is drawn (``draw_share``) at the first
    event read while the ceiling is above 0, so a watch opened before its host was slowed
    lags from then on. Everything else is ``inner``'s own."""

    def __init__(
        self,
        inner: Watch,
        clock: Clock,
        draw_share: Callable[[], float],
        ceiling: Callable[[], float],
    ) -> None:
        # Not Watch.__init__: every method a watch has is delegated to ``inner``.
        self._inner = inner
        self._lag_clock = clock
        self._draw_share = draw_share
        self._share: float | None = None
        self._ceiling = ceiling

    async def start(self) -> None:
        await self._inner.start()

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> LaggingWatch:
        await self._inner.start()
        return self

    async def __anext__(self) -> tuple[str, dict[str, Any]]:
        event = await self._inner.__anext__()
        ceiling = self._ceiling()
        if ceiling > 0:
            if self._share is None:
                self._share = self._draw_share()
            await self._lag_clock.sleep_until(self._lag_clock.now() + self._share * ceiling)
        return event


@attrs.define
class LaggingWatchClient(KubeClient):
    """A :class:`~raftkube.kubeclient.KubeClient` whose watches lag by their own share of
    ``watch_ceiling()`` (0: not at all); its requests are untouched. The shares come from a
    generator seeded from ``rng`` when the first is needed."""

    watch_ceiling: Callable[[str], float] = attrs.field(default=lambda _: 0.0, kw_only=True)
    """The lag ceiling of a watch of the resource it is given (its plural name)."""
    rng: random.Random = attrs.field(factory=lambda: random.Random(0), kw_only=True)
    _shares: random.Random | None = attrs.field(default=None, init=False)

    def _draw_share(self) -> float:
        if self._shares is None:
            self._shares = random.Random(self.rng.random())
        return self._shares.random()

    def watch(self, resource: Any, *args: Any, **kwargs: Any) -> Watch:
        inner = super().watch(resource, *args, **kwargs)
        # A ready path (``/api/v1/endpoints``) ends with the resource's plural name.
        name = (
            resource.rstrip("/").rsplit("/", 1)[-1]
            if isinstance(resource, str)
            else resource.resource
        )
        return LaggingWatch(inner, self.clock, self._draw_share, lambda: self.watch_ceiling(name))
