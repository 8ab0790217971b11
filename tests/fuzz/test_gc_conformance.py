"""The garbage collector's request-conformance rules (:mod:`raftkube_fuzz.checks.gc_conformance`)
on hand-made reads, each with a request the spec's collector allows and one it does not; and
the gathering of those reads as a request is sent (:mod:`raftkube_fuzz.cluster.gc_monitor`)."""

from __future__ import annotations

import json
from typing import Any

import attrs

from raftkube_fuzz.checks.gc_conformance import (
    OwnerReads,
    dependent_delete,
    foreground_removal,
    gc_record,
)
from raftkube_fuzz.checks.views import StoreHistory
from raftkube_fuzz.cluster import gc_monitor
from raftkube_fuzz.cluster.judged_loop import Read, read_of
from raftkube_spec.control.records import OwnerRef, Record
from raftkube_spec.kv.types import KeyValue

Obj = dict[str, Any]


def obj(kind: str, name: str, *owners: str, deleting: bool = False,
        finalizers: tuple[str, ...] = (), block: bool = True) -> Obj:  # fmt: skip
    """An object of ``kind`` (uid ``uid-{name}``) naming ReplicaSets ``owners`` as owners."""
    meta: Obj = {
        "name": name, "namespace": "default", "uid": f"uid-{name}",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": o,
                             "uid": f"uid-{o}", "blockOwnerDeletion": block} for o in owners],
        "finalizers": list(finalizers),
    }  # fmt: skip
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"kind": kind, "apiVersion": "v1" if kind == "Pod" else "apps/v1", "metadata": meta}


def rs(name: str, **kw: Any) -> Record:
    return gc_record(obj("ReplicaSet", name, **kw))


def owner(name: str, *states: Record | None) -> OwnerReads:
    return OwnerReads(OwnerRef("ReplicaSet", name, f"uid-{name}", True), states)


FG = {"deleting": True, "finalizers": ("foregroundDeletion",)}


def test_a_dependent_may_go_when_every_owner_is_gone_or_one_is_deleted_in_the_foreground() -> None:
    pod = gc_record(obj("Pod", "p", "a", "b"))
    # every owner gone, in some state read (the cache's live "a" was read before a 404)
    assert dependent_delete(pod, True, [owner("a", rs("a"), None), owner("b", None)]) is None
    # one owner deleted in the foreground: the spec deletes its dependents, whatever the other
    assert dependent_delete(pod, True, [owner("a", rs("a", **FG)), owner("b", rs("b"))]) is None


def test_a_dependent_with_a_live_owner_or_already_being_deleted_may_not_go() -> None:
    pod = gc_record(obj("Pod", "p", "a", "b"))
    why = dependent_delete(pod, True, [owner("a", None), owner("b", rs("b"))])
    assert why is not None and "ReplicaSet b (uid-b): live" in why  # the spec patches "a" out
    deleting = rs("b", deleting=True, finalizers=("orphan",))  # not in the foreground
    assert dependent_delete(pod, True, [owner("a", None), owner("b", deleting)]) is not None
    # an owner neither cached nor read, that the store holds: absence from a cache is no proof
    why = dependent_delete(pod, True, [owner("a", None), owner("b")])
    assert why is not None and "never read" in why
    assert dependent_delete(pod, False, [owner("a", None), owner("b", None)]) is not None
    lone = gc_record(obj("Pod", "q"))
    assert dependent_delete(lone, True, []) == "it names no owner"


def test_foreground_deletion_ends_only_with_no_blocking_dependent_left() -> None:
    fg = rs("a", **FG)
    assert foreground_removal([rs("a"), fg], []) is None
    blocking = gc_record(obj("Pod", "p", "a", deleting=True))
    why = foreground_removal([fg], [blocking])
    assert why is not None and "Pod default/p" in why
    assert foreground_removal([rs("a")], []) is not None  # never seen in the foreground


@attrs.frozen
class FakeCache:
    items: list[Obj]
    informer: Any


@attrs.frozen
class FakeInformer:
    indexer: Any


@attrs.frozen
class FakeIndexer:
    objs: list[Obj]

    def list(self) -> list[Obj]:
        return list(self.objs)


def caches(*objs: Obj, now: tuple[Obj, ...] | None = None) -> dict[str, FakeCache]:
    """A sync's caches: ``objs`` when it began, ``now`` (default the same) as they are now."""
    later = list(objs if now is None else now)

    def cache(pods: bool) -> FakeCache:
        began = [o for o in objs if (o["kind"] == "Pod") == pods]
        current = [o for o in later if (o["kind"] == "Pod") == pods]
        return FakeCache(began, FakeInformer(FakeIndexer(current)))

    return {"pods": cache(True), "replicasets.apps": cache(False)}


POD_PATH = "/api/v1/namespaces/default/pods/p"
RS_PATH = "/apis/apps/v1/namespaces/default/replicasets/a"
DELETE = {"kind": "DeleteOptions", "preconditions": {"uid": "uid-p"}}


