"""The object model's linearizability check has teeth: hand-made histories of object requests
that no order explains are refused (a lost update, a stale quorum read, a reused
resourceVersion, a 409 to a matching precondition, two creates answered 201), and legal ones
(lost answers, concurrent requests, cached reads, the API server's own creates) are accepted.
The recorder's reading of requests and answers is checked on the paths and bodies the
components send."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing

from raftkube.kubeclient import KubeConnectionError
from raftkube_fuzz.checks.history import Failed, History, Ok, Outcome, Unknown
from raftkube_fuzz.checks.linearizability.object_model import (
    EXACT,
    AlreadyExists,
    Conflict,
    NotFound,
    ObjectRequest,
    Others,
    Seen,
    Wrote,
)
from raftkube_fuzz.checks.object_linearizability import check_object_histories
from raftkube_fuzz.cluster.object_history import ObjectHistories, answer_of, request_of
from raftkube_fuzz.violation import Violation


def req(verb: str, kind: str = "Lease", name: str = "node-1", **kw: Any) -> ObjectRequest:
    return ObjectRequest(verb, kind, "kube-node-lease", name, **kw)


def seen(uid: str, rv: int, digest: str = "d", **kw: Any) -> Outcome:
    """The server's answer (the history's types are the KV store's; the search is not)."""
    return Ok(Seen(uid, rv, digest, **kw))  # type: ignore[arg-type]


def ok(answer: Any) -> Outcome:
    return Ok(answer)


Op = tuple[ObjectRequest, float, float | None, Outcome | None]


def histories(*ops: Op) -> ObjectHistories:
    """Operations ``(request, call, ret, outcome)`` in call order, each into its key's
    history; a ``ret`` of None leaves the operation pending."""
    found = ObjectHistories()
    ids = []
    for i, (request, call, _, _) in enumerate(ops):
        history = found.by_key.setdefault(request.key, History())
        ids.append((history, history.invoke(i, request, call)))  # type: ignore[arg-type]
    for ret, i in sorted((op[2], i) for i, op in enumerate(ops) if op[2] is not None):
        history, op_id = ids[i]
        history.complete(op_id, ops[i][3], ret)  # type: ignore[arg-type]
    return found


def refused(*ops: Op) -> str:
    with pytest.raises(Violation) as caught:
        check_object_histories(histories(*ops))
    assert caught.value.prop == "Linearizability"
    return caught.value.message


def accepted(*ops: Op) -> None:
    check_object_histories(histories(*ops))


CREATED = (req("create"), 0.0, 1.0, seen("u1", 5, new=True))


# --- refused ---------------------------------------------------------------------------------


def test_a_lost_update_two_updates_with_one_precondition_both_applied_is_refused() -> None:
    message = refused(
        CREATED,
        (req("update", rv=5), 2, 3, seen("u1", 7)),
        (req("update", rv=5), 4, 5, seen("u1", 9)),
    )
    assert "Lease/kube-node-lease/node-1" in message


def test_a_conflict_to_a_matching_precondition_is_refused() -> None:
    message = refused(CREATED, (req("update", rv=5), 2, 3, ok(Conflict())))
    assert "preconditions hold" in message


def test_a_stale_quorum_read_is_refused() -> None:
    refused(
        CREATED,
        (req("update", rv=5), 2, 3, seen("u1", 7, "e")),
        (req("get"), 4, 5, seen("u1", 5)),
    )


def test_a_quorum_read_of_a_deleted_object_is_refused() -> None:
    refused(
        CREATED,
        (req("delete"), 2, 3, seen("u1", 6)),
        (req("get"), 4, 5, seen("u1", 5)),
    )


def test_a_resource_version_reused_for_other_content_is_refused() -> None:
    message = refused(CREATED, (req("get"), 2, 3, seen("u1", 5, "other")))
    assert "other content" in message


def test_a_write_answering_the_same_version_with_new_content_is_refused() -> None:
    refused(CREATED, (req("patch"), 2, 3, seen("u1", 5, "other")))


