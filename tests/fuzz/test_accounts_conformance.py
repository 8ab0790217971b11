"""The ServiceAccount, token and namespace controllers' request-conformance rules
(:mod:`raftkube_fuzz.checks.accounts_conformance`) on hand-built reads, each with a request
the spec's loop allows and one it does not; and the monitor's wiring
(:mod:`raftkube_fuzz.cluster.accounts_monitor`), from a sync's start through its live reads
to the violation after the step."""

from __future__ import annotations

import json
from typing import Any

import pytest

from raftkube.controllers.informer import SharedIndexInformer
from raftkube.controllers.resources import namespaced_stored_resources
from raftkube.controllers.synctrace import listen_to_syncs, sync_started
from raftkube.kubeclient import resource_path
from raftkube_fuzz.checks.accounts_conformance import (
    account_create,
    content_delete,
    namespace_finalize,
    spec_namespace,
    spec_service_account,
    spec_token,
    token_delete,
    token_populate,
)
from raftkube_fuzz.checks.gc_conformance import gc_record
from raftkube_fuzz.cluster.conformance_monitor import CURRENT, ConformanceMonitor
from raftkube_fuzz.violation import Violation
from tests.helpers.informers import cached_informer

Obj = dict[str, Any]
TS = "2026-01-01T00:00:00Z"


def namespace(name: str = "team-a", *, deleting: bool = False, finalized: bool = False) -> Obj:
    meta: Obj = {"name": name, "uid": f"uid-{name}", "resourceVersion": "2"}
    if deleting:
        meta["deletionTimestamp"] = TS
    return {"metadata": meta, "spec": {"finalizers": [] if finalized else ["kubernetes"]}}


def account(name: str = "default", uid: str = "", *, ns: str = "team-a") -> Obj:
    return {"metadata": {"name": name, "namespace": ns, "uid": uid or f"uid-{name}"}}


def secret(name: str = "t", account: str = "sa-a", uid: str = "u1") -> Obj:
    annotations = {"kubernetes.io/service-account.name": account}
    if uid:
        annotations["kubernetes.io/service-account.uid"] = uid
    return {
        "metadata": {"name": name, "namespace": "team-a", "uid": f"uid-{name}",
                     "annotations": annotations},
        "type": "kubernetes.io/service-account-token",
    }  # fmt: skip


def pod(name: str) -> Obj:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "team-a", "uid": f"uid-{name}"}}


# --- the rules -----------------------------------------------------------------------------------


def test_a_default_account_is_created_only_in_a_live_namespace_without_one() -> None:
    live = spec_namespace(namespace())
    assert account_create("team-a", "default", live, ()) is None
    terminating = spec_namespace(namespace(deleting=True))
    why = account_create("team-a", "default", terminating, ())
    assert why is not None and "being deleted" in why
    there = (spec_service_account(account()),)
    why = account_create("team-a", "default", live, there)
    assert why is not None and "already shows" in why
    assert account_create("team-a", "default", None, ()) == "its view has no namespace team-a"
    why = account_create("team-a", "builder", live, ())
    assert why is not None and "only the default" in why


def test_a_token_is_deleted_only_when_every_read_of_its_account_misses_its_uid() -> None:
    token = spec_token(secret(uid="u1"))
    assert token_delete(token, [None]) is None  # cache misses, no GET (the account's worker)
    assert token_delete(token, [None, None], 1) is None  # cache and live GET (404) miss
    why = token_delete(token, [None], 0)  # the secret worker, on its cache's miss alone
    assert why is not None and "without reading the account live" in why
    other = spec_service_account(account("sa-a", "u0"))
    assert token_delete(token, [other, None]) is None  # a previous incarnation, then a 404
    mine = spec_service_account(account("sa-a", "u1"))
    why = token_delete(token, [None, mine])  # the live GET found it: upstream keeps the token
    assert why is not None and "none, uid u1" in why
    assert token_delete(token, [mine]) is not None
    assert token_delete(None, [None]) == "its view has no such token Secret"


def test_a_token_is_filled_in_only_for_an_account_read_with_the_uid_it_records() -> None:
    mine = spec_service_account(account("sa-a", "u1"))
    assert token_populate("team-a", "sa-a", "u1", [None, mine]) is None
    other = spec_service_account(account("sa-a", "u0"))
    why = token_populate("team-a", "sa-a", "u1", [other])
    assert why is not None and "uid u0" in why
    assert token_populate("team-a", "sa-a", "", [mine]) is not None