def read(path: str, answer: Obj | None) -> Read:
    if answer is None:
        return read_of(path, 404, b'{"kind":"Status"}')
    return read_of(path, 200, json.dumps(answer).encode())


def judged(view: dict[str, FakeCache], reads: list[Read], gone: str = "") -> str | None:
    """The rule on the pod's DELETE, the store holding every uid but ``gone``."""
    facts = gc_monitor.dependent_delete(view, reads, POD_PATH, DELETE, lambda uid: uid != gone)
    return facts.judge()


def test_the_reads_gathered_for_a_delete_are_the_caches_the_gets_and_the_store() -> None:
    pod, live = obj("Pod", "p", "a"), obj("ReplicaSet", "a")
    view = caches(pod, live)
    # the owner's GET answered 404 after the cache showed it: gone
    assert judged(view, [read(POD_PATH, pod), read(RS_PATH, None)]) is None
    # another object by that name is not the owner: gone too
    other = {**live, "metadata": {**live["metadata"], "uid": "uid-new"}}
    assert judged(view, [read(POD_PATH, pod), read(RS_PATH, other)]) is None
    # no GET of the owner (the collector knew it gone): the store must not hold it
    assert judged(view, [read(POD_PATH, pod)]) is not None
    assert judged(view, [read(POD_PATH, pod)], gone="uid-a") is None
    # a pod that appeared in the cache during the sync is found there (and its owner is live)
    why = judged(caches(live, now=(pod, live)), [])
    assert why is not None and "ReplicaSet a (uid-a): live" in why


def test_the_dependents_of_a_finalizer_removal_are_the_caches_when_it_is_sent() -> None:
    fg = obj("ReplicaSet", "a", **FG)
    pod = obj("Pod", "p", "a")
    patch = {"metadata": {"finalizers": [], "resourceVersion": "7"}}
    assert gc_monitor.removes_foreground("PATCH", patch)
    assert not gc_monitor.removes_foreground("PATCH", {"metadata": {"ownerReferences": []}})
    reads = [read(RS_PATH, fg)]
    blocked = gc_monitor.foreground_removal(caches(fg, pod), reads, RS_PATH, "uid-a")
    assert blocked.judge() is not None
    left = gc_monitor.foreground_removal(caches(fg, pod, now=(fg,)), reads, RS_PATH, "uid-a")
    assert left.judge() is None
    # one the cache showed only after the sync began was not in the graph its decision read
    # (a manager's pod cache catching up after a partition: upstream reads no more either)
    late = gc_monitor.foreground_removal(caches(fg, now=(fg, pod)), reads, RS_PATH, "uid-a")
    assert late.judge() is None
    # a dependent naming it without blockOwnerDeletion is not waited for (a node's Lease)
    loose = obj("Pod", "p", "a", block=False)
    assert gc_monitor.foreground_removal(caches(fg, loose), reads, RS_PATH, "uid-a").judge() is None


def test_pods_created_after_the_owner_was_marked_and_cached_mid_removal_do_not_block_it() -> None:
    """Seed 452's shape (slow manager watches): a ReplicaSet controller with a stale cache
    created ``late`` after ``a`` was marked, and the collector's pod cache took it between the
    decision (no dependent in the graph) and the PATCH; ``early`` was cached all along. Only
    ``early`` was in the graph the decision read, so only it may be named."""
    fg = obj("ReplicaSet", "a", **FG)
    early, late = obj("Pod", "early", "a"), obj("Pod", "late", "a")
    # attemptToDeleteItem's GET, then removeFinalizer's: both show it deleting in the foreground
    reads = [read(RS_PATH, fg), read(RS_PATH, fg)]
    alone = gc_monitor.foreground_removal(caches(fg, now=(fg, late)), reads, RS_PATH, "uid-a")
    assert alone.dependents == ()
    assert alone.judge() is None
    # judged on the caches at sending alone, the same removal is refused, naming the late pod
    why = foreground_removal([gc_record(fg)], [gc_record(late)])
    assert why is not None and "Pod default/late" in why
    both = gc_monitor.foreground_removal(
        caches(fg, early, now=(fg, early, late)), reads, RS_PATH, "uid-a"
    )
    why = both.judge()
    assert why is not None and "Pod default/early" in why and "late" not in why


def test_the_store_history_follows_which_uids_exist() -> None:
    history = StoreHistory()
    key = b"/registry/replicasets/default/a"
    value = json.dumps({"metadata": {"name": "a", "uid": "uid-a"}}).encode()
    history.written(2, [KeyValue(key, 2, 2, 1, value)])
    history.written(3, [KeyValue(key, 2, 3, 2, value)])
    assert history.holds("uid-a")
    history.written(4, [KeyValue(key, 0, 4, 0)])
    assert not history.holds("uid-a")
