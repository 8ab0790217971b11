"""The scheduler's decision logic on examples: filters, their messages, scores, tie-breaking
and the cache's assumed pods."""

from __future__ import annotations

import random

import pytest

from raftkube.scheduler.algorithm import num_feasible_nodes_to_find, schedule_pod, select_host
from raftkube.scheduler.cache import CacheError, SchedulerCache
from raftkube.scheduler.filters import FilterState, run_filters
from raftkube.scheduler.nodeinfo import NodeInfo, PodInfo
from raftkube.scheduler.scores import balanced_allocation, least_allocated, score_nodes
from tests.helpers.scheduler_objects import node, pod

GPU_TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


def cache_of(*nodes: dict, pods: tuple[dict, ...] = ()) -> SchedulerCache:
    cache = SchedulerCache()
    for n in nodes:
        cache.add_node(n)
    for p in pods:
        cache.add_pod(p)
    return cache


def decide(cache: SchedulerCache, p: dict, seed: int = 0) -> tuple[str | None, str]:
    decision = schedule_pod(PodInfo.of(p), cache.node_infos(), 0, random.Random(seed))
    return decision.node, decision.error.message() if decision.error else ""


def test_upstreams_message_for_a_mix_of_reasons() -> None:
    cache = cache_of(
        node("a", cpu="1"),
        node("b", taints=[GPU_TAINT]),
        node("c", taints=[GPU_TAINT]),
        pods=(pod("big", cpu="900m", node_name="a"),),
    )
    chosen, message = decide(cache, pod("p", cpu="500m"))
    assert chosen is None
    assert message == (
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
        "{dedicated: gpu}. preemption: 0/3 nodes are available: 1 No preemption victims "
        "found for incoming pod, 2 Preemption is not helpful for scheduling.."
    )


def test_too_many_pods_and_insufficient_memory_are_both_reasons() -> None:
    cache = cache_of(node("a", memory="1Gi", pods="1"), pods=(pod("x", node_name="a"),))
    _, message = decide(cache, pod("p", memory="1Gi"))
    assert message.startswith(
        "0/1 nodes are available: 1 Insufficient memory, 1 Too many pods. preemption: "
    )


def test_a_lower_priority_pod_would_be_preempted_so_no_preemption_part() -> None:
    cache = cache_of(node("a", cpu="1"), pods=(pod("low", cpu="1", node_name="a"),))
    _, message = decide(cache, pod("p", cpu="1", priority=10))
    assert message == "0/1 nodes are available: 1 Insufficient cpu."
    cache = cache_of(node("a", cpu="1"), pods=(pod("low", cpu="1", node_name="a"),))
    _, message = decide(cache, pod("p", cpu="2", priority=10))
    assert message == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 Insufficient cpu.."
    )
    _, message = decide(cache, pod("p", cpu="1", priority=10, preemptionPolicy="Never"))
    assert message.endswith("preemption: not eligible due to preemptionPolicy=Never..")


def test_no_nodes() -> None:
    assert decide(SchedulerCache(), pod("p")) == (None, "no nodes available to schedule pods")


