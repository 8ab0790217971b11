"""``NamespaceEmptiedBeforeFinalized`` and the namespace part of eventual stable
reconciliation, on hand-made store revisions (each list below is one revision's writes)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.checks.reconciliation import unreconciled
from raftkube_fuzz.violation import Violation
from raftkube_spec.kv.types import KeyValue

NS_KEY = b"/registry/namespaces/team-a"
RS_KEY = b"/registry/replicasets/team-a/rs-a"
POD_KEY = b"/registry/pods/team-a/rs-a-x"
LATE_KEY = b"/registry/configmaps/team-a/late"


def _namespace(uid: str, *, marked: bool, finalizers: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "team-a", "uid": uid}
    if marked:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    phase = "Terminating" if marked else "Active"
    return {"kind": "Namespace", "metadata": meta, "spec": {"finalizers": finalizers},
            "status": {"phase": phase}}  # fmt: skip


def _in_team(kind: str, name: str) -> dict[str, Any]:
    """An object in team-a (a ReplicaSet asks for no pods, so only the namespace's own
    state is unreconciled)."""
    obj: dict[str, Any] = {"kind": kind, "metadata": {"name": name, "namespace": "team-a",
                                                     "uid": f"u-{name}"}}  # fmt: skip
    if kind == "ReplicaSet":
        obj["spec"] = {"replicas": 0}
    return obj


class Store:
    """Revisions written one by one, as the store's members report them."""

    def __init__(self) -> None:
        self.written: dict[int, tuple[KeyValue, ...]] = {}
        self.versions: dict[bytes, tuple[int, int]] = {}
        self.observer = ClusterObserver()

    def write(self, *changes: tuple[bytes, dict[str, Any] | None]) -> int:
        """One revision: each key set to the object, or deleted (None); then followed."""
        revision = len(self.written) + 2
        records = []
        for key, obj in changes:
            if obj is None:
                self.versions.pop(key, None)
                records.append(KeyValue(key, mod_revision=revision))
                continue
            created, version = self.versions.get(key, (revision, 0))
            self.versions[key] = (created, version + 1)
            records.append(KeyValue(key, created, revision, version + 1, json.dumps(obj).encode()))
        self.written[revision] = tuple(records)
        self.observer.follow(self.written)
        return revision


def _with_content() -> Store:
    store = Store()
    store.write((NS_KEY, _namespace("n1", marked=False, finalizers=["kubernetes"])))
    store.write((RS_KEY, _in_team("ReplicaSet", "rs-a")), (POD_KEY, _in_team("Pod", "rs-a-x")))
    store.write((NS_KEY, _namespace("n1", marked=True, finalizers=["kubernetes"])))
    return store


def test_finalizing_a_namespace_that_still_holds_its_content_is_a_violation() -> None:
    store = _with_content()
    store.write((RS_KEY, None))
    with pytest.raises(Violation) as found:
        store.write((NS_KEY, _namespace("n1", marked=True, finalizers=[])))
    assert found.value.prop == "NamespaceEmptiedBeforeFinalized"
    assert found.value.evidence["left"] == [POD_KEY.decode()]
    assert found.value.evidence["marked"] == 4


def test_deleting_the_namespace_itself_first_is_judged_the_same() -> None:
    store = _with_content()
    with pytest.raises(Violation, match="2 object"):
        store.write((NS_KEY, None))


def test_an_emptied_namespace_goes_and_a_new_one_of_that_name_starts_afresh() -> None:
    store = _with_content()
    assert unreconciled(store.observer) == ["namespace team-a is still terminating"]
    store.write((RS_KEY, None))
    store.write((POD_KEY, None))
    store.write((NS_KEY, _namespace("n1", marked=True, finalizers=[])))
    store.write((NS_KEY, None))
    assert unreconciled(store.observer) == []
    store.write((NS_KEY, _namespace("n2", marked=False, finalizers=["kubernetes"])))
    store.write((RS_KEY, _in_team("ReplicaSet", "rs-a")))
    store.write((NS_KEY, _namespace("n2", marked=True, finalizers=["kubernetes"])))
    with pytest.raises(Violation, match="rs-a"):
        store.write((NS_KEY, _namespace("n2", marked=True, finalizers=[])))


def test_content_written_after_the_mark_is_left_to_reconciliation() -> None:
    """Upstream's admission lets a create admitted before the mark be written after it; one
    the controller never listed outlives the namespace, which only the end state judges."""
    store = _with_content()
    store.write((RS_KEY, None), (POD_KEY, None))
    store.write((LATE_KEY, _in_team("ConfigMap", "late")))
    store.write((NS_KEY, _namespace("n1", marked=True, finalizers=[])))
    store.write((NS_KEY, None))
    assert unreconciled(store.observer) == [f"{LATE_KEY.decode()} outlives its namespace"]


def test_content_of_a_namespace_the_store_never_held_is_not_judged() -> None:
    store = Store()
    store.write((b"/registry/configmaps/default/cm", {"metadata": {"namespace": "default"}}))
    assert store.observer.namespaces.orphans() == []
