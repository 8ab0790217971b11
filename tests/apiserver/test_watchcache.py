"""The watch cache against a real one-member store in this process: fan-out over one store
watch, watches from a resourceVersion, selector transitions, slow watchers, bookmarks, and
recovery when the store watch breaks (member restart) or its revision is compacted."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from raftkube.apiserver.errors import APIError
from raftkube.apiserver.handlers.strategy import field_fn
from raftkube.apiserver.resources import lookup
from raftkube.apiserver.storage import ObjectStore
from raftkube.apiserver.watchcache import CacheWatcher, WatchCache
from raftkube.client import Client
from raftkube.server.member import MemberConfig
from raftkube.server.wiring import open_member

PODS = lookup("", "v1", "pods")
assert PODS is not None
CONFIG = MemberConfig(member_id=0, servers=1, cluster_id="t")


def pod(name: str, ns: str = "default", **labels: str) -> dict[str, Any]:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels}}


def rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


@asynccontextmanager
async def running(tmp_path: Path, **kwargs: Any) -> AsyncIterator[tuple[ObjectStore, WatchCache]]:
    async with (
        open_member(CONFIG, tmp_path / "m0") as member,
        Client([member.client_endpoint]) as client,
        trio.open_nursery() as nursery,
    ):
        cache = WatchCache(client, PODS, **kwargs)
        nursery.start_soon(cache.run)
        await cache.wait_ready()
        yield ObjectStore(client), cache
        nursery.cancel_scope.cancel()


async def take(watcher: CacheWatcher, n: int) -> list[tuple[str, str, int]]:
    """The next ``n`` events as (type, name, resourceVersion)."""
    out = []
    for _ in range(n):
        kind, obj = await anext(watcher)
        out.append((kind, obj["metadata"].get("name", ""), rv(obj)))
    return out


async def ended(watcher: CacheWatcher) -> bool:
    with pytest.raises(StopAsyncIteration):
        await anext(watcher)
    return True


@pytest.mark.trio
async def test_many_watchers_share_one_store_watch(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running(tmp_path) as (store, cache):
            first = await store.create(PODS, pod("a"))
            await cache.wait_until_fresh(rv(first))
            watchers = [cache.watch("default", resource_version="0") for _ in range(50)]
            other_ns = cache.watch("other")
            b = await store.create(PODS, pod("b"))
            c = await store.create(PODS, pod("c", ns="other"))
            gone = await store.delete(PODS, "default", "a")
            for w in watchers:
                assert await take(w, 3) == [
                    ("ADDED", "a", rv(first)),
                    ("ADDED", "b", rv(b)),
                    ("DELETED", "a", rv(gone)),
                ]
            assert await take(other_ns, 1) == [("ADDED", "c", rv(c))]
            assert cache.store_watches == 1 and cache.relists == 1

            # resourceVersion=0 reads come from the snapshot.
            await cache.wait_until_fresh(rv(gone))
            assert cache.get("default", "a") is None
            assert cache.get("default", "b") == b
            listed = cache.list("", resource_version="0")
            assert [p["metadata"]["name"] for p in listed.items] == ["b", "c"]
            assert listed.resource_version == rv(gone)
            with pytest.raises(APIError) as err:
                cache.list("", resource_version=str(rv(gone) + 1))
            assert err.value.code == 504


@pytest.mark.trio
async def test_watch_from_a_resource_version(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running(tmp_path, capacity=4) as (store, cache):
            made = [await store.create(PODS, pod(f"p{i}")) for i in range(3)]
            changed = await store.update(PODS, {**made[0], "spec": {}}, expected_rv=rv(made[0]))
            await cache.wait_until_fresh(rv(changed))
            w = cache.watch("default", resource_version=str(rv(made[0])))
            assert await take(w, 3) == [
                ("ADDED", "p1", rv(made[1])),
                ("ADDED", "p2", rv(made[2])),
                ("MODIFIED", "p0", rv(changed)),
            ]
            # A watch from the latest revision sees only what comes next.
            latest = cache.watch("default", resource_version=str(rv(changed)))
            last = await store.create(PODS, pod("p3"))
            assert await take(latest, 1) == [("ADDED", "p3", rv(last))]
            assert await take(w, 1) == [("ADDED", "p3", rv(last))]
            # The ring holds 4 events: older starting points are 410, as upstream's cacher.
            p4 = await store.create(PODS, pod("p4"))
            await cache.wait_until_fresh(rv(p4))
            # From a revision the cache has not reached: only what comes after it.
            future = cache.watch("default", resource_version=str(rv(p4) + 1))
            await store.create(PODS, pod("p5"))
            p6 = await store.create(PODS, pod("p6"))
            assert await take(future, 1) == [("ADDED", "p6", rv(p6))]
            too_old = cache.watch("default", resource_version=str(rv(made[0])))
            with pytest.raises(APIError) as err:
                await anext(too_old)
            assert err.value.code == 410
            # The ring holds p3..p6; the newest event it let go is p0's update, 2 before p4.
            oldest = rv(p4) - 2
            assert err.value.message == f"too old resource version: {rv(made[0])} ({oldest})"


@pytest.mark.trio
async def test_objects_moving_through_a_selector(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running(tmp_path) as (store, cache):
            web = cache.watch("", label_selector="app=web")
            named = cache.watch("default", name="x")
            x = await store.create(PODS, pod("x", app="db"))
            x2 = await store.update(PODS, pod("x", app="web"), expected_rv=rv(x))
            x3 = await store.update(PODS, {**x2, "spec": {"a": 1}}, expected_rv=rv(x2))
            x4 = await store.update(PODS, pod("x", app="db"), expected_rv=rv(x3))
            await store.create(PODS, pod("y", app="web"))
            x5 = await store.delete(PODS, "default", "x")
            z = await store.create(PODS, pod("z", app="web"))
            assert await take(web, 5) == [
                ("ADDED", "x", rv(x2)),
                ("MODIFIED", "x", rv(x3)),
                ("DELETED", "x", rv(x4)),  # it left the selector: its last matching state
                ("ADDED", "y", rv(x4) + 1),
                ("ADDED", "z", rv(z)),  # x's delete was not this watcher's business
            ]
            assert await take(named, 5) == [
                ("ADDED", "x", rv(x)),
                ("MODIFIED", "x", rv(x2)),
                ("MODIFIED", "x", rv(x3)),
                ("MODIFIED", "x", rv(x4)),
                ("DELETED", "x", rv(x5)),
            ]


@pytest.mark.trio
async def test_watchers_pinned_to_a_node_see_only_that_nodes_pods(tmp_path: Path) -> None:
    """A kubelet's watch (``spec.nodeName=NAME``) is indexed by its node: it still sees a pod
    come (bound to it), change, and leave (bound elsewhere, deleted), and nothing of others."""
    fields = field_fn(PODS)
    with trio.fail_after(30):
        async with running(tmp_path) as (store, cache):
            n1 = cache.watch("", field_selector="spec.nodeName=n1", field_fn=fields)
            n2 = cache.watch("", field_selector="spec.nodeName=n2", field_fn=fields)
            unbound = cache.watch("", field_selector="spec.nodeName!=n1", field_fn=fields)
            everything = cache.watch("", field_fn=fields)
            for w in (n1, n2, unbound, everything):
                w.register()
            assert sorted(cache._indexed) == ["n1", "n2"]
            a = await store.create(PODS, pod("a"))
            a2 = await store.update(PODS, {**a, "spec": {"nodeName": "n1"}}, expected_rv=rv(a))
            a3 = await store.update(
                PODS, {**a2, "spec": {"nodeName": "n1", "x": 1}}, expected_rv=rv(a2)
            )
            a4 = await store.update(PODS, {**a3, "spec": {"nodeName": "n3"}}, expected_rv=rv(a3))
            b = await store.create(PODS, {**pod("b"), "spec": {"nodeName": "n2"}})
            b2 = await store.delete(PODS, "default", "b")
            assert await take(n1, 3) == [
                ("ADDED", "a", rv(a2)),
                ("MODIFIED", "a", rv(a3)),
                ("DELETED", "a", rv(a4)),  # bound elsewhere: it left the selector
            ]
            assert await take(n2, 2) == [("ADDED", "b", rv(b)), ("DELETED", "b", rv(b2))]
            assert await take(unbound, 4) == [
                ("ADDED", "a", rv(a)),
                ("DELETED", "a", rv(a2)),
                ("ADDED", "a", rv(a4)),
                ("ADDED", "b", rv(b)),
            ]
            assert len(await take(everything, 6)) == 6
            n1.end()
            assert sorted(cache._indexed) == ["n2"]


@pytest.mark.trio
async def test_a_slow_watcher_is_cut_off_without_holding_up_others(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with running(tmp_path, buffer=2) as (store, cache):
            slow = cache.watch("default")
            fast = cache.watch("default")
            seen: list[tuple[str, str, int]] = []

            async def keep_up() -> None:
                seen.extend(await take(fast, 6))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(keep_up)
                for i in range(6):
                    await store.create(PODS, pod(f"p{i}"))
            assert [name for _, name, _ in seen] == [f"p{i}" for i in range(6)]
            assert slow.overflowed
            assert [name for _, name, _ in await take(slow, 2)] == ["p0", "p1"]
            assert await ended(slow)


class StepClock:
    """A clock the test moves by hand, so bookmark ticks need no real waiting."""

    def __init__(self) -> None:
        self.t = 0.0
        self._moved = trio.Event()

    def now(self) -> float:
        return self.t

    async def sleep_until(self, deadline: float) -> None:
        while self.t < deadline:
            await self._moved.wait()

    def cancel_scope_at(self, deadline: float) -> trio.CancelScope:
        return trio.CancelScope()  # the tests using it never time out

    def advance(self, seconds: float) -> None:
        self.t += seconds
        self._moved.set()
        self._moved = trio.Event()


@pytest.mark.trio
async def test_bookmarks_on_the_callers_clock(tmp_path: Path) -> None:
    clock = StepClock()
    with trio.fail_after(30):
        async with running(tmp_path, clock=clock, bookmark_interval=5) as (store, cache):
            made = await store.create(PODS, pod("a"))
            await cache.wait_until_fresh(rv(made))
            w = cache.watch("default", allow_bookmarks=True)
            plain = cache.watch("default")
            assert await take(w, 1) == [("ADDED", "a", rv(made))]
            await trio.testing.wait_all_tasks_blocked()
            clock.advance(5)
            kind, obj = await anext(w)
            assert kind == "BOOKMARK"
            assert obj == {
                "kind": "Pod",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": str(rv(made))},
            }
            assert await take(plain, 1) == [("ADDED", "a", rv(made))]
            listing = cache.watch(
                "default", allow_bookmarks=True, send_initial_events=True, resource_version=""
            )
            assert await take(listing, 1) == [("ADDED", "a", rv(made))]
            kind, obj = await anext(listing)
            assert kind == "BOOKMARK"
            assert obj["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_a_cache_that_has_not_listed_answers_429() -> None:
    cache = WatchCache(Client(["127.0.0.1:1"]), PODS)
    for read in (lambda: cache.get("default", "a"), lambda: cache.list("")):
        with pytest.raises(APIError) as err:
            read()
        assert err.value.code == 429 and err.value.message == "storage is (re)initializing"
        assert err.value.headers == (("Retry-After", "1"),)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def member(data: Path, port: int) -> None:
    async with open_member(CONFIG, data, client_port=port):
        await trio.sleep_forever()


@pytest.mark.trio
async def test_resumes_after_restart_and_relists_after_compaction(tmp_path: Path) -> None:
    data, port = tmp_path / "m0", free_port()
    with trio.fail_after(60):
        async with (
            Client([f"127.0.0.1:{port}"], attempts=100, retry_delay=0.05) as client,
            trio.open_nursery() as nursery,
        ):
            cache = WatchCache(client, PODS, retry_delay=0.05)
            store = ObjectStore(client)
            async with trio.open_nursery() as members:
                members.start_soon(member, data, port)
                nursery.start_soon(cache.run)
                await cache.wait_ready()
                w = cache.watch("default")
                a = await store.create(PODS, pod("a"))
                assert await take(w, 1) == [("ADDED", "a", rv(a))]
                members.cancel_scope.cancel()

            # Restarted: the cache watches again from where it was and loses nothing.
            async with trio.open_nursery() as members:
                members.start_soon(member, data, port)
                b = await store.create(PODS, pod("b"))
                assert await take(w, 1) == [("ADDED", "b", rv(b))]
                assert cache.relists == 1 and cache.store_watches >= 2
                members.cancel_scope.cancel()

            # Meanwhile (the member listening elsewhere) writes happen and history is
            # compacted: the cache cannot resume, so it lists again and ends its watchers.
            other = free_port()
            async with (
                trio.open_nursery() as members,
                Client([f"127.0.0.1:{other}"], attempts=100, retry_delay=0.05) as elsewhere,
            ):
                members.start_soon(member, data, other)
                await ObjectStore(elsewhere).create(PODS, pod("c"))
                d = await ObjectStore(elsewhere).create(PODS, pod("d"))
                await elsewhere.compact(rv(d))
                members.cancel_scope.cancel()
            async with trio.open_nursery() as members:
                members.start_soon(member, data, port)
                assert await ended(w)
                await cache.wait_until_fresh(rv(d), timeout=30)
                assert cache.relists == 2
                assert [p["metadata"]["name"] for p in cache.list("").items] == list("abcd")
                again = cache.watch("default", resource_version=str(rv(b)))
                with pytest.raises(APIError) as err:
                    await anext(again)
                assert err.value.code == 410
                members.cancel_scope.cancel()
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_list_that_times_out_is_tried_again(tmp_path: Path) -> None:
    """A store read that times out (no leader, a partition: the client raises TooSlowError)
    leaves the cache listing again, not the server dead."""
    with trio.fail_after(20):
        async with (
            open_member(CONFIG, tmp_path / "m0") as m,
            Client([m.client_endpoint]) as client,
            trio.open_nursery() as nursery,
        ):
            cache = WatchCache(client, PODS, retry_delay=0.05)
            real_list = cache.store.list
            failures = [trio.TooSlowError()]

            async def list_(*args: Any, **kwargs: Any) -> Any:
                if failures:
                    raise failures.pop()
                return await real_list(*args, **kwargs)

            cache.store.list = list_  # type: ignore[method-assign]
            nursery.start_soon(cache.run)
            await cache.wait_ready()
            assert not failures and cache.relists == 1
            nursery.cancel_scope.cancel()
