"""The object model's linearizability check has teeth: hand-made histories of the user's
object requests that no order explains are refused, and legal ones (lost answers, other
writers' moves the model allows) are accepted."""

from __future__ import annotations

import pytest

from raftkube.kubeclient import KubeAPIError, KubeConnectionError
from raftkube_fuzz.checks.history import Failed, History, Ok, Outcome, Unknown
from raftkube_fuzz.checks.linearizability.object_model import (
    AlreadyExists,
    Created,
    Deleted,
    NotFound,
    ObjectRequest,
    Patched,
    Seen,
    digest_of,
    project,
)
from raftkube_fuzz.checks.object_linearizability import check_object_histories
from raftkube_fuzz.cluster.object_history import ObjectHistories, outcome_of_error
from raftkube_fuzz.violation import Violation

SPEC1 = digest_of({"replicas": 1})
SPEC2 = digest_of({"replicas": 2})


def create(kind: str = "ReplicaSet", name: str = "rs-a", digest: str = SPEC1) -> ObjectRequest:
    return ObjectRequest("create", kind, "default", name, digest)


def patch(digest: str, kind: str = "ReplicaSet", name: str = "rs-a") -> ObjectRequest:
    return ObjectRequest("patch", kind, "default", name, digest)


def delete(kind: str = "ReplicaSet", foreground: bool = False) -> ObjectRequest:
    name = "pinned" if kind == "Pod" else "rs-a"
    return ObjectRequest("delete", kind, "default", name, foreground=foreground)


def ok(answer: Seen) -> Outcome:
    """The server's answer (the history's types are the KV store's; the search is not)."""
    return Ok(answer)  # type: ignore[arg-type]


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


def test_two_creates_of_one_name_both_created_are_refused() -> None:
    message = refused(
        (create(), 0, 1, ok(Created("u1", 5, SPEC1))),
        (create(), 2, 3, ok(Created("u2", 7, SPEC1))),
    )
    assert "ReplicaSet/default/rs-a" in message and "nobody else deletes it" in message


def test_an_answer_older_than_a_completed_write_is_refused() -> None:
    message = refused(
        (create(), 0, 1, ok(Created("u1", 5, SPEC1))),
        (patch(SPEC2), 2, 3, ok(Patched("u1", 9, SPEC2, False))),
        (patch(SPEC1), 4, 5, ok(Patched("u1", 8, SPEC1, False))),
    )
    assert "revision went back" in message and "revision 8" in message


def test_a_create_refused_after_a_completed_delete_is_refused() -> None:
    refused(
        (create(), 0, 1, ok(Created("u1", 5, SPEC1))),
        (delete(), 2, 3, ok(Deleted("u1", 5, False))),
        (create(), 4, 5, ok(AlreadyExists())),
    )


def test_another_objects_uid_is_refused() -> None:
    message = refused(
        (create(), 0, 1, ok(Created("u1", 5, SPEC1))),
        (patch(SPEC2), 2, 3, ok(Patched("u9", 9, SPEC2, False))),
    )
    assert "uid" in message


def test_a_foreground_deletion_that_goes_away_unfinished_is_refused() -> None:
    refused(
        (create(), 0, 1, ok(Created("u1", 5, SPEC1))),
        (delete(foreground=True), 2, 3, ok(Deleted("u1", 6, True))),
        (patch(SPEC2), 4, 5, ok(Patched("u1", 7, SPEC2, False))),
    )


def test_a_spec_change_without_a_new_resource_version_is_refused() -> None:
    refused(
        (create(), 0, 1, ok(Created("u1", 5, SPEC1))),
        (patch(SPEC2), 2, 3, ok(Patched("u1", 5, SPEC2, False))),
    )


def test_creates_across_keys_must_get_growing_resource_versions() -> None:
    message = refused(
        (create(name="rs-a"), 0, 1, ok(Created("u1", 10, SPEC1))),
        (create(name="rs-b"), 2, 3, ok(Created("u2", 9, SPEC1))),
    )
    assert "revision went back" in message