def test_unschedulable_node_unless_tolerated() -> None:
    cache = cache_of(node("a", unschedulable=True))
    assert decide(cache, pod("p"))[1].startswith(
        "0/1 nodes are available: 1 node(s) were unschedulable."
    )
    toleration = {"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}
    assert decide(cache, pod("p", tolerations=[toleration]))[0] == "a"


@pytest.mark.parametrize(
    ("toleration", "fits"),
    [
        ({"key": "dedicated", "operator": "Equal", "value": "gpu"}, True),
        ({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}, True),
        ({"key": "dedicated", "value": "cpu"}, False),
        ({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"operator": "Exists"}, True),
    ],
)
def test_tolerations(toleration: dict, fits: bool) -> None:
    cache = cache_of(node("a", taints=[GPU_TAINT]))
    assert (decide(cache, pod("p", tolerations=[toleration]))[0] == "a") is fits


def test_prefer_no_schedule_taints_only_score() -> None:
    soft = {"key": "k", "value": "v", "effect": "PreferNoSchedule"}
    cache = cache_of(node("a", taints=[soft]), node("b"))
    for seed in range(5):
        assert decide(cache, pod("p"), seed)[0] == "b"
    cache = cache_of(node("a", taints=[soft]))
    assert decide(cache, pod("p"))[0] == "a"


def test_node_selector_and_required_affinity() -> None:
    cache = cache_of(node("a", labels={"zone": "z1", "gen": "3"}), node("b", labels={"zone": "z2"}))
    assert decide(cache, pod("p", nodeSelector={"zone": "z2"}))[0] == "b"
    _, message = decide(cache, pod("p", nodeSelector={"zone": "z3"}))
    assert message.startswith(
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
    )

    def required(*expressions: dict) -> dict:
        term = {"matchExpressions": list(expressions)}
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [term]}}}  # fmt: skip

    gt = {"key": "gen", "operator": "Gt", "values": ["2"]}
    assert decide(cache, pod("p", affinity=required(gt)))[0] == "a"
    not_in = {"key": "zone", "operator": "NotIn", "values": ["z1"]}
    assert decide(cache, pod("p", affinity=required(not_in)))[0] == "b"
    absent = {"key": "gen", "operator": "DoesNotExist"}
    assert decide(cache, pod("p", affinity=required(absent)))[0] == "b"
    by_name = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}}}  # fmt: skip
    assert decide(cache, pod("p", affinity=by_name))[0] == "b"


