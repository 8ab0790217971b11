"""The eviction rate limits: the per-zone tainting queue under Hypothesis (never more taints
than the token bucket allows, each node at most once until forgotten), the disruption rules
(no zone taints while every zone is down), and the rate against a real API server."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from raftkube.clock import TrioClock
from raftkube.controllers.events import EventRecorder
from raftkube.controllers.evictionqueue import RateLimitedTimedQueue
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.nodehealth import DisruptionConfig, ZoneState, handle_disruption
from raftkube.controllers.nodelifecycle import NodeLifecycleConfig, NodeLifecycleController
from tests.helpers.api_server import APIHarness
from tests.helpers.nodes import NODES, Heartbeats, register_node
from tests.helpers.polling import wait_for

Obj = dict[str, Any]

steps = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "pass"]),
        st.sampled_from(["a", "b", "c", "d"]),
        st.floats(min_value=0.0, max_value=5.0),
    ),
    max_size=60,
)


@settings(max_examples=200)
@given(steps=steps, qps=st.sampled_from([0.0, 0.1, 0.5, 2.0]))
def test_tainting_never_outruns_the_bucket(steps: list[tuple[str, str, float]], qps: float) -> None:
    queue = RateLimitedTimedQueue(qps, now=0.0)
    now, processed = 0.0, 0
    known: set[str] = set()
    for op, name, dt in steps:
        now += dt
        if op == "add":
            assert queue.add(name, "", now) == (name not in known)
            known.add(name)
        elif op == "remove":
            assert queue.remove(name) == (name in known)
            known.discard(name)
        else:
            taken: list[str] = []
            while (entry := queue.pop_due(now)) is not None:
                taken.append(entry.value)
                queue.finish(entry, True, 0.0, now)
            assert len(set(taken)) == len(taken)  # a node at most once per pass
            processed += len(taken)
        # Burst 1, then qps a second: the bucket's bound (a little slack for float sums).
        assert processed <= 1 + qps * now + 1e-6 if qps > 0 else processed == 0


zone_statuses = st.lists(st.sampled_from(["True", "False", "Unknown", None]), min_size=1)


@settings(max_examples=300)
@given(
    zones=st.dictionaries(st.sampled_from(["a", "b", "c"]), zone_statuses, min_size=1),
    before=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from(list(ZoneState))),
)
def test_no_tainting_while_every_zone_is_down(
    zones: dict[str, list[str | None]], before: dict[str, ZoneState]
) -> None:
    decision = handle_disruption(before, zones, DisruptionConfig())
    assert set(decision.zone_states) == set(zones)  # zones without nodes are forgotten
    everything_down = all(all(s != "True" for s in statuses) for statuses in zones.values())
    if everything_down:
        assert all(s == ZoneState.FULL_DISRUPTION for s in decision.zone_states.values())
        assert all(qps == 0 for qps in decision.limiter_qps.values())
    if decision.enter_full_disruption:
        assert everything_down


@pytest.mark.trio
async def test_taints_spread_at_the_eviction_rate(api: APIHarness) -> None:
    """Seven nodes in one zone, three fall silent (3/7 < 0.55: the zone stays Normal): they
    are tainted one by one, a token (1 s at 1/s) apart."""
    client, clock = api.admin, TrioClock()
    config = NodeLifecycleConfig(
        node_monitor_period=0.2,
        node_monitor_grace_period=1.0,
        eviction_period=0.05,
        disruption=DisruptionConfig(eviction_rate=1.0),
    )
    names = [f"n{i}" for i in range(7)]
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            beats = Heartbeats(client)
            for name in names:
                await register_node(client, name, zone="z")
                beats.alive.add(name)
            nursery.start_soon(beats.run)
            factory = SharedInformerFactory(client, clock=clock, rng=random.Random(9))
            recorder = EventRecorder(client, "node-controller")
            controller = NodeLifecycleController(client, factory, clock, recorder, config=config)
            factory.start(nursery)
            nursery.start_soon(controller.run)
            await wait_for(lambda: set(names) <= set(controller.health), "every node's health")
            silent = names[:3]
            for name in silent:
                beats.alive.discard(name)
            tainted_at: dict[str, float] = {}
            while len(tainted_at) < 3:
                for name in silent:
                    node = await client.get(NODES, name)
                    taints = node["spec"].get("taints") or []
                    if name not in tainted_at and any(t["effect"] == "NoExecute" for t in taints):
                        tainted_at[name] = trio.current_time()
                await trio.sleep(0.05)
            times = sorted(tainted_at.values())
            assert times[1] - times[0] >= 0.7 and times[2] - times[1] >= 0.7
            assert controller.zone_states == {":\x00:z": ZoneState.NORMAL}  # GetZoneKey
            for name in names[3:]:
                node = await client.get(NODES, name)
                assert not node["spec"].get("taints")
            nursery.cancel_scope.cancel()