def test_two_creates_of_one_name_both_answered_201_are_refused() -> None:
    message = refused(CREATED, (req("create"), 2, 3, seen("u2", 7, new=True)))
    assert "nobody else deletes it" in message


def test_an_object_appearing_from_nowhere_is_refused() -> None:
    message = refused((req("get"), 0, 1, seen("u1", 5)))
    assert "nobody else creates it" in message


def test_a_cached_read_of_a_later_version_is_refused() -> None:
    refused(CREATED, (req("get", stale_ok=True), 2, 3, seen("u1", 9, cached=True)))


def test_a_foreground_delete_removing_the_object_at_once_is_refused() -> None:
    refused(
        (req("create", "ReplicaSet", "rs-a"), 0, 1, seen("u1", 5, new=True)),
        (req("delete", "ReplicaSet", "rs-a", foreground=True), 2, 3, seen("u1", 6, gone=True)),
    )


def test_creates_across_keys_must_get_growing_versions() -> None:
    with pytest.raises(Violation):
        accepted(CREATED, (req("create", name="node-2"), 2, 3, seen("u2", 4, new=True)))


# --- accepted --------------------------------------------------------------------------------


def test_updates_with_preconditions_in_order_and_a_stale_one_refused_are_accepted() -> None:
    accepted(
        CREATED,
        (req("update", rv=5), 2, 3, seen("u1", 7, "e")),
        (req("update", rv=5), 4, 5, ok(Conflict())),
        (req("get"), 6, 7, seen("u1", 7, "e")),
        (req("get", stale_ok=True), 8, 9, seen("u1", 5, cached=True)),
    )


def test_concurrent_updates_one_wins_are_accepted() -> None:
    accepted(
        CREATED,
        (req("update", rv=5), 2, 6, ok(Conflict())),
        (req("update", rv=5), 3, 5, seen("u1", 8, "e")),
    )


def test_a_lost_write_makes_the_version_unknown_but_newer() -> None:
    accepted(
        CREATED,
        (req("update", rv=5), 2, None, Unknown("timeout")),
        (req("update", rv=5), 4, 5, ok(Conflict())),
        (req("get"), 6, 7, seen("u1", 6, "e")),
    )
    # ... and it is never older than before.
    refused(
        CREATED,
        (req("update", rv=5), 2, None, Unknown("timeout")),
        (req("get"), 6, 7, seen("u1", 4, "e")),
    )


def test_a_no_op_write_answers_the_current_version() -> None:
    accepted(CREATED, (req("patch"), 2, 3, seen("u1", 5)), (req("get"), 4, 5, seen("u1", 5)))


def test_a_pod_marked_bound_evicted_and_removed_is_accepted() -> None:
    pod = {"kind": "Pod", "name": "p"}
    accepted(
        (req("create", **pod), 0, 1, seen("u1", 5, new=True)),
        (req("bind", **pod), 2, 3, ok(Wrote())),
        (req("get", **pod), 4, 5, seen("u1", 8, "bound")),
        (req("evict", **pod), 6, 7, ok(Wrote())),
        (req("get", **pod), 8, 9, seen("u1", 9, "marked", deleting=True)),
        (req("delete", **pod), 10, 11, seen("u1", 10, "marked", deleting=True, gone=None)),
        (req("get", **pod), 12, 13, ok(NotFound())),
        (req("create", **pod), 14, 15, seen("u2", 12, new=True)),
    )


def test_the_servers_startup_objects_may_appear_unrecorded() -> None:
    accepted(
        (ObjectRequest("get", "Service", "default", "kubernetes"), 0, 1, ok(NotFound())),
        (ObjectRequest("get", "Service", "default", "kubernetes"), 2, 3, seen("u", 4)),
    )
    refused(
        (ObjectRequest("get", "Service", "default", "svc-a"), 0, 1, ok(NotFound())),
        (ObjectRequest("get", "Service", "default", "svc-a"), 2, 3, seen("u", 4)),
    )


def test_a_uid_precondition_on_a_missing_object_is_a_conflict() -> None:
    accepted((req("update", uid="u9"), 0, 1, ok(Conflict())))
    accepted(CREATED, (req("create"), 2, 3, ok(AlreadyExists())))