def test_preferred_affinity_scores() -> None:
    cache = cache_of(node("a", labels={"disk": "ssd"}), node("b"))
    preferred = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [
            {"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}  # fmt: skip
    for seed in range(5):
        assert decide(cache, pod("p", affinity=preferred), seed)[0] == "a"


def test_topology_spread_do_not_schedule() -> None:
    zones = {"a": "z1", "b": "z1", "c": "z2"}
    nodes = [node(n, labels={"zone": z}) for n, z in zones.items()]
    web = {"app": "web"}
    placed = (pod("w1", labels=web, node_name="a"), pod("w2", labels=web, node_name="b"))
    cache = cache_of(*nodes, node("d"), pods=placed)
    constraint = {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                  "labelSelector": {"matchLabels": web}}  # fmt: skip
    p = pod("w3", labels=web, topologySpreadConstraints=[constraint])
    for seed in range(5):
        assert decide(cache, p, seed)[0] == "c"
    cache.add_pod(pod("w4", labels=web, node_name="c"))
    cache.add_pod(pod("w5", labels=web, node_name="c"))
    cache.add_pod(pod("w6", labels=web, node_name="c"))
    assert decide(cache, p)[0] in ("a", "b")
    cache = cache_of(*nodes, node("d"), pods=(*placed, pod("w4", labels=web, node_name="c")))
    state = FilterState.of(PodInfo.of(p), cache.node_infos())
    d = cache.node_info("d")
    assert d is not None
    status = run_filters(state, d)
    assert status is not None
    assert status.reasons == ("node(s) didn't match pod topology spread constraints "
                              "(missing required label)",)  # fmt: skip
    # Another namespace's pods do not count.
    other = pod("w3", labels=web, namespace="other", topologySpreadConstraints=[constraint])
    cache = cache_of(*nodes, pods=(*placed, pod("w4", labels=web, node_name="a")))
    a = cache.node_info("a")
    assert a is not None
    assert run_filters(FilterState.of(PodInfo.of(other), cache.node_infos()), a) is None
    assert run_filters(FilterState.of(PodInfo.of(p), cache.node_infos()), a) is not None


def test_assumed_pods_take_capacity_and_forgetting_gives_it_back() -> None:
    cache = cache_of(node("a", cpu="1"))
    first = PodInfo.of(pod("p1", cpu="600m"))
    decision = schedule_pod(first, cache.node_infos(), 0, random.Random(0))
    assert decision.node == "a"
    cache.assume_pod(first, "a")
    second = PodInfo.of(pod("p2", cpu="600m"))
    assert schedule_pod(second, cache.node_infos(), 0, random.Random(0)).node is None
    with pytest.raises(CacheError):
        cache.assume_pod(first, "a")
    cache.forget_pod(first.key)
    assert schedule_pod(second, cache.node_infos(), 0, random.Random(0)).node == "a"


def test_the_informers_bound_pod_confirms_an_assumption() -> None:
    cache = cache_of(node("a", cpu="1"), node("b", cpu="1"))
    info = PodInfo.of(pod("p", cpu="600m"))
    cache.assume_pod(info, "a")
    cache.finish_binding(info.key)
    assert cache.is_assumed(info.key)
    cache.add_pod(pod("p", cpu="600m", node_name="a"))
    assert not cache.is_assumed(info.key)
    a = cache.node_info("a")
    assert a is not None and a.requested.milli_cpu == 600 and len(a.pods) == 1
    with pytest.raises(CacheError):
        cache.forget_pod(info.key)
    cache.remove_pod(pod("p", node_name="a"))
    assert a.requested.milli_cpu == 0 and not a.pods


def test_pods_of_a_deleted_node_stay_counted_until_deleted() -> None:
    cache = cache_of(node("a"), pods=(pod("p", node_name="a"),))
    cache.remove_node(node("a"))
    assert cache.node_infos() == []
    cache.add_node(node("a"))
    a = cache.node_info("a")
    assert a is not None and len(a.pods) == 1


def test_least_allocated_and_balanced_allocation_numbers() -> None:
    # Upstream's own example: 4000m / 10000 memory, pod 3000m / 5000 on an empty node:
    # least = ((4000-3000)*100/4000 + (10000-5000)*100/10000) / 2 = (25 + 50) / 2 = 37.
    n = NodeInfo("a")
    n.set_node(node("a", cpu="4", memory="10000"))
    p = PodInfo.of(pod("p", cpu="3", memory="5000"))
    assert least_allocated(p, n) == 37
    # Balanced: |0.75 - 0.5| / 2 = 0.125 -> int(87.5) = 87.
    assert balanced_allocation(p, n) == 87
    # A pod without requests counts 100m / 200Mi for least-allocated, nothing for balance.
    empty = PodInfo.of(pod("e", cpu=None, memory=None))
    assert (empty.non_zero_cpu, empty.non_zero_memory) == (100, 200 * 1024 * 1024)
    assert empty.requests.milli_cpu == 0


def test_select_host_breaks_ties_by_reservoir_sampling() -> None:
    names = ["a", "b", "c", "d"]
    assert select_host(names, [1, 5, 3, 5], random.Random(1)) in ("b", "d")
    picks = {select_host(names, [5, 5, 5, 5], random.Random(seed)) for seed in range(40)}
    assert picks == set(names)
    rng1, rng2 = random.Random(7), random.Random(7)
    assert [select_host(names, [5] * 4, rng1) for _ in range(10)] == [
        select_host(names, [5] * 4, rng2) for _ in range(10)
    ]


def test_nodes_to_find_and_the_round_robin_start() -> None:
    assert num_feasible_nodes_to_find(50) == 50
    assert num_feasible_nodes_to_find(1000) == 420
    assert num_feasible_nodes_to_find(5000) == 500
    assert num_feasible_nodes_to_find(100_000) == 5000
    assert num_feasible_nodes_to_find(1000, percentage=100) == 1000
    cache = cache_of(*(node(f"n{i:03}") for i in range(200)))
    decision = schedule_pod(PodInfo.of(pod("p")), cache.node_infos(), 150, random.Random(0))
    assert decision.evaluated_nodes == num_feasible_nodes_to_find(200) == 100
    assert decision.next_start_index == 50


def test_scores_prefer_the_emptier_node() -> None:
    cache = cache_of(node("a"), node("b"), pods=(pod("x", cpu="2", memory="16Gi", node_name="a"),))
    infos = cache.node_infos()
    scores = score_nodes(PodInfo.of(pod("p")), infos)
    assert scores[1] > scores[0]
    assert decide(cache, pod("p"))[0] == "b"
