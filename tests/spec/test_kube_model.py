"""Hand-written examples of the Kubernetes object API's rules, against the pure model."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from raftkube_spec.kube import (
    Compact,
    CompactResponse,
    Create,
    Delete,
    DeleteResponse,
    EventType,
    Get,
    KubeError,
    KubeState,
    List,
    ListResponse,
    Model,
    Object,
    ObjectKey,
    ObjectResponse,
    Patch,
    Preconditions,
    PropagationPolicy,
    Reason,
    Request,
    ResourceVersionMatch,
    Result,
    Update,
    Watch,
    WatchEvent,
    WatchResponse,
    apply,
    initial_state,
    invariants,
    normalize,
    rfc3339,
    selector,
)
from raftkube_spec.kube.reads import decode_continue, encode_continue
from raftkube_spec.kube.timefmt import parse_rfc3339

T0 = 1_700_000_000
"""2023-11-14T22:13:20Z: the clock reading every create in these examples carries."""


def pod(name: str = "a", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}}
    body.update(extra)
    return body


def configmap(name: str = "c", **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, **metadata},
        "data": {"k": "v"},
    }


def key(name: str = "a", resource: str = "pods", namespace: str = "default") -> ObjectKey:
    return ObjectKey(resource, namespace, name)


def create(
    body: dict[str, Any],
    resource: str = "pods",
    namespace: str = "default",
    uid: str | None = None,
    now: int = T0,
    suffix: str = "",
) -> Create:
    uid = uid if uid is not None else f"uid-{body['metadata'].get('name')}"
    return Create(resource, namespace, Object.of(body), uid, now, suffix)


def run(*requests: Request, state: KubeState | None = None) -> tuple[KubeState, list[Result]]:
    s = initial_state() if state is None else state
    results = []
    for req in requests:
        s, r = apply(s, req)
        results.append(r)
        assert invariants(s) == [], invariants(s)
    return s, results


def obj(result: Result) -> dict[str, Any]:
    assert isinstance(result, ObjectResponse | DeleteResponse), result
    return result.object.to_dict()


def fetched(state: KubeState, k: ObjectKey) -> dict[str, Any] | None:
    r = apply(state, Get(k))[1]
    return None if isinstance(r, KubeError) else obj(r)


def err(result: Result, reason: Reason) -> str:
    assert isinstance(result, KubeError), result
    assert result.reason is reason
    return result.message


def put(state: KubeState, k: ObjectKey, body: dict[str, Any], **kw: Any) -> Update:
    return Update(k, Object.of(body), **kw)


def events(state: KubeState, **kw: Any) -> list[tuple[EventType, dict[str, Any]]]:
    r = apply(state, Watch("pods", **kw))[1]
    assert isinstance(r, WatchResponse), r
    return [(e.type, e.object.to_dict()) for e in r.events]


# -- create -------------------------------------------------------------------------------------


def test_the_empty_store_is_at_revision_one_and_has_nothing() -> None:
    s = initial_state()
    assert s.revision == 1
    assert err(apply(s, Get(key()))[1], Reason.NOT_FOUND) == 'pods "a" not found'
    assert apply(s, List("pods"))[1] == ListResponse(1, ())


def test_create_sets_the_metadata_the_server_owns() -> None:
    body = pod(spec={"x": 1})
    body["metadata"].update(
        uid="client-uid",
        creationTimestamp="1999-01-01T00:00:00Z",
        deletionTimestamp="1999-01-01T00:00:00Z",
        deletionGracePeriodSeconds=3,
        generation=7,
        labels={},
    )
    s, [r] = run(create(body, uid="u-1"))
    assert isinstance(r, ObjectResponse) and r.code == 201
    assert obj(r)["metadata"] == {
        "name": "a",
        "namespace": "default",
        "uid": "u-1",
        "creationTimestamp": "2023-11-14T22:13:20Z",
        "resourceVersion": "2",
        "generation": 1,
    }
    assert s.revision == 2 and fetched(s, key()) == obj(r)


def test_create_of_an_existing_name_is_already_exists_and_changes_nothing() -> None:
    s, _ = run(create(pod()))
    after, r = apply(s, create(pod(), uid="other"))
    assert err(r, Reason.ALREADY_EXISTS) == 'pods "a" already exists'
    assert isinstance(r, KubeError) and r.code == 409
    assert after is s


def test_generate_name_takes_the_suffix_from_the_request_and_a_name_wins() -> None:
    generated = pod("")
    generated["metadata"] = {"generateName": "web-"}
    s, [r1, r2] = run(
        create(generated, uid="u1", suffix="x7k2q"),
        create(pod("fixed") | {"metadata": {"name": "fixed", "generateName": "g-"}}, uid="u2"),
    )
    assert obj(r1)["metadata"]["name"] == "web-x7k2q"
    assert obj(r1)["metadata"]["generateName"] == "web-"
    assert obj(r2)["metadata"]["name"] == "fixed"
    long_base = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "n" * 70}}
    _, r3 = apply(s, create(long_base, uid="u3", suffix="abcde"))
    assert obj(r3)["metadata"]["name"] == "n" * 58 + "abcde"
    _, clash = apply(s, create(generated, uid="u4", suffix="x7k2q"))
    assert err(clash, Reason.ALREADY_EXISTS) == 'pods "web-x7k2q" already exists'


def test_create_refusals_in_upstream_order() -> None:
    nameless = {"apiVersion": "v1", "kind": "Pod", "metadata": {}}
    s = initial_state()
    assert err(apply(s, create(nameless, uid="u"))[1], Reason.INVALID) == (
        'Pod "" is invalid: metadata.name: Required value: name or generateName is required'
    )
    with_rv = pod()
    with_rv["metadata"]["resourceVersion"] = "5"
    refused = apply(s, create(with_rv))[1]
    assert err(refused, Reason.UNKNOWN) == (
        "resourceVersion should not be set on objects to be created"
    )
    assert isinstance(refused, KubeError) and refused.code == 500
    # The store checks before it looks for the key, and after the registry's validation.
    existing, _ = run(create(pod()))
    assert apply(existing, create(with_rv))[1] == refused
    nameless_rv = {"apiVersion": "v1", "kind": "Pod", "metadata": {"resourceVersion": "5"}}
    assert err(apply(s, create(nameless_rv))[1], Reason.INVALID)
    # A resourceVersion that is not a non-zero unsigned number is cleared and ignored.
    for ignored in ("0", "-1", "x", "18446744073709551616"):
        body = pod()
        body["metadata"]["resourceVersion"] = ignored
        created = apply(s, create(body))[1]
        assert isinstance(created, ObjectResponse), (ignored, created)
        assert created.object.resource_version == "2"
    elsewhere = pod()
    elsewhere["metadata"]["namespace"] = "other"
    assert err(apply(s, create(elsewhere))[1], Reason.BAD_REQUEST) == (
        "the namespace of the provided object does not match the namespace sent on the request"
    )


def test_a_cluster_scoped_create_clears_the_namespace() -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "namespace": "x"}}
    _, [r] = run(create(node, resource="nodes", namespace=""))
    assert "namespace" not in obj(r)["metadata"]


def test_a_group_qualified_resource_is_named_so_in_messages() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
    s, _ = run(create(deployment, resource="deployments.apps"))
    r = apply(s, create(deployment, resource="deployments.apps", uid="u2"))[1]
    assert err(r, Reason.ALREADY_EXISTS) == 'deployments.apps "d" already exists'
    bad = apply(s, Patch.of(key("d", "deployments.apps"), {"metadata": {"uid": "zz"}}))[1]
    assert err(bad, Reason.INVALID).startswith('Deployment.apps "d" is invalid: metadata.uid')


# -- update -------------------------------------------------------------------------------------


def test_update_with_a_stale_resource_version_is_a_conflict() -> None:
    s, [r] = run(create(pod(spec={"v": 1})))
    first = obj(r)
    s, [r2] = run(put(s, key(), first | {"spec": {"v": 2}}), state=s)
    assert obj(r2)["metadata"]["resourceVersion"] == "3"
    after, stale = apply(s, put(s, key(), first | {"spec": {"v": 3}}))
    assert err(stale, Reason.CONFLICT) == (
        'Operation cannot be fulfilled on pods "a": the object has been modified; please apply '
        "your changes to the latest version and try again"
    )
    assert after is s


def test_update_without_resource_version_is_unconditional() -> None:
    s, [r] = run(create(pod(spec={"v": 1})))
    body = obj(r)
    del body["metadata"]["resourceVersion"]
    s, [r2, r3] = run(
        put(s, key(), body | {"spec": {"v": 2}}),
        put(s, key(), body | {"spec": {"v": 3}}),
        state=s,
    )
    assert obj(r2)["metadata"]["resourceVersion"] == "3"
    assert obj(r3)["spec"] == {"v": 3} and obj(r3)["metadata"]["resourceVersion"] == "4"


def test_update_of_a_missing_or_deleted_object_is_not_found() -> None:
    s, [r, _] = run(create(configmap(), resource="configmaps"), Delete(key("c", "configmaps"), T0))
    without_uid = obj(r)
    del without_uid["metadata"]["uid"]
    gone = apply(s, put(s, key("c", "configmaps"), without_uid))[1]
    assert err(gone, Reason.NOT_FOUND) == 'configmaps "c" not found'
    assert isinstance(gone, KubeError) and gone.code == 404
    # With its uid, the store's uid precondition fails first, against an empty object.
    with_uid = apply(s, put(s, key("c", "configmaps"), obj(r)))[1]
    assert err(with_uid, Reason.CONFLICT) == (
        'Operation cannot be fulfilled on configmaps "c": Precondition failed: UID in '
        "precondition: uid-c, UID in object meta: "
    )
    missing = apply(s, Patch.of(key("zz"), {"spec": {}}))[1]
    assert err(missing, Reason.NOT_FOUND) == 'pods "zz" not found'


def test_update_may_not_rename_or_move_an_object() -> None:
    s, [r] = run(create(pod()))
    renamed = obj(r)
    renamed["metadata"]["name"] = "b"
    assert err(apply(s, put(s, key(), renamed))[1], Reason.BAD_REQUEST) == (
        "the name of the object (b) does not match the name on the URL (a)"
    )
    moved = obj(r)
    moved["metadata"]["namespace"] = "other"
    assert err(apply(s, put(s, key(), moved))[1], Reason.BAD_REQUEST).startswith(
        "the namespace of the provided object does not match"
    )
    patched = apply(s, Patch.of(key(), {"metadata": {"name": "b"}}))[1]
    assert err(patched, Reason.BAD_REQUEST).startswith("the name of the object (b)")


def test_uid_and_creation_timestamp_never_change() -> None:
    s, [r] = run(create(pod(), uid="u-1"))
    body = obj(r)
    body["metadata"]["creationTimestamp"] = "2000-01-01T00:00:00Z"
    body["metadata"]["labels"] = {"l": "1"}
    s, [r2] = run(put(s, key(), body), state=s)
    assert obj(r2)["metadata"]["creationTimestamp"] == "2023-11-14T22:13:20Z"
    assert obj(r2)["metadata"]["uid"] == "u-1"
    other_uid = obj(r2)
    other_uid["metadata"]["uid"] = "u-2"
    assert err(apply(s, put(s, key(), other_uid))[1], Reason.CONFLICT) == (
        'Operation cannot be fulfilled on pods "a": Precondition failed: UID in precondition: '
        "u-2, UID in object meta: u-1"
    )
    assert err(apply(s, Patch.of(key(), {"metadata": {"uid": "u-2"}}))[1], Reason.INVALID) == (
        'Pod "a" is invalid: metadata.uid: Invalid value: "u-2": field is immutable'
    )


def test_generation_counts_spec_changes_only() -> None:
    s, _ = run(create(pod(spec={"v": 1}, status={"phase": "Pending"})))
    k = key()
    s, rs = run(
        Patch.of(k, {"metadata": {"labels": {"l": "1"}, "annotations": {"a": "b"}}}),
        Patch.of(k, {"status": {"phase": "Running"}}, subresource="status"),
        Patch.of(k, {"spec": {"v": 2}}),
        Patch.of(k, {"spec": {"w": 1}}),
        state=s,
    )
    assert [obj(x)["metadata"]["generation"] for x in rs] == [1, 1, 2, 3]
    assert [obj(x)["metadata"]["resourceVersion"] for x in rs] == ["3", "4", "5", "6"]


def test_status_belongs_to_the_status_subresource() -> None:
    s, [r] = run(create(pod(spec={"v": 1}, status={"phase": "Pending"})))
    body = obj(r)
    s, [main] = run(put(s, key(), body | {"status": {"phase": "Running"}}), state=s)
    assert obj(main)["status"] == {"phase": "Pending"}
    assert s.revision == 2  # nothing changed, nothing written
    labelled = body | {"metadata": body["metadata"] | {"labels": {"x": "y"}}}
    status_update = put(
        s,
        key(),
        labelled | {"spec": {"v": 9}, "status": {"phase": "Running"}},
        subresource="status",
    )
    s, [st] = run(status_update, state=s)
    assert obj(st)["status"] == {"phase": "Running"}
    assert obj(st)["spec"] == {"v": 1} and "labels" not in obj(st)["metadata"]
    assert obj(st)["metadata"]["generation"] == 1


def test_an_update_that_changes_nothing_writes_nothing() -> None:
    s, [r] = run(create(pod(spec={"v": 1})))
    after, same = apply(s, put(s, key(), obj(r)))
    assert after is s and isinstance(same, ObjectResponse)
    assert same.object == r.object  # type: ignore[union-attr]
    after, _ = apply(s, Patch.of(key(), {"metadata": {"labels": None}}))
    assert after is s


def test_a_resource_version_inside_a_patch_is_a_precondition() -> None:
    s, _ = run(create(pod()), Patch.of(key(), {"spec": {"v": 1}}))
    stale = apply(s, Patch.of(key(), {"metadata": {"resourceVersion": "2"}, "spec": {"v": 2}}))
    assert err(stale[1], Reason.CONFLICT).endswith("try again")
    fresh = apply(s, Patch.of(key(), {"metadata": {"resourceVersion": "3"}, "spec": {"v": 2}}))
    assert obj(fresh[1])["spec"] == {"v": 2}


def test_merge_patch_removes_with_null_and_replaces_lists() -> None:
    s, _ = run(create(pod(spec={"a": 1, "b": [1, 2], "c": {"d": 1}})))
    _, r = apply(s, Patch.of(key(), {"spec": {"a": None, "b": [3], "c": {"e": 2}}}))
    assert obj(r)["spec"] == {"b": [3], "c": {"d": 1, "e": 2}}


def test_invalid_resource_versions_are_bad_requests() -> None:
    s, [r] = run(create(pod()))
    body = obj(r)
    body["metadata"]["resourceVersion"] = "abc"
    assert err(apply(s, put(s, key(), body))[1], Reason.BAD_REQUEST) == (
        'invalid resource version: "abc"'
    )
    assert err(apply(s, List("pods", resource_version="x1"))[1], Reason.BAD_REQUEST)
    assert err(apply(s, Watch("pods", resource_version="-1"))[1], Reason.BAD_REQUEST)


# -- finalizers and deletion --------------------------------------------------------------------


def test_finalizers_hold_an_object_until_the_update_that_removes_the_last() -> None:
    held = configmap(finalizers=["a/x", "b/y"])
    k = key("c", "configmaps")
    s, [_, d] = run(create(held, resource="configmaps"), Delete(k, T0 + 5))
    assert isinstance(d, DeleteResponse) and not d.deleted and d.code == 200
    meta = obj(d)["metadata"]
    assert meta["deletionTimestamp"] == rfc3339(T0 + 5) == "2023-11-14T22:13:25Z"
    assert meta["deletionGracePeriodSeconds"] == 0
    assert meta["generation"] == 2 and meta["resourceVersion"] == "3"
    # Deleting again changes nothing: the timestamp is not later than now.
    again, d2 = apply(s, Delete(k, T0 + 9))
    assert again is s and isinstance(d2, DeleteResponse) and not d2.deleted
    # No finalizer may be added now, and the deletion cannot be undone by an update.
    current = fetched(s, k)
    assert current is not None
    added = apply(s, Patch.of(k, {"metadata": {"finalizers": ["a/x", "b/y", "c/z", "a/w"]}}))[1]
    assert err(added, Reason.INVALID) == (
        'ConfigMap "c" is invalid: metadata.finalizers: Forbidden: no new finalizers can be '
        'added if the object is being deleted, found new finalizers []string{"a/w", "c/z"}'
    )
    cleared = current | {"metadata": current["metadata"] | {"deletionTimestamp": None}}
    s, [kept] = run(put(s, k, cleared), state=s)
    assert obj(kept)["metadata"]["deletionTimestamp"] == "2023-11-14T22:13:25Z"
    s, [one] = run(Patch.of(k, {"metadata": {"finalizers": ["b/y"]}}), state=s)
    assert obj(one)["metadata"]["finalizers"] == ["b/y"] and s.revision == 4
    s, [last] = run(Patch.of(k, {"metadata": {"finalizers": None}}), state=s)
    assert s.revision == 5 and fetched(s, k) is None
    # The update's answer is the object as updated, at its old resourceVersion; the watch's
    # DELETED event carries the last stored state, stamped with the deleting revision.
    assert obj(last)["metadata"]["resourceVersion"] == "4"
    assert "finalizers" not in obj(last)["metadata"]
    (kind, gone_obj) = [e for e in _all_events(s, "configmaps")][-1]
    assert kind is EventType.DELETED
    assert gone_obj["metadata"]["resourceVersion"] == "5"
    assert gone_obj["metadata"]["finalizers"] == ["b/y"]


def _all_events(state: KubeState, resource: str) -> list[tuple[EventType, dict[str, Any]]]:
    r = apply(state, Watch(resource, resource_version="1"))[1]
    assert isinstance(r, WatchResponse), r
    return [(e.type, e.object.to_dict()) for e in r.events]


def test_an_object_without_finalizers_goes_at_once() -> None:
    k = key("c", "configmaps")
    s, [c, d] = run(create(configmap(), resource="configmaps"), Delete(k, T0))
    assert isinstance(d, DeleteResponse) and d.deleted and d.code == 200
    # The answer is the last state at the deleting revision, the same as the DELETED event's.
    assert d.object == c.object.with_resource_version(3)  # type: ignore[union-attr]
    assert s.revision == 3 and fetched(s, k) is None
    assert _all_events(s, "configmaps")[-1] == (EventType.DELETED, d.object.to_dict())
    assert err(apply(s, Delete(k, T0))[1], Reason.NOT_FOUND) == 'configmaps "c" not found'


def test_delete_preconditions() -> None:
    s, _ = run(create(pod(), uid="u-1"))
    wrong_uid = apply(s, Delete(key(), T0, preconditions=Preconditions(uid="u-0")))[1]
    assert err(wrong_uid, Reason.CONFLICT) == (
        'Operation cannot be fulfilled on Pod "a": the UID in the precondition (u-0) does not '
        "match the UID in record (u-1). The object might have been deleted and then recreated"
    )
    wrong_rv = apply(s, Delete(key(), T0, preconditions=Preconditions(resource_version="7")))[1]
    assert err(wrong_rv, Reason.CONFLICT) == (
        'Operation cannot be fulfilled on Pod "a": the ResourceVersion in the precondition (7) '
        "does not match the ResourceVersion in record (2). The object might have been modified"
    )
    both = Preconditions(uid="u-1", resource_version="2")
    _, ok = apply(s, Delete(key(), T0, preconditions=both))
    assert isinstance(ok, DeleteResponse) and ok.deleted


def scheduled_pod(grace: int | None = 30, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"nodeName": "n1"}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return pod(spec=spec, **extra)


def test_a_scheduled_pod_is_deleted_gracefully() -> None:
    s, [_, d] = run(create(scheduled_pod()), Delete(key(), T0 + 100))
    assert isinstance(d, DeleteResponse) and not d.deleted
    meta = obj(d)["metadata"]
    assert meta["deletionTimestamp"] == rfc3339(T0 + 130)
    assert meta["deletionGracePeriodSeconds"] == 30 and meta["generation"] == 2
    # The same or a longer grace period changes nothing; a shorter one moves the timestamp.
    for grace in (None, 30, 45):
        after, same = apply(s, Delete(key(), T0 + 101, grace_period_seconds=grace))
        assert after is s and isinstance(same, DeleteResponse) and not same.deleted
        # Upstream answers 202 only to the deprecated orphanDependents=false.
        assert same.code == 200
    s, [shorter] = run(Delete(key(), T0 + 101, grace_period_seconds=10), state=s)
    assert obj(shorter)["metadata"]["deletionTimestamp"] == rfc3339(T0 + 110)
    assert obj(shorter)["metadata"]["deletionGracePeriodSeconds"] == 10
    assert obj(shorter)["metadata"]["generation"] == 2
    # The kubelet's final delete with grace 0: one write sets it, a second removes the pod.
    before = s.revision
    s, [final] = run(Delete(key(), T0 + 105, grace_period_seconds=0), state=s)
    assert isinstance(final, DeleteResponse) and final.deleted
    assert s.revision == before + 2 and fetched(s, key()) is None
    tail = _all_events(s, "pods")[-2:]
    assert [t for t, _ in tail] == [EventType.MODIFIED, EventType.DELETED]
    assert tail[0][1]["metadata"]["deletionGracePeriodSeconds"] == 0


@pytest.mark.parametrize(
    ("body", "grace"),
    [
        (pod(spec={"terminationGracePeriodSeconds": 30}), None),  # not scheduled
        (scheduled_pod(status={"phase": "Succeeded"}), None),
        (scheduled_pod(status={"phase": "Failed"}), 20),
        (scheduled_pod(grace=None), None),
        (scheduled_pod(), 0),
    ],
)
def test_a_pod_with_no_grace_period_left_goes_in_two_writes(
    body: dict[str, Any], grace: int | None
) -> None:
    s, [_, d] = run(create(body), Delete(key(), T0, grace_period_seconds=grace))
    assert isinstance(d, DeleteResponse) and d.deleted and s.revision == 4
    assert obj(d)["metadata"]["deletionGracePeriodSeconds"] == 0


def test_a_negative_grace_period_counts_as_one_second() -> None:
    _, [_, d] = run(create(scheduled_pod()), Delete(key(), T0, grace_period_seconds=-5))
    assert obj(d)["metadata"]["deletionGracePeriodSeconds"] == 1


def test_a_graceful_pod_with_finalizers_waits_for_both() -> None:
    body = scheduled_pod()
    body["metadata"]["finalizers"] = ["f"]
    s, [_, d1, d2] = run(
        create(body), Delete(key(), T0), Delete(key(), T0 + 1, grace_period_seconds=0)
    )
    assert obj(d1)["metadata"]["deletionGracePeriodSeconds"] == 30
    assert isinstance(d2, DeleteResponse) and not d2.deleted
    assert obj(d2)["metadata"]["deletionGracePeriodSeconds"] == 0
    s, _ = run(Patch.of(key(), {"metadata": {"finalizers": None}}), state=s)
    assert fetched(s, key()) is None


def test_propagation_policy_is_recorded_as_finalizers() -> None:
    k = key("c", "configmaps")
    s, _ = run(create(configmap(finalizers=["keep"]), resource="configmaps"))
    _, orphan = apply(s, Delete(k, T0, propagation_policy=PropagationPolicy.ORPHAN))
    assert obj(orphan)["metadata"]["finalizers"] == ["keep", "orphan"]
    _, fg = apply(s, Delete(k, T0, propagation_policy=PropagationPolicy.FOREGROUND))
    assert obj(fg)["metadata"]["finalizers"] == ["keep", "foregroundDeletion"]
    plain = configmap()
    s, [_, o] = run(
        create(plain, resource="configmaps"),
        Delete(k, T0, propagation_policy=PropagationPolicy.ORPHAN),
    )
    assert isinstance(o, DeleteResponse) and not o.deleted
    # Background takes the orphan finalizer away again, and with nothing left the object goes
    # in that one write.
    before = s.revision
    s, [b] = run(Delete(k, T0, propagation_policy=PropagationPolicy.BACKGROUND), state=s)
    assert isinstance(b, DeleteResponse) and b.deleted and s.revision == before + 1


# -- list ---------------------------------------------------------------------------------------


def names(result: Result) -> list[str]:
    assert isinstance(result, ListResponse), result
    return [o.metadata["name"] for o in result.items]


def populated() -> KubeState:
    s, _ = run(
        create(pod("x"), namespace="a", uid="1"),
        create(pod("y", metadata={"name": "y", "labels": {"app": "w"}}), namespace="a-b", uid="2"),
        create(pod("z", metadata={"name": "z", "labels": {"app": "w"}}), namespace="a", uid="3"),
        create(pod("w"), namespace="b", uid="4"),
        create(configmap("q"), resource="configmaps", namespace="a", uid="5"),
    )
    return s


def test_list_is_in_store_key_order_at_the_current_revision() -> None:
    s = populated()
    r = apply(s, List("pods"))[1]
    # "a-b/y" sorts before "a/x" in the store's byte order.
    assert names(r) == ["y", "x", "z", "w"]
    assert isinstance(r, ListResponse) and r.resource_version == 6 == s.revision
    assert names(apply(s, List("pods", namespace="a"))[1]) == ["x", "z"]
    assert names(apply(s, List("pods", label_selector=selector({"app": "w"})))[1]) == ["y", "z"]
    assert apply(s, List("pods"))[0] is s


def test_list_pages_read_at_the_first_page_revision() -> None:
    s = populated()
    first = apply(s, List("pods", limit=3))[1]
    assert isinstance(first, ListResponse)
    assert names(first) == ["y", "x", "z"] and first.remaining_item_count == 1
    assert decode_continue(first.continue_token) == (6, "a/z\x00")
    assert first.continue_token == encode_continue(6, "a/z\x00")
    s2, _ = run(
        create(pod("zz"), namespace="a", uid="9"), Delete(key("w", namespace="b"), T0), state=s
    )
    rest = apply(s2, List("pods", limit=3, continue_token=first.continue_token))[1]
    assert names(rest) == ["w"]
    assert isinstance(rest, ListResponse) and rest.resource_version == 6
    assert rest.continue_token == "" and rest.remaining_item_count is None
    in_ns = apply(s, List("pods", namespace="a", limit=1))[1]
    assert isinstance(in_ns, ListResponse)
    assert decode_continue(in_ns.continue_token) == (6, "x\x00")
    selected = apply(s, List("pods", label_selector=selector({"app": "w"}), limit=1))[1]
    assert isinstance(selected, ListResponse) and selected.remaining_item_count is None
    assert (
        err(
            apply(s, List("pods", continue_token=first.continue_token, resource_version="3"))[1],
            Reason.BAD_REQUEST,
        )
        == "specifying resource version is not allowed when using continue"
    )
    assert err(apply(s, List("pods", continue_token="!!"))[1], Reason.BAD_REQUEST).startswith(
        "invalid continue token: continue key is not valid"
    )
    compacted, _ = run(Compact(7), state=s2)
    old = apply(compacted, List("pods", continue_token=first.continue_token))[1]
    assert err(old, Reason.GONE).startswith("The provided continue parameter is too old")


def test_a_selected_page_has_a_token_when_any_key_follows_it() -> None:
    # Store order y, x, z, w: {app: w} matches y and z. A page of two ends at z, and w (which
    # does not match) still follows, so the etcd3 store answers a token and an empty last page.
    s = populated()
    app_w = selector({"app": "w"})
    full = apply(s, List("pods", label_selector=app_w, limit=2))[1]
    assert isinstance(full, ListResponse) and names(full) == ["y", "z"]
    assert decode_continue(full.continue_token) == (6, "a/z\x00")
    assert full.remaining_item_count is None
    last = apply(s, List("pods", label_selector=app_w, limit=2, continue_token=full.continue_token))
    assert isinstance(last[1], ListResponse) and names(last[1]) == []
    assert last[1].continue_token == ""
    # A page that is not full has read the whole range: no token.
    short = apply(s, List("pods", label_selector=app_w, limit=3))[1]
    assert isinstance(short, ListResponse) and names(short) == ["y", "z"]
    assert short.continue_token == ""
    # Nothing follows the last key of the namespace: no token, though the page is full.
    in_ns = apply(s, List("pods", namespace="a", label_selector=app_w, limit=1))[1]
    assert isinstance(in_ns, ListResponse) and names(in_ns) == ["z"]
    assert in_ns.continue_token == ""


def test_list_at_an_exact_resource_version() -> None:
    s = populated()
    # An unscheduled pod goes in two writes (revisions 7 and 8), see below.
    s, _ = run(Delete(key("x", namespace="a"), T0), state=s)
    exact = ResourceVersionMatch.EXACT
    then = apply(s, List("pods", resource_version="3", resource_version_match=exact))[1]
    assert names(then) == ["y", "x"] and then.resource_version == 3  # type: ignore[union-attr]
    legacy = apply(s, List("pods", resource_version="3", limit=10))[1]
    assert names(legacy) == ["y", "x"]
    newer = apply(s, List("pods", resource_version="3"))[1]
    assert names(newer) == ["y", "z", "w"] and newer.resource_version == 8  # type: ignore[union-attr]
    assert err(apply(s, List("pods", resource_version="9"))[1], Reason.TIMEOUT) == (
        "Timeout: Too large resource version: 9, current: 8"
    )
    s, _ = run(Compact(4), state=s)
    assert names(apply(s, List("pods", resource_version="4", resource_version_match=exact))[1])
    too_old = apply(s, List("pods", resource_version="3", resource_version_match=exact))[1]
    assert err(too_old, Reason.GONE) == "The resourceVersion for the provided list is too old."
    assert isinstance(too_old, KubeError) and too_old.code == 410


def test_list_options_validation() -> None:
    s = populated()
    nto = ResourceVersionMatch.NOT_OLDER_THAN
    assert err(apply(s, List("pods", resource_version_match=nto))[1], Reason.INVALID) == (
        'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
        "resourceVersionMatch is forbidden unless resourceVersion is provided"
    )
    zero_exact = List(
        "pods", resource_version="0", resource_version_match=ResourceVersionMatch.EXACT
    )
    assert 'resourceVersionMatch "exact" is forbidden' in err(
        apply(s, zero_exact)[1], Reason.INVALID
    )


# -- watch --------------------------------------------------------------------------------------


def test_watch_from_a_revision_replays_every_later_change_in_order() -> None:
    s, _ = run(
        create(pod()),
        Patch.of(key(), {"spec": {"v": 1}}),
        create(pod("b"), uid="ub"),
        Delete(key(), T0),
    )
    got = events(s, resource_version="2")
    assert [(t, o["metadata"]["name"], o["metadata"]["resourceVersion"]) for t, o in got] == [
        (EventType.MODIFIED, "a", "3"),
        (EventType.ADDED, "b", "4"),
        (EventType.MODIFIED, "a", "5"),  # an unscheduled pod: deletionTimestamp, then gone
        (EventType.DELETED, "a", "6"),
    ]
    assert events(s, resource_version="6") == []
    assert err(apply(s, Watch("pods", resource_version="7"))[1], Reason.TIMEOUT)


def test_watch_without_a_resource_version_starts_with_the_current_objects() -> None:
    s = populated()
    got = events(s)
    assert [t for t, _ in got] == [EventType.ADDED] * 4
    assert [o["metadata"]["name"] for _, o in got] == ["y", "x", "z", "w"]
    assert events(s, resource_version="0") == got


def test_watch_from_a_compacted_revision_is_gone() -> None:
    s = populated()
    s, [c] = run(Compact(4), state=s)
    assert c == CompactResponse(4)
    assert err(apply(s, Watch("pods", resource_version="2"))[1], Reason.GONE) == (
        "The resourceVersion for the provided watch is too old."
    )
    assert [o["metadata"]["name"] for _, o in events(s, resource_version="3")] == ["z", "w"]
    assert err(apply(s, Compact(4))[1], Reason.GONE)
    assert err(apply(s, Compact(99))[1], Reason.BAD_REQUEST)


def test_model_step_accepts_a_watch_cache_replay_from_a_compacted_revision() -> None:
    # Pods y@3, z@4, w@5 after x@2; compacted at 4, the store has forgotten revision 3.
    history = populated()
    compacted, _ = run(Compact(4), state=history)
    model = Model()
    from_two = Watch("pods", resource_version="2")
    replay = apply(history, from_two)[1]
    assert isinstance(replay, WatchResponse)
    assert [e.object.metadata["name"] for e in replay.events] == ["y", "z", "w"]
    gone = apply(compacted, from_two)[1]
    assert err(gone, Reason.GONE)  # apply keeps the store's answer
    assert model.step(compacted, from_two, gone) == (True, compacted)
    assert model.step(compacted, from_two, replay) == (True, compacted)
    y, z, w = replay.events
    other_y = WatchEvent(y.type, Object.of(obj_with(y.object, labels={"app": "v"})))
    for wrong in (
        (z, w),  # y, written after 2 and still there at 3, is missing
        (other_y, z, w),  # y unlike the state at 3
        (y, z),  # the part the state vouches for must be exact
        (y, y, z, w),  # one event per revision, in order
        (WatchEvent(EventType.DELETED, y.object), z, w),  # y is there at 3
    ):
        assert not model.step(compacted, from_two, WatchResponse(wrong))[0], wrong
    from_one = apply(history, Watch("pods", resource_version="1"))[1]
    assert model.step(compacted, Watch("pods", resource_version="1"), from_one)[0]
    assert not model.step(compacted, Watch("pods", resource_version="1"), replay)[0]
    # Not compacted away: only apply's answer will do.
    from_three = Watch("pods", resource_version="3")
    assert not model.step(compacted, from_three, replay)[0]


def obj_with(o: Object, **metadata: Any) -> dict[str, Any]:
    content = o.to_dict()
    content["metadata"] = content["metadata"] | metadata
    return content


def test_a_selector_watch_sees_objects_enter_and_leave() -> None:
    s, _ = run(
        create(pod()),
        Patch.of(key(), {"metadata": {"labels": {"app": "w"}}}),
        Patch.of(key(), {"spec": {"v": 1}}),
        Patch.of(key(), {"metadata": {"labels": {"app": "other"}}}),
    )
    got = events(s, resource_version="1", label_selector=selector({"app": "w"}))
    assert [(t, o["metadata"]["resourceVersion"]) for t, o in got] == [
        (EventType.ADDED, "3"),
        (EventType.MODIFIED, "4"),
        (EventType.DELETED, "5"),
    ]
    assert got[-1][1]["metadata"]["labels"] == {"app": "w"}


# -- the model for linearizability, normalize, time ---------------------------------------------


def test_model_step_accepts_what_upstream_allows_and_nothing_else() -> None:
    model = Model()
    s0 = model.init()
    s1, created = apply(s0, create(pod()))
    ok, after = model.step(s0, create(pod()), created)
    assert ok and after == s1
    wrong = ObjectResponse(Object.of(pod()), 201)
    assert model.step(s0, create(pod()), wrong) == (False, s0)
    s2, _ = apply(s1, Patch.of(key(), {"spec": {"v": 1}}))
    stale_list = apply(
        s2, List("pods", resource_version="2", resource_version_match=ResourceVersionMatch.EXACT)
    )[1]
    assert model.step(s2, List("pods", resource_version="0"), stale_list)[0]
    assert model.step(s2, List("pods", resource_version="2"), stale_list)[0]
    assert not model.step(s2, List("pods"), stale_list)[0]
    assert not model.step(s2, List("pods", resource_version="3"), stale_list)[0]
    # A watch from "0" may start from the older state: its ADDED shows revision 2 and the
    # change to revision 3 follows; from "" it must start from the current state.
    old_start = apply(s1, Watch("pods"))[1]
    later = apply(s2, Watch("pods", resource_version="2"))[1]
    assert isinstance(old_start, WatchResponse) and isinstance(later, WatchResponse)
    from_older = WatchResponse((*old_start.events, *later.events))
    assert model.step(s2, Watch("pods", resource_version="0"), from_older)[0]
    assert not model.step(s2, Watch("pods"), from_older)[0]
    assert not model.step(s2, Watch("pods", resource_version="0"), old_start)[0]
    assert model.equal(s2, apply(s2, Get(key()))[0])
    described = model.describe_operation(
        Patch.of(key(), {"spec": {"v": 1}}), apply(s1, Patch.of(key(), {"spec": {"v": 1}}))[1]
    )
    assert described == "Patch pods/default/a -> 200 a@3"
    assert "revision 3" in model.describe_state(s2)


def test_normalize_strips_what_the_model_does_not_own() -> None:
    served = pod()
    served["metadata"].update(
        managedFields=[{"manager": "kubectl"}], selfLink="/api/v1/x", labels={}, annotations=None
    )
    assert normalize(served) == pod()
    assert Object.of(served) == Object.of(pod())
    assert served["metadata"]["managedFields"]  # the argument is left alone


def test_rfc3339_agrees_with_datetime() -> None:
    for seconds in (0, 951_782_400, 951_868_799, T0, 4_102_444_800, 253_402_300_799, -86_400):
        expected = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
        assert rfc3339(seconds) == expected.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert parse_rfc3339(rfc3339(seconds)) == seconds
    for bad in ("2023-02-29T00:00:00Z", "2023-11-14T24:00:00Z", "2023-11-14 22:13:20Z", "x"):
        with pytest.raises(ValueError):
            parse_rfc3339(bad)


def test_invariants_catch_a_corrupted_state() -> None:
    s = populated()
    (_, o1), (k2, _) = s.objects[0], s.objects[1]
    twin = Object(
        json.dumps(
            {
                **o1.to_dict(),
                "metadata": {**o1.metadata, "name": k2.name, "namespace": k2.namespace},
            },
            sort_keys=True,
        )
    )
    broken = KubeState(
        s.revision, s.compact_revision, (s.objects[0], (k2, twin), *s.objects[2:]), s.changes
    )
    found = invariants(broken)
    assert "two objects carry one uid" in found
    assert "two objects carry one resourceVersion" in found
    assert any("history ends in a state other than" in f for f in found)
    assert any(
        "revisions" in f for f in invariants(KubeState(s.revision, 0, s.objects, s.changes[1:]))
    )


def test_event_types_are_upstream_names() -> None:
    assert [t.value for t in EventType] == ["ADDED", "MODIFIED", "DELETED"]
    assert {r.value: r.code for r in Reason} == {
        "NotFound": 404,
        "AlreadyExists": 409,
        "Conflict": 409,
        "Invalid": 422,
        "Expired": 410,
        "BadRequest": 400,
        "Timeout": 504,
        "": 500,
    }
    assert WatchEvent(EventType.ADDED, Object.of(pod())) == WatchEvent(
        EventType.ADDED, Object.of(pod())
    )