def test_content_is_deleted_only_in_the_synced_namespace_read_as_being_deleted() -> None:
    live, gone = spec_namespace(namespace()), spec_namespace(namespace(deleting=True))
    assert content_delete("team-a", "team-a", [live, gone]) is None
    why = content_delete("team-a", "team-a", [live, None])
    assert why is not None and "being deleted" in why
    assert content_delete("default", "team-a", [gone]) is not None
    assert content_delete("", "team-a", [gone]) is not None  # the namespace itself


def test_the_finalizer_goes_only_once_the_loops_own_lists_showed_the_namespace_empty() -> None:
    held = spec_namespace(namespace(deleting=True))
    empty: dict[str, Any] = {r.qualified: () for r in namespaced_stored_resources()}
    assert namespace_finalize([held], empty) is None
    left = {**empty, "pods": (gc_record(pod("p")),)}
    why = namespace_finalize([held], left)
    assert why is not None and "Pod p" in why
    unlisted = {**empty, "secrets": None}
    why = namespace_finalize([held], unlisted)
    assert why is not None and "never showed secrets" in why
    assert namespace_finalize([spec_namespace(namespace())], empty) is not None
    done = spec_namespace(namespace(deleting=True, finalized=True))
    assert namespace_finalize([done], empty) is not None


# --- the monitor's wiring ------------------------------------------------------------------------


def informer(resource: str, items: list[Obj], version: int) -> SharedIndexInformer:
    return cached_informer("", resource, items, version)


@pytest.mark.parametrize("remaining", [0, 1])
def test_the_finalize_is_judged_against_the_syncs_own_lists(remaining: int) -> None:
    monitor = ConformanceMonitor()
    monitor.watch("kcm-0")
    trace = monitor.tracer()
    ns = namespace(deleting=True)
    try:
        sync_started("namespace", "team-a", (informer("namespaces", [ns], 2),))
        trace("GET", "/api/v1/namespaces/team-a", None, None)(200, json.dumps(ns).encode())
        trace("DELETE", "/api/v1/namespaces/team-a/pods", None, None)
        for info in namespaced_stored_resources():
            items = [pod("p")] if info.resource == "pods" and remaining else []
            answer = json.dumps({"items": items}).encode()
            trace("GET", resource_path(info, namespace="team-a"), None, None)(200, answer)
        trace("PUT", "/api/v1/namespaces/team-a/finalize", None, ns)
    finally:
        CURRENT.set(None)
        listen_to_syncs(None)
    if remaining:
        with pytest.raises(Violation, match=r"RequestConformance.*still showed 1 object in it"):
            monitor.check()
    else:
        monitor.check()
        assert monitor.judged == {"namespace": 2}


@pytest.mark.parametrize(("live", "violates"), [(404, False), (200, True)])
def test_a_token_delete_is_judged_with_the_live_read_of_its_account(
    live: int, violates: bool
) -> None:
    monitor = ConformanceMonitor()
    monitor.watch("kcm-0")
    trace = monitor.tracer()
    token = secret(uid="u1")
    caches = (informer("serviceaccounts", [], 2), informer("secrets", [token], 2))
    try:
        sync_started("serviceaccount-tokens-secret", "team-a/t", caches)
        found = json.dumps(account("sa-a", "u1")).encode() if live == 200 else b"{}"
        trace("GET", "/api/v1/namespaces/team-a/serviceaccounts/sa-a", None, None)(live, found)
        options = {"preconditions": {"uid": "uid-t"}}
        trace("DELETE", "/api/v1/namespaces/team-a/secrets/t", None, options)
        # the account controller's POST of a default account in a namespace its view lacks
        sync_started("serviceaccount", "team-a", (informer("namespaces", [], 2), caches[0]))
        trace("POST", "/api/v1/namespaces/team-a/serviceaccounts", None, account())
    finally:
        CURRENT.set(None)
        listen_to_syncs(None)
    if violates:
        with pytest.raises(Violation, match=r"serviceaccount-tokens-secret.*secrets/t"):
            monitor.check()
    else:
        with pytest.raises(Violation, match=r"serviceaccount on kcm-0.*no namespace team-a"):
            monitor.check()
        assert monitor.judged == {"serviceaccount": 1, "serviceaccount-tokens-secret": 1}
