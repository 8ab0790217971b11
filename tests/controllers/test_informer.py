"""Shared informers, their caches, indexes and listers, against a real API server."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from raftkube.clock import TrioClock
from raftkube.controllers.informer import (
    Lister,
    ResourceEventHandlerFuncs,
    SharedIndexInformer,
    SharedInformerFactory,
)
from raftkube.controllers.resources import CONFIG_MAPS, NAMESPACES
from raftkube.controllers.store import (
    NAMESPACE_INDEX,
    DeletedFinalStateUnknown,
    Indexer,
    deletion_handling_meta_namespace_key,
    meta_namespace_key,
    split_meta_namespace_key,
)
from tests.helpers.api_server import APIHarness
from tests.helpers.controllers import UnusedListWatch, configmap
from tests.helpers.polling import wait_for

Obj = dict[str, Any]


def test_keys() -> None:
    assert meta_namespace_key({"metadata": {"name": "a", "namespace": "ns"}}) == "ns/a"
    assert meta_namespace_key({"metadata": {"name": "node1"}}) == "node1"
    assert split_meta_namespace_key("ns/a") == ("ns", "a")
    assert split_meta_namespace_key("node1") == ("", "node1")
    with pytest.raises(ValueError):
        split_meta_namespace_key("a/b/c")
    tomb = DeletedFinalStateUnknown("ns/x", {"metadata": {"name": "x", "namespace": "ns"}})
    assert deletion_handling_meta_namespace_key(tomb) == "ns/x"


def test_indexer_keeps_indexes_through_updates_and_replace() -> None:
    def by_color(obj: Obj) -> list[str]:
        color = (obj.get("data") or {}).get("color")
        return [color] if color else []

    indexer = Indexer({"color": by_color})
    indexer.add({"metadata": {"name": "a", "namespace": "x"}, "data": {"color": "red"}})
    indexer.add({"metadata": {"name": "b", "namespace": "y"}, "data": {"color": "red"}})
    indexer.add_indexers({NAMESPACE_INDEX: lambda o: [o["metadata"]["namespace"]]})
    assert indexer.index_keys("color", "red") == ["x/a", "y/b"]
    indexer.update({"metadata": {"name": "a", "namespace": "x"}, "data": {"color": "blue"}})
    assert indexer.index_keys("color", "red") == ["y/b"]
    assert indexer.index_keys("color", "blue") == ["x/a"]
    assert [o["metadata"]["name"] for o in indexer.by_index(NAMESPACE_INDEX, "y")] == ["b"]
    indexer.delete_key("y/b")
    assert indexer.list_index_func_values("color") == ["blue"]
    indexer.replace([{"metadata": {"name": "c", "namespace": "z"}, "data": {"color": "red"}}])
    assert indexer.list_keys() == ["z/c"]
    assert indexer.index_keys("color", "blue") == []
    with pytest.raises(KeyError):
        indexer.by_index("size", "big")


@pytest.mark.trio
async def test_factory_shares_one_informer_and_notifies_every_handler(api: APIHarness) -> None:
    await api.admin.create(CONFIG_MAPS, configmap("early"))
    factory = SharedInformerFactory(api.admin, clock=TrioClock(), rng=random.Random(4))
    informer = factory.informer_for(CONFIG_MAPS)
    assert factory.informer_for(CONFIG_MAPS) is informer
    first: list[tuple[str, str]] = []
    second: list[str] = []
    informer.add_event_handler(
        ResourceEventHandlerFuncs(
            add_func=lambda o: first.append(("add", meta_namespace_key(o))),
            update_func=lambda old, new: first.append(("update", meta_namespace_key(new))),
            delete_func=lambda o: first.append(("delete", deletion_handling_meta_namespace_key(o))),
        )
    )
    informer.add_event_handler(
        ResourceEventHandlerFuncs(add_func=lambda o: second.append(meta_namespace_key(o)))
    )
    lister = factory.lister(CONFIG_MAPS)
    ns_lister = factory.lister(NAMESPACES)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            factory.start(nursery)
            assert not informer.has_synced()
            await factory.wait_for_cache_sync()
            assert informer.has_synced()
            assert ("add", "default/early") in first and "default/early" in second
            assert lister.get("early", "default") is not None
            assert ns_lister.get("default") is not None
            assert ns_lister.get("kube-system") is not None

            await api.admin.create(NAMESPACES, {"metadata": {"name": "other"}})
            await api.admin.create(CONFIG_MAPS, configmap("x", "other"))
            await wait_for(lambda: lister.get("x", "other") is not None, "x in the cache")
            assert [o["metadata"]["name"] for o in lister.list("other")] == ["x"]
            assert {"early", "x"} <= {o["metadata"]["name"] for o in lister.list()}

            await api.admin.patch(CONFIG_MAPS, "x", {"data": {"k": "y"}}, namespace="other")
            await api.admin.delete(CONFIG_MAPS, "x", namespace="other")
            await wait_for(lambda: ("delete", "other/x") in first, "the delete")
            events = [e for e in first if e[1] == "other/x"]
            assert events == [("add", "other/x"), ("update", "other/x"), ("delete", "other/x")]
            assert lister.get("x", "other") is None

            # A handler added late is told about what is already cached.
            late: list[str] = []
            informer.add_event_handler(
                ResourceEventHandlerFuncs(add_func=lambda o: late.append(meta_namespace_key(o)))
            )
            assert "default/early" in late
            nursery.cancel_scope.cancel()


def test_relist_reports_vanished_objects_as_tombstones() -> None:
    informer = SharedIndexInformer(UnusedListWatch(), clock=TrioClock(), name="configmaps")
    seen: list[tuple[str, Any]] = []
    informer.add_event_handler(
        ResourceEventHandlerFuncs(
            add_func=lambda o: seen.append(("add", meta_namespace_key(o))),
            update_func=lambda old, new: seen.append(("update", new["data"])),
            delete_func=lambda o: seen.append(("delete", o)),
        )
    )
    a = {"metadata": {"name": "a", "namespace": "n"}, "data": {"v": 1}}
    b = {"metadata": {"name": "b", "namespace": "n"}, "data": {"v": 1}}
    informer.replace([a, b], "10")
    assert informer.has_synced()
    a2 = {"metadata": {"name": "a", "namespace": "n"}, "data": {"v": 2}}
    informer.replace([a2], "20")
    assert seen == [
        ("add", "n/a"),
        ("add", "n/b"),
        ("update", {"v": 2}),
        ("delete", DeletedFinalStateUnknown("n/b", b)),
    ]


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), st.sampled_from("abcd"), st.integers(0, 3)),
        st.tuples(st.just("delete"), st.sampled_from("abcd"), st.just(0)),
        st.tuples(
            st.just("replace"),
            st.frozensets(st.tuples(st.sampled_from("abcd"), st.integers(0, 3)), max_size=4),
            st.just(0),
        ),
    ),
    max_size=30,
)


@settings(max_examples=200)
@given(ops=OPS)
def test_handlers_see_exactly_what_the_cache_holds(ops: list[tuple[str, Any, int]]) -> None:
    """Whatever the reflector does (watch events, relists dropping and changing objects), a
    handler that applies every add, update and delete (tombstones included) to its own copy
    ends with exactly the cache's contents, and every update's ``old`` is what it had."""
    informer = SharedIndexInformer(UnusedListWatch(), clock=TrioClock(), name="cms")
    mirror: dict[str, Obj] = {}

    def on_add(obj: Obj) -> None:
        key = meta_namespace_key(obj)
        assert key not in mirror
        mirror[key] = obj

    def on_update(old: Obj, new: Obj) -> None:
        key = meta_namespace_key(new)
        assert mirror.get(key) is old
        mirror[key] = new

    def on_delete(obj: Obj | DeletedFinalStateUnknown) -> None:
        key = deletion_handling_meta_namespace_key(obj)
        assert key in mirror
        del mirror[key]

    informer.add_event_handler(ResourceEventHandlerFuncs(on_add, on_update, on_delete))

    def obj(name: str, version: int) -> Obj:
        return {"metadata": {"name": name, "namespace": "n"}, "data": {"v": version}}

    model: dict[str, Obj] = {}
    for op, arg, version in ops:
        if op == "upsert":
            informer.add(obj(arg, version))
            model[f"n/{arg}"] = obj(arg, version)
        elif op == "delete" and f"n/{arg}" in model:
            informer.delete(model.pop(f"n/{arg}"))
        elif op == "replace":
            items = {name: obj(name, v) for name, v in sorted(arg)}
            informer.replace(list(items.values()), "1")
            model = {f"n/{name}": o for name, o in items.items()}
        assert {k: informer.indexer.get_by_key(k) for k in informer.indexer.list_keys()} == model
        assert mirror == model
        assert Lister(informer.indexer).list("n") == sorted(model.values(), key=meta_namespace_key)
