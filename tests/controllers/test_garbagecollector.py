"""The garbage collector: its decisions as functions, and background, foreground and orphan
deletion against a real API server."""

from __future__ import annotations

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.controllers.garbagecollector import (
    GarbageCollector,
    delete_decision,
    judge_reference,
    monitored_resources,
)
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.resources import CONFIG_MAPS, resource
from raftkube.kubeclient import KubeClient
from tests.helpers.api_server import APIHarness
from tests.helpers.controllers import configmap, get_or_none
from tests.helpers.polling import eventually

Obj = dict
SECRETS = resource("", "v1", "secrets")


def ref(owner: Obj, block: bool = True) -> Obj:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "blockOwnerDeletion": block}  # fmt: skip


async def make(client: KubeClient, name: str, *refs: Obj, labels: Obj | None = None) -> Obj:
    body = configmap(name)
    if refs:
        body["metadata"]["ownerReferences"] = list(refs)
    if labels:
        body["metadata"]["labels"] = labels
    created: Obj = await client.create(CONFIG_MAPS, body)
    created.setdefault("kind", "ConfigMap")
    created.setdefault("apiVersion", "v1")
    return created


def test_monitors_stored_watchable_resources_but_events() -> None:
    names = {r.qualified for r in monitored_resources()}
    assert {"pods", "configmaps", "replicasets.apps", "namespaces", "nodes"} <= names
    assert "events" not in names and "bindings" not in names


def test_decisions() -> None:
    owner = {"metadata": {"uid": "o"}}
    deleting = {"metadata": {"uid": "o", "deletionTimestamp": "x",
                             "finalizers": ["foregroundDeletion"]}}  # fmt: skip
    assert judge_reference({"uid": "o"}, None) == "dangling"
    assert judge_reference({"uid": "o"}, {"metadata": {"uid": "other"}}) == "dangling"
    assert judge_reference({"uid": "o"}, owner) == "solid"
    assert judge_reference({"uid": "o", "blockOwnerDeletion": True}, deleting) == "waiting"
    assert judge_reference({"uid": "o"}, deleting) == "solid"
    plain: Obj = {"metadata": {}}
    assert delete_decision(plain, {}, False).action == "none"
    assert delete_decision(plain, {"a": "solid"}, False).action == "none"
    partly = delete_decision(plain, {"a": "solid", "b": "dangling", "c": "waiting"}, False)
    assert partly.action == "remove-references" and set(partly.remove) == {"b", "c"}
    assert delete_decision(plain, {"a": "dangling"}, True).policy == "Background"
    assert delete_decision(plain, {"a": "waiting"}, True).policy == "Foreground"
    orphaning = {"metadata": {"finalizers": ["orphan"]}}
    assert delete_decision(orphaning, {"a": "dangling"}, False).policy == "Orphan"


async def _run(api: APIHarness, nursery: trio.Nursery) -> GarbageCollector:
    clock = TrioClock()
    factory = SharedInformerFactory(api.admin, clock=clock)
    collector = GarbageCollector(api.admin, factory, clock)
    factory.start(nursery)
    nursery.start_soon(collector.run)
    return collector


@pytest.mark.trio
async def test_background_deletion_by_uid_never_by_labels(api: APIHarness) -> None:
    client = api.admin
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await _run(api, nursery)
            owner = await make(client, "owner", labels={"app": "x"})
            keeper = await make(client, "keeper")
            secret = await client.create(SECRETS, {"metadata": {"name": "s"}, "type": "Opaque"},
                                         namespace="default")  # fmt: skip
            secret.setdefault("kind", "Secret")
            secret.setdefault("apiVersion", "v1")
            await make(client, "only-child", ref(owner))
            await make(client, "two-parents", ref(owner), ref(keeper))
            await make(client, "of-a-secret", ref(secret))
            await make(client, "look-alike", labels={"app": "x"})
            impostor = {**ref(keeper), "uid": "not-keepers-uid"}
            await make(client, "wrong-uid", impostor)

            async def absent(name: str) -> bool:
                return await get_or_none(client, CONFIG_MAPS, name, "default") is None

            await eventually(lambda: absent("wrong-uid"), "a reference to a namesake collected")
            await client.delete(CONFIG_MAPS, "owner", namespace="default")
            await eventually(lambda: absent("only-child"), "the only child collected")

            async def one_parent_left() -> bool:
                got = await get_or_none(client, CONFIG_MAPS, "two-parents", "default")
                refs = (got or {}).get("metadata", {}).get("ownerReferences") or []
                return [r["name"] for r in refs] == ["keeper"]

            await eventually(one_parent_left, "the dangling reference removed")
            await client.delete(SECRETS, "s", namespace="default")
            await eventually(lambda: absent("of-a-secret"), "a child of another kind collected")
            assert await get_or_none(client, CONFIG_MAPS, "look-alike", "default") is not None
            assert await get_or_none(client, CONFIG_MAPS, "two-parents", "default") is not None
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_foreground_deletion_waits_for_blocking_dependents(api: APIHarness) -> None:
    client = api.admin
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await _run(api, nursery)
            top = await make(client, "top")
            middle = await make(client, "middle", ref(top))
            await make(client, "bottom", ref(middle))
            await make(client, "loose", ref(top, block=False))
            options = {"kind": "DeleteOptions", "apiVersion": "v1",
                       "propagationPolicy": "Foreground"}  # fmt: skip
            marked = await client.delete(CONFIG_MAPS, "top", namespace="default", options=options)
            assert "foregroundDeletion" in marked["metadata"]["finalizers"]
            # One list per look: whatever a look finds gone, what blocked it is gone too.
            gone: set[str] = set()
            while len(gone) < 4:
                listed = await client.list(CONFIG_MAPS, namespace="default")
                present = {c["metadata"]["name"] for c in listed["items"]}
                gone = {"top", "middle", "bottom", "loose"} - present
                if "middle" in gone:
                    assert "bottom" in gone
                if "top" in gone:
                    assert {"middle", "bottom"} <= gone
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_orphan_deletion_keeps_dependents_without_the_reference(api: APIHarness) -> None:
    client = api.admin
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await _run(api, nursery)
            owner = await make(client, "parent")
            await make(client, "kid-1", ref(owner))
            await make(client, "kid-2", ref(owner), ref(await make(client, "other")))
            options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"}
            await client.delete(CONFIG_MAPS, "parent", namespace="default", options=options)

            async def parent_gone() -> bool:
                return await get_or_none(client, CONFIG_MAPS, "parent", "default") is None

            await eventually(parent_gone, "the orphaning owner deleted")
            kid1 = await client.get(CONFIG_MAPS, "kid-1", namespace="default")
            kid2 = await client.get(CONFIG_MAPS, "kid-2", namespace="default")
            assert not kid1["metadata"].get("ownerReferences")
            assert [r["name"] for r in kid2["metadata"]["ownerReferences"]] == ["other"]
            nursery.cancel_scope.cancel()
