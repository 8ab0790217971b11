"""Where the API server disagreed with upstream Kubernetes (found by the side-by-side run of
``test_model_conformance.py``), each case as upstream answers it.

* A list with ``resourceVersionMatch`` and no ``resourceVersion`` is 422 on ``ListOptions``
  (``ValidateListOptions``), not 400.
* A PUT's uid is a store precondition (``defaultUpdatedObjectInfo.Preconditions``): another
  uid, or an object that is gone, is 409 Conflict carrying the etcd3 store's ``StorageError``.
* A delete's preconditions are judged by ``rest.BeforeDelete``, which names the kind.
* ``propagationPolicy`` sets the garbage-collection finalizers as
  ``deletionFinalizersForGarbageCollection`` does: ``Orphan`` replaces ``foregroundDeletion``,
  ``Background`` removes both (and an object left with none goes at once).
* An update that removes the last finalizer of an object being deleted answers with the object
  as updated, at the version it replaced (``deleteWithoutFinalizers``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from raftkube.apiserver.resources import lookup
from raftkube.kubeclient.client import resource_path
from tests.helpers.api_server import APIHarness

CONFIGMAPS = lookup("", "v1", "configmaps")
assert CONFIGMAPS is not None
NS = "default"


def configmap(name: str, finalizers: tuple[str, ...] = ()) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


async def send(
    api: APIHarness, method: str, name: str = "", body: Any = None, query: Any = None
) -> tuple[int, dict[str, Any]]:
    path = resource_path(CONFIGMAPS, namespace=NS, name=name)
    code, _, data = await api.admin.request(method, path, body=body, query=query)
    return code, json.loads(data)


@pytest.mark.trio
async def test_list_options_are_validated_as_upstream(api: APIHarness) -> None:
    with trio.fail_after(20):
        code, body = await send(api, "GET", query={"resourceVersionMatch": "NotOlderThan"})
    assert (code, body["reason"]) == (422, "Invalid")
    assert body["message"] == (
        'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
        "resourceVersionMatch is forbidden unless resourceVersion is provided"
    )


@pytest.mark.trio
async def test_an_update_naming_another_uid_is_a_conflict(api: APIHarness) -> None:
    with trio.fail_after(20):
        code, created = await send(api, "POST", body=configmap("u"))
        assert code == 201
        stored_uid = created["metadata"]["uid"]
        other = {**created, "metadata": {**created["metadata"], "uid": "not-the-uid"}}
        code, body = await send(api, "PUT", "u", body=other)
        assert (code, body["reason"]) == (409, "Conflict")
        assert body["message"] == (
            'Operation cannot be fulfilled on configmaps "u": StorageError: invalid object, '
            "Code: 4, Key: /registry/configmaps/default/u, ResourceVersion: 0, "
            "AdditionalErrorMsg: Precondition failed: UID in precondition: not-the-uid, "
            f"UID in object meta: {stored_uid}"
        )
        assert (await send(api, "DELETE", "u"))[0] == 200
        code, body = await send(api, "PUT", "u", body=created)
    assert (code, body["reason"]) == (409, "Conflict")
    assert body["message"].endswith(f"UID in precondition: {stored_uid}, UID in object meta: ")


@pytest.mark.trio
async def test_delete_preconditions_name_the_kind(api: APIHarness) -> None:
    with trio.fail_after(20):
        code, created = await send(api, "POST", body=configmap("p"))
        rv = created["metadata"]["resourceVersion"]
        wrong_uid = {"preconditions": {"uid": "u-wrong"}}
        code, by_uid = await send(api, "DELETE", "p", body=wrong_uid)
        stale = {"preconditions": {"resourceVersion": str(int(rv) - 1)}}
        _, by_rv = await send(api, "DELETE", "p", body=stale)
    assert (code, by_uid["reason"]) == (409, "Conflict")
    assert by_uid["message"] == (
        f'Operation cannot be fulfilled on ConfigMap "p": the UID in the precondition (u-wrong) '
        f"does not match the UID in record ({created['metadata']['uid']}). The object might "
        "have been deleted and then recreated"
    )
    assert by_rv["message"] == (
        f'Operation cannot be fulfilled on ConfigMap "p": the ResourceVersion in the '
        f"precondition ({int(rv) - 1}) does not match the ResourceVersion in record ({rv}). "
        "The object might have been modified"
    )


@pytest.mark.trio
async def test_propagation_policy_sets_the_gc_finalizers(api: APIHarness) -> None:
    with trio.fail_after(20):
        await send(api, "POST", body=configmap("f", ("example.com/a", "foregroundDeletion")))
        code, orphaned = await send(api, "DELETE", "f", body={"propagationPolicy": "Orphan"})
        assert code == 200
        assert orphaned["metadata"]["finalizers"] == ["example.com/a", "orphan"]
        await send(api, "POST", body=configmap("g", ("orphan",)))
        code, _ = await send(api, "DELETE", "g", body={"propagationPolicy": "Background"})
        assert code == 200
        assert (await send(api, "GET", "g"))[0] == 404


@pytest.mark.trio
async def test_removing_the_last_finalizer_answers_the_updated_object(api: APIHarness) -> None:
    with trio.fail_after(20):
        await send(api, "POST", body=configmap("h", ("example.com/a",)))
        _, deleting = await send(api, "DELETE", "h")
        updated = {**deleting, "metadata": {**deleting["metadata"], "finalizers": []}}
        updated["metadata"]["labels"] = {"last": "words"}
        code, answer = await send(api, "PUT", "h", body=updated)
        assert (await send(api, "GET", "h"))[0] == 404
    assert code == 200
    assert answer["metadata"]["resourceVersion"] == deleting["metadata"]["resourceVersion"]
    assert answer["metadata"]["labels"] == {"last": "words"}
    assert not answer["metadata"].get("finalizers")
