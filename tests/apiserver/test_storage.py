"""ObjectStore against a real one-member store in this process: keys and values as upstream
keeps them on etcd, optimistic concurrency, and list's resourceVersion and paging semantics."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from raftkube.apiserver.errors import APIError
from raftkube.apiserver.listing import (
    EXPIRED,
    ExpiredContinueError,
    decode_continue,
    encode_continue,
)
from raftkube.apiserver.resources import lookup
from raftkube.apiserver.storage import ObjectStore
from raftkube.client import Client
from raftkube.server.member import MemberConfig
from raftkube.server.wiring import open_member

PODS = lookup("", "v1", "pods")
NODES = lookup("", "v1", "nodes")
assert PODS is not None and NODES is not None


def pod(name: str, ns: str = "default", **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"n": 0}}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    config = MemberConfig(member_id=0, servers=1, cluster_id="t")
    async with (
        open_member(config, tmp_path / "m0") as member,
        Client([member.client_endpoint]) as c,
    ):
        yield c


async def expect_error(code: int, coro: Any) -> APIError:
    with pytest.raises(APIError) as info:
        await coro
    assert info.value.code == code, info.value
    return info.value


def rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


@pytest.mark.trio
async def test_keys_values_and_crud(client: Client) -> None:
    store = ObjectStore(client)
    with trio.fail_after(20):
        made = await store.create(PODS, pod("a"))
        node = await store.create(NODES, {"kind": "Node", "metadata": {"name": "n1"}})
        raw = await client.get(b"/registry/pods/default/a")
        assert raw.kvs[0].mod_revision == rv(made)
        stored = json.loads(raw.kvs[0].value)
        assert "resourceVersion" not in stored["metadata"]
        assert b" " not in raw.kvs[0].value
        assert (await client.get(b"/registry/nodes/n1")).kvs[0].mod_revision == rv(node)
        # A cluster-scoped resource ignores the namespace of a list, as upstream.
        assert (await store.list(NODES, "default")).items == [node]

        assert await store.get(PODS, "default", "a") == made
        assert await store.get(PODS, "default", "a", resource_version="0") == made
        assert await store.current_revision() == rv(node)
        err = await expect_error(504, store.get(PODS, "default", "a", resource_version="999"))
        assert err.details is not None and err.details["retryAfterSeconds"] == 1
        assert err.details["causes"][0]["reason"] == "ResourceVersionTooLarge"
        err = await expect_error(409, store.create(PODS, pod("a")))
        assert err.reason == "AlreadyExists" and err.message == 'pods "a" already exists'
        err = await expect_error(404, store.get(PODS, "default", "b"))
        assert err.message == 'pods "b" not found'

        changed = {**made, "spec": {"n": 1}}
        updated = await store.update(PODS, changed, expected_rv=rv(made))
        assert rv(updated) > rv(made) and updated["spec"] == {"n": 1}
        # The same (now stale) resourceVersion loses: upstream's optimistic lock message.
        err = await expect_error(409, store.update(PODS, changed, expected_rv=rv(made)))
        assert err.reason == "Conflict" and "the object has been modified" in err.message
        await expect_error(404, store.update(PODS, pod("b"), expected_rv=rv(made)))
        await expect_error(404, store.update(PODS, pod("b"), expected_rv=None))

        def other_uid(current: dict[str, Any]) -> None:
            raise APIError(409, "Conflict", f"uid {current['metadata'].get('uid')} differs")

        await expect_error(409, store.delete(PODS, "default", "a", precondition=other_uid))
        err = await expect_error(409, store.delete(PODS, "default", "a", expected_rv=rv(made)))
        assert "Precondition failed: ResourceVersion in precondition" in err.message
        last = await store.delete(PODS, "default", "a", expected_rv=rv(updated))
        assert last["spec"] == {"n": 1} and rv(last) > rv(updated)
        assert rv(last) == (await client.get(b"x")).header.revision  # the delete's revision
        await expect_error(404, store.delete(PODS, "default", "a"))


@pytest.mark.trio
async def test_guaranteed_update_retries_and_skips_no_ops(client: Client) -> None:
    store = ObjectStore(client)
    with trio.fail_after(20):
        made = await store.create(PODS, pod("a"))
        calls = 0

        async def bump(current: dict[str, Any]) -> dict[str, Any]:
            nonlocal calls
            calls += 1
            if calls == 1:  # another writer gets in between the read and the write
                await store.update(PODS, {**current, "spec": {"n": 10}}, expected_rv=rv(made))
            current["spec"]["n"] += 1
            return current

        result = await store.guaranteed_update(PODS, "default", "a", bump)
        assert calls == 2 and result["spec"] == {"n": 11}
        same = await store.guaranteed_update(PODS, "default", "a", lambda cur: cur)
        assert same == result
        assert await store.guaranteed_update(PODS, "default", "a", lambda cur: None) == result
        assert (await client.get(b"x")).header.revision == rv(result)  # nothing written


@pytest.mark.trio
async def test_list_resource_version_semantics(client: Client) -> None:
    store = ObjectStore(client)
    with trio.fail_after(20):
        a = await store.create(PODS, pod("a"))
        await store.create(PODS, pod("b", ns="other"))
        await store.create(PODS, pod("c"))
        latest = await store.list(PODS, "")
        # Key order: namespace, then name.
        assert [p["metadata"]["name"] for p in latest.items] == ["a", "c", "b"]
        assert latest.resource_version == (await client.get(b"x")).header.revision

        old = await store.list(PODS, "", resource_version=str(rv(a)), match="Exact")
        assert old.resource_version == rv(a) and [p["metadata"]["name"] for p in old.items] == ["a"]
        # A legacy resourceVersion with a limit is exact too.
        legacy = await store.list(PODS, "default", resource_version=str(rv(a)), limit=5)
        assert [p["metadata"]["name"] for p in legacy.items] == ["a"]
        newer = await store.list(PODS, "default", resource_version=str(rv(a)), match="NotOlderThan")
        assert newer.resource_version == latest.resource_version and len(newer.items) == 2
        assert len((await store.list(PODS, "default", resource_version="0")).items) == 2

        future = str(latest.resource_version + 100)
        err = await expect_error(504, store.list(PODS, "", resource_version=future))
        assert err.message.startswith("Timeout: Too large resource version")
        await expect_error(504, store.list(PODS, "", resource_version=future, match="Exact"))
        await expect_error(422, store.list(PODS, "", match="Exact"))
        await expect_error(422, store.list(PODS, "", resource_version="0", match="Exact"))
        await expect_error(400, store.list(PODS, "", resource_version="x1"))

        await client.compact(latest.resource_version)
        err = await expect_error(
            410, store.list(PODS, "", resource_version=str(rv(a)), match="Exact")
        )
        assert err.reason == "Expired" and err.message == EXPIRED


@pytest.mark.trio
async def test_pages_are_read_at_the_first_pages_revision(client: Client) -> None:
    store = ObjectStore(client)
    with trio.fail_after(30):
        for i in range(7):
            await store.create(PODS, pod(f"p{i}"))
        first = await store.list(PODS, "default", limit=3)
        assert first.continue_token and first.remaining_item_count == 4
        # Writes between pages are not seen: every page is read at the first page's revision.
        await store.delete(PODS, "default", "p4")
        await store.create(PODS, pod("p9"))
        names = [p["metadata"]["name"] for p in first.items]
        token = first.continue_token
        while token:
            page = await store.list(PODS, "default", limit=3, continue_token=token)
            assert page.resource_version == first.resource_version
            names += [p["metadata"]["name"] for p in page.items]
            token = page.continue_token
        assert names == [f"p{i}" for i in range(7)]
        assert page.remaining_item_count is None

        await expect_error(
            400,
            store.list(PODS, "default", resource_version="5", continue_token=first.continue_token),
        )
        await expect_error(400, store.list(PODS, "default", continue_token="!!notbase64"))

        await client.compact((await client.get(b"x")).header.revision)
        err = await expect_error(
            410, store.list(PODS, "default", limit=3, continue_token=first.continue_token)
        )
        assert isinstance(err, ExpiredContinueError)
        resumed = await store.list(PODS, "default", limit=10, continue_token=err.continue_token)
        assert [p["metadata"]["name"] for p in resumed.items] == ["p3", "p5", "p6", "p9"]
        assert err.status()["metadata"]["continue"] == err.continue_token


@pytest.mark.trio
async def test_selectors_filter_and_fill_pages(client: Client) -> None:
    store = ObjectStore(client)
    with trio.fail_after(30):
        for i in range(10):
            await store.create(PODS, pod(f"p{i}", app="web" if i % 3 == 0 else "db"))
        web = await store.list(PODS, "default", label_selector="app=web", limit=2)
        assert [p["metadata"]["name"] for p in web.items] == ["p0", "p3"]
        assert web.continue_token and web.remaining_item_count is None
        rest = await store.list(
            PODS, "default", label_selector="app=web", limit=2, continue_token=web.continue_token
        )
        assert [p["metadata"]["name"] for p in rest.items] == ["p6", "p9"]
        named = await store.list(PODS, "", field_selector="metadata.name=p4")
        assert [p["metadata"]["name"] for p in named.items] == ["p4"]
        assert len((await store.list(PODS, "", field_selector="metadata.name!=p4")).items) == 9
        await expect_error(400, store.list(PODS, "", label_selector="app in web"))


def test_continue_token_format() -> None:
    token = encode_continue(b"/registry/pods/default/p3\x00", b"/registry/pods/default/", 42)
    raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert raw == {"v": "meta.k8s.io/v1", "rv": 42, "start": "p3\x00"}
    assert decode_continue(token, b"/registry/pods/default/") == (
        b"/registry/pods/default/p3\x00",
        42,
    )
    climbing = base64.urlsafe_b64encode(
        json.dumps({"v": "meta.k8s.io/v1", "rv": 1, "start": "../secrets/x"}).encode()
    ).decode()
    with pytest.raises(APIError, match="continue key is not valid"):
        decode_continue(climbing, b"/registry/pods/default/")