# --- the recorder ----------------------------------------------------------------------------


def test_requests_are_read_as_the_server_reads_them() -> None:
    lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-1"
    body = {"metadata": {"name": "node-1", "resourceVersion": "12", "uid": "u"}}
    found = request_of("PUT", lease, None, body, "node-1")
    assert found == (req("update", rv=12, uid="u", client="node-1"), "")
    pods = "/api/v1/namespaces/default/pods"
    assert request_of("GET", pods, None, None, "x") is None  # a list
    assert request_of("POST", pods, None, {"metadata": {"generateName": "rs-a-"}}, "kcm") == (
        ObjectRequest("create", "Pod", "default", "", client="kcm"),
        "rs-a-",
    )
    delete = request_of(
        "DELETE",
        f"{pods}/p",
        None,
        {"preconditions": {"uid": "u1"}, "propagationPolicy": "Foreground"},
        "kubelet",
    )
    assert delete == (
        ObjectRequest("delete", "Pod", "default", "p", uid="u1", foreground=True, client="kubelet"),
        "",
    )
    node = request_of("GET", "/api/v1/nodes/n1", {"resourceVersion": "0"}, None, "k")
    assert node == (ObjectRequest("get", "Node", "", "n1", stale_ok=True, client="k"), "")
    assert request_of("POST", f"{pods}/p/binding", None, {}, "s")[0].verb == "bind"  # type: ignore[index]
    assert request_of("PATCH", f"{pods}/p", {"dryRun": "All"}, {}, "u") is None


def test_answers_are_read_as_the_model_judges_them() -> None:
    update = req("update", rv=3)
    conflict = json.dumps({"kind": "Status", "reason": "Conflict"}).encode()
    assert answer_of(update, 409, conflict) == Ok(Conflict())  # type: ignore[arg-type]
    assert answer_of(req("patch"), 409, conflict) == Failed("409 Conflict")
    assert isinstance(answer_of(update, 504, b""), Unknown)
    assert answer_of(update, KubeConnectionError("refused", sent=False), b"") == Failed(
        "nothing sent"
    )
    marked = {"metadata": {"uid": "u", "resourceVersion": "9", "deletionTimestamp": "t"}}
    got = answer_of(req("delete"), 200, json.dumps(marked).encode())
    assert isinstance(got, Ok) and got.result.gone is None  # type: ignore[union-attr]
    finalized = {"metadata": {"uid": "u", "resourceVersion": "9", "deletionTimestamp": "t"}}
    got = answer_of(req("update"), 200, json.dumps(finalized).encode())
    assert isinstance(got, Ok) and got.result.gone is True  # type: ignore[union-attr]


def test_the_tracer_keys_a_generated_name_by_its_answer_and_notes_what_it_cannot_key() -> None:
    histories = ObjectHistories()
    pods = "/api/v1/namespaces/default/pods"

    async def main() -> None:
        trace = histories.tracer("kcm-0")
        created = {"metadata": {"name": "rs-a-x1", "uid": "u", "resourceVersion": "7"}}
        trace("POST", pods, None, {"metadata": {"generateName": "rs-a-"}})(
            201, json.dumps(created).encode()
        )
        lost = trace("POST", pods, None, {"metadata": {"generateName": "rs-b-"}})
        lost(KubeConnectionError("connection lost"), b"")
        refused = trace("POST", pods, None, {"metadata": {"generateName": "rs-c-"}})
        refused(409, b'{"kind": "Status", "reason": "AlreadyExists"}')
        trace("DELETE", "/api/v1/namespaces/team-a/pods", None, None)(200, b"{}")

    trio.run(main, clock=trio.testing.MockClock())
    assert sorted(histories.by_key) == ["Pod/default/rs-a-x1"]
    assert histories.others("Pod/default/rs-b-q7") == Others(create=True)
    assert histories.others("Pod/default/rs-c-q7") == EXACT
    assert histories.others("Pod/team-a/anything").loose
    assert histories.others("Namespace//kube-system") == Others(create=True)
