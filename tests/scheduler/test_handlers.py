"""The scheduler's informer handlers on their own (no server): a pod that is assumed, whose
binding is in flight or done but not yet seen, is never queued again by a stale or repeated
unassigned version of it (found by the benchmark: a relist after a 410 re-queued bound pods)."""

from __future__ import annotations

import random

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.kubeclient import KubeClient
from raftkube.scheduler.nodeinfo import PodInfo
from raftkube.scheduler.scheduler import Scheduler
from tests.helpers.scheduler_objects import node, pod


def versioned(obj: dict, version: str) -> dict:
    return {**obj, "metadata": {**obj["metadata"], "resourceVersion": version}}


@pytest.mark.trio
async def test_assumed_pods_are_not_queued_again() -> None:
    scheduler = Scheduler(KubeClient("https://127.0.0.1:1"), TrioClock(), rng=random.Random(0))
    scheduler._node_added(node("n1"))
    p1 = versioned(pod("p"), "1")
    scheduler._pod_added(p1)
    queued = scheduler.queue.try_pop()
    assert queued is not None
    scheduler.cache.assume_pod(PodInfo.of(p1), "n1")
    scheduler.cache.finish_binding(queued.key)
    scheduler.queue.done(queued.key)
    # A status write (new resourceVersion, still unassigned in this version) and a relist
    # reporting the same version again: neither queues the pod.
    scheduler._pod_updated(p1, versioned(pod("p"), "2"))
    scheduler._pod_updated(p1, p1)
    scheduler._pod_added(p1)
    assert scheduler.queue.where("default/p") is None
    # Its bound version confirms the assumption; it stays out of the queue.
    scheduler._pod_updated(p1, versioned(pod("p", node_name="n1"), "3"))
    assert not scheduler.cache.is_assumed("default/p")
    assert scheduler.cache.pod_node("default/p") == "n1"
    assert scheduler.queue.where("default/p") is None


@pytest.mark.trio
async def test_a_pod_popped_while_assumed_is_skipped() -> None:
    scheduler = Scheduler(KubeClient("https://127.0.0.1:1"), TrioClock(), rng=random.Random(0))
    scheduler._node_added(node("n1"))
    p1 = versioned(pod("p"), "1")
    scheduler.pod_informer.indexer.add(p1)
    scheduler._pod_added(p1)
    queued = scheduler.queue.try_pop()
    assert queued is not None
    scheduler.cache.assume_pod(PodInfo.of(p1), "n1")
    async with trio.open_nursery() as nursery:
        scheduler.schedule_one(queued, nursery)
    n1 = scheduler.cache.node_info("n1")
    assert n1 is not None and len(n1.pods) == 1
    assert scheduler.queue.where("default/p") is None