def test_lost_answers_may_or_may_not_have_taken_effect() -> None:
    check_object_histories(
        histories(
            # A create whose answer was lost, then a patch of the object it made: it did.
            (create(), 0, None, Unknown("connection reset")),
            (patch(SPEC2), 2, 3, ok(Patched("u1", 7, SPEC2, False))),
            # A delete whose answer was lost, then a create that succeeds: it did too.
            (delete(), 4, None, Unknown("504 Timeout")),
            (create(), 6, 7, ok(Created("u2", 9, SPEC1))),
            # One more lost delete, and a refused create: it did not.
            (delete(), 8, None, Unknown("connection reset")),
            (create(), 10, 11, ok(AlreadyExists())),
            (patch(SPEC1), 12, 13, ok(Patched("u2", 12, SPEC1, False))),
        )
    )


def test_overlapping_requests_may_take_effect_in_either_order() -> None:
    check_object_histories(
        histories(
            (create(), 0, 4, ok(AlreadyExists())),
            (create(), 1, 3, ok(Created("u1", 5, SPEC1))),
            # A patch of the spec the create sent, answered with the create's own
            # resourceVersion: it changed nothing, so it came after the create.
            (patch(SPEC1), 2, 6, ok(Patched("u1", 5, SPEC1, False))),
        )
    )
    # The patch's answer shows the spec it sent, at the create's own resourceVersion: the
    # create must have come after the patch, which a 201 to it then rules out.
    refused(
        (create(), 0, 1, ok(Created("u1", 5, SPEC1))),
        (patch(SPEC1), 2, 3, ok(Patched("u1", 5, SPEC1, False))),
        (patch(SPEC2), 4, 5, ok(Patched("u1", 5, SPEC2, False))),
    )


def test_other_writers_may_delete_a_pod_but_not_a_replica_set() -> None:
    pod_ops: list[Op] = [
        (create("Pod", "pinned"), 0, 1, ok(Created("p1", 5, SPEC1))),
        (create("Pod", "pinned"), 2, 3, ok(Created("p2", 8, SPEC1))),
        (delete("Pod"), 4, 5, ok(Deleted("p2", 9, True))),
        (delete("Pod"), 6, 7, ok(NotFound())),
    ]
    check_object_histories(histories(*pod_ops))
    refused(
        (create(), 0, 1, ok(Created("u1", 5, SPEC1))),
        (delete(), 2, 3, ok(NotFound())),
    )


def test_an_answer_is_judged_as_applied_refused_or_unknown() -> None:
    create_request, patch_request = create(), patch(SPEC1)

    def error(code: int, reason: str) -> KubeAPIError:
        return KubeAPIError({"code": code, "reason": reason, "message": "m"})

    assert outcome_of_error(create_request, error(409, "AlreadyExists")) == ok(AlreadyExists())
    assert outcome_of_error(patch_request, error(404, "NotFound")) == ok(NotFound())
    assert isinstance(outcome_of_error(patch_request, error(409, "Conflict")), Failed)
    assert isinstance(outcome_of_error(create_request, error(422, "Invalid")), Failed)
    assert isinstance(outcome_of_error(create_request, error(504, "Timeout")), Unknown)
    assert isinstance(outcome_of_error(create_request, KubeConnectionError("reset")), Unknown)


def test_an_answer_is_digested_on_the_fields_the_request_set() -> None:
    sent = {"replicas": 2, "template": {"spec": {"containers": [{"name": "app"}]}}}
    answered = {
        "replicas": 2,
        "minReadySeconds": 0,
        "template": {"spec": {"containers": [{"name": "app", "imagePullPolicy": "Always"}]}},
    }
    assert digest_of(project(answered, sent)) == digest_of(sent)
    assert digest_of(project({**answered, "replicas": 3}, sent)) != digest_of(sent)
