"""The cluster suite's watch-only lag (:class:`raftkube_fuzz.cluster.lag.LaggingWatchClient`):
events handed on in order, each its share of the host's ceiling late, the share drawn only
once a ceiling is set; requests are not its business."""

from __future__ import annotations

import random
from typing import Any

import trio
import trio.testing

from raftkube.clock import TrioClock
from raftkube.controllers.endpoints import ENDPOINTS
from raftkube.kubeclient import Watch
from raftkube_fuzz.cluster.lag import LaggingWatch, LaggingWatchClient, Lags


class ScriptedWatch(Watch):
    """A watch whose events are already there (no connection)."""

    def __init__(self, events: list[str]) -> None:
        self.events = list(events)

    async def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def __anext__(self) -> tuple[str, dict[str, Any]]:
        if not self.events:
            raise StopAsyncIteration
        return "MODIFIED", {"metadata": {"name": self.events.pop(0)}}


def _read(ceilings: list[float], share: float) -> tuple[list[tuple[str, float]], int]:
    """Each event's name and when it was handed on, for a watch whose ceiling is
    ``ceilings[i]`` at event ``i``; and how many shares were drawn."""
    drawn: list[float] = []

    def draw() -> float:
        drawn.append(share)
        return share

    async def main() -> list[tuple[str, float]]:
        at = iter(ceilings)
        watch = LaggingWatch(ScriptedWatch(["a", "b", "c"]), TrioClock(), draw, lambda: next(at))
        async with watch as events:
            return [(obj["metadata"]["name"], trio.current_time()) async for _, obj in events]

    seen = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return seen, len(drawn)


def test_each_event_comes_its_share_of_the_ceiling_after_the_previous() -> None:
    assert _read([4.0, 4.0, 2.0], 0.5) == ([("a", 2.0), ("b", 4.0), ("c", 5.0)], 1)


def test_no_ceiling_no_lag_and_no_share_drawn() -> None:
    assert _read([0.0, 0.0, 0.0], 0.5) == ([("a", 0.0), ("b", 0.0), ("c", 0.0)], 0)
    assert _read([0.0, 2.0, 0.0], 0.5) == ([("a", 0.0), ("b", 1.0), ("c", 1.0)], 1)


def test_the_client_draws_from_its_generator_only_when_a_watch_lags() -> None:
    rng = random.Random(7)
    client = LaggingWatchClient("https://api:6443", rng=rng)
    watch = client.watch("/api/v1/pods")
    assert isinstance(watch, LaggingWatch)
    assert rng.getstate() == random.Random(7).getstate()
    first = client._draw_share()
    assert 0 <= first < 1 and rng.getstate() != random.Random(7).getstate()


def test_a_ceiling_may_name_the_resources_whose_watches_lag() -> None:
    """``slow=endpoints-watches``: a host's Endpoints watches lag, its other watches do not;
    a ceiling naming no resources lags them all. The client looks a watch's ceiling up by the
    resource's plural name, whether it was given a ready path or a resource."""
    lags = Lags()
    lags.set_watches("kcm-0", 30.0, frozenset({"endpoints"}))
    lags.set_watches("kcm-1", 10.0)
    assert lags.watches_of("kcm-0", "endpoints") == 30.0
    assert lags.watches_of("kcm-0", "pods") == 0.0
    assert lags.watches_of("kcm-1", "pods") == 10.0
    assert lags.watches_of("sched-0", "endpoints") == 0.0
    asked: list[str] = []
    client = LaggingWatchClient(
        "https://api:6443", watch_ceiling=lambda name: asked.append(name) or 0.0
    )
    for resource in ("/api/v1/endpoints", "/api/v1/namespaces/default/endpoints/"):
        watch = client.watch(resource)
        assert isinstance(watch, LaggingWatch)
        watch._ceiling()
    watch = client.watch(ENDPOINTS)
    assert isinstance(watch, LaggingWatch)
    watch._ceiling()
    assert asked == ["endpoints"] * 3
