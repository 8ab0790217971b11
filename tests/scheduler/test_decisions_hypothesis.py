"""Hypothesis over the decision logic: whatever the nodes, pods and failed bindings, no node is
ever given more than its allocatable (assumed pods count), a pod is declared unschedulable only
when no node has room, a failed binding gives its capacity back, and a seed fixes every
decision (with the per-node memo or without)."""

from __future__ import annotations

import random

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from raftkube.scheduler.algorithm import schedule_pod
from raftkube.scheduler.cache import SchedulerCache
from raftkube.scheduler.nodeinfo import PodInfo
from tests.helpers.scheduler_objects import node, pod

nodes_st = st.lists(
    st.tuples(st.integers(0, 4000), st.integers(0, 4096), st.integers(0, 6)),
    min_size=0,
    max_size=6,
)
pods_st = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(0, 2500)),
        st.one_of(st.none(), st.integers(0, 3000)),
        st.booleans(),  # does its binding fail?
    ),
    max_size=25,
)


def _run(nodes: list[tuple[int, int, int]], pods: list[tuple[int | None, int | None, bool]],
         seed: int, memo: bool = True) -> list[str | None]:  # fmt: skip
    cache = SchedulerCache()
    for i, (cpu, mem, count) in enumerate(nodes):
        cache.add_node(node(f"n{i}", cpu=f"{cpu}m", memory=f"{mem}Mi", pods=str(count)))
    rng = random.Random(seed)
    start = 0
    placed: dict[str, list[PodInfo]] = {f"n{i}": [] for i in range(len(nodes))}
    decisions: list[str | None] = []
    for j, (cpu, mem, fails) in enumerate(pods):
        info = PodInfo.of(pod(f"p{j}", None if cpu is None else f"{cpu}m",
                              None if mem is None else f"{mem}Mi"))  # fmt: skip
        if not memo:
            info = attrs.evolve(info, signature=None)
        decision = schedule_pod(info, cache.node_infos(), start, rng)
        start = decision.next_start_index
        decisions.append(decision.node)
        if decision.node is None:
            # Unschedulable only when no node has room by an independent count.
            for i, (ncpu, nmem, ncount) in enumerate(nodes):
                on = placed[f"n{i}"]
                room = (
                    len(on) + 1 <= ncount
                    and sum(p.requests.milli_cpu for p in on) + info.requests.milli_cpu <= ncpu
                    and sum(p.requests.memory for p in on) + info.requests.memory
                    <= nmem * 1024 * 1024
                )
                assert not room, (f"n{i}", decision.error)
            continue
        cache.assume_pod(info, decision.node)
        if fails:
            cache.forget_pod(info.key)
        else:
            placed[decision.node].append(info)
    for i, (cpu, mem, count) in enumerate(nodes):
        info_n = cache.node_info(f"n{i}")
        assert info_n is not None
        on = placed[f"n{i}"]
        assert len(info_n.pods) == len(on) <= count
        assert info_n.requested.milli_cpu == sum(p.requests.milli_cpu for p in on) <= cpu
        assert info_n.requested.memory == sum(p.requests.memory for p in on)
        assert info_n.requested.memory <= mem * 1024 * 1024
    return decisions


@settings(max_examples=150)
@given(nodes_st, pods_st, st.integers(0, 2**32))
def test_never_beyond_allocatable_and_unschedulable_only_when_full(
    nodes: list[tuple[int, int, int]],
    pods: list[tuple[int | None, int | None, bool]],
    seed: int,
) -> None:
    first = _run(nodes, pods, seed)
    assert _run(nodes, pods, seed) == first
    # The per-node memo changes nothing.
    assert _run(nodes, pods, seed, memo=False) == first
