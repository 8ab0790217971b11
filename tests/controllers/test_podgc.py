"""The pod garbage collector against a real API server: a pod bound to a node that does not
exist is marked Failed and force-deleted once the node has been missing for the quarantine;
a pod on a node that exists is left alone (periods shortened from upstream's 20 s and 40 s)."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.podgc import NODES, PODS, PodGarbageCollector
from raftkube.controllers.resources import SERVICE_ACCOUNTS
from tests.helpers.api_server import APIHarness
from tests.helpers.controllers import get_or_none
from tests.helpers.polling import eventually


def bound_pod(name: str, node: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "sim"}]},
    }


@pytest.mark.trio
async def test_orphaned_pods_are_force_deleted_after_the_quarantine(api: APIHarness) -> None:
    client = api.admin
    clock = TrioClock()
    factory = SharedInformerFactory(client, clock=clock, rng=random.Random(3))
    gc = PodGarbageCollector(client, factory, clock, period=0.1, quarantine=1.0)
    await client.create(NODES, {"metadata": {"name": "n1"}})
    account = {"metadata": {"name": "default"}}  # what pods are admitted with
    await client.create(SERVICE_ACCOUNTS, account, namespace="default")
    await client.create(PODS, bound_pod("kept", "n1"), namespace="default")
    await client.create(PODS, bound_pod("orphan", "gone"), namespace="default")
    statuses: list[str] = []
    original = gc._mark_failed_and_delete

    async def watched(pod: dict[str, Any]) -> None:
        await original(pod)
        statuses.append(pod["metadata"]["name"])

    gc._mark_failed_and_delete = watched  # type: ignore[method-assign]
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            factory.start(nursery)
            nursery.start_soon(gc.run)
            started = clock.now()

            async def orphan_gone() -> bool:
                return await get_or_none(client, PODS, "orphan", "default") is None

            await eventually(orphan_gone, "the orphaned pod deleted")
            assert clock.now() - started >= 1.0  # not before the quarantine
            assert statuses == ["orphan"]
            assert await get_or_none(client, PODS, "kept", "default") is not None
            nursery.cancel_scope.cancel()
