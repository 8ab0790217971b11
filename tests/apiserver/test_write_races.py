"""Writes that race: an unconditional patch is recomputed on the newer object, as upstream's
GuaranteedUpdate recomputes it, so a client patching an object that a controller keeps
rewriting (a Deployment whose status is being updated) does not see 409 Conflict; a patch that
pins a resourceVersion does."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from raftkube.apiserver.resources import lookup
from raftkube.kubeclient.errors import KubeAPIError
from tests.helpers.api_server import APIHarness

CONFIGMAPS = lookup("", "v1", "configmaps")
assert CONFIGMAPS is not None


def _race_every_read(api: APIHarness, races: int) -> list[int]:
    """Make the next ``races`` reads of the object by the server be beaten by another writer:
    each read is followed, before the patch can be written, by a write of a new label."""
    store = api.running.api.services.store
    original_get = store.get
    done: list[int] = []

    async def get(resource: Any, namespace: str, name: str, *args: Any, **kw: Any) -> Any:
        obj = await original_get(resource, namespace, name, *args, **kw)
        if len(done) < races:
            racer = copy.deepcopy(obj)
            racer["metadata"].setdefault("labels", {})[f"race-{len(done)}"] = "won"
            await store.update(resource, racer, expected_rv=int(obj["metadata"]["resourceVersion"]))
            done.append(1)
        return obj

    store.get = get  # type: ignore[method-assign]
    return done


@pytest.mark.trio
async def test_unconditional_patch_is_recomputed_past_many_racing_writes(api: APIHarness) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hot"}, "data": {"a": "1"}}
    await api.admin.create(CONFIGMAPS, cm, namespace="default")
    races = _race_every_read(api, 12)
    patched = await api.admin.patch(CONFIGMAPS, "hot", {"data": {"b": "2"}}, namespace="default")
    assert len(races) == 12
    assert patched["data"] == {"a": "1", "b": "2"}
    assert sorted(patched["metadata"]["labels"]) == sorted(f"race-{i}" for i in range(12))


@pytest.mark.trio
async def test_patch_pinning_a_resource_version_gets_409_when_beaten(api: APIHarness) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "pin"}, "data": {"a": "1"}}
    created = await api.admin.create(CONFIGMAPS, cm, namespace="default")
    races = _race_every_read(api, 1)
    rv = created["metadata"]["resourceVersion"]
    body = {"metadata": {"resourceVersion": rv}, "data": {"b": "2"}}
    with pytest.raises(KubeAPIError) as caught:
        await api.admin.patch(CONFIGMAPS, "pin", body, namespace="default")
    assert len(races) == 1
    assert caught.value.code == 409
    stored = await api.admin.get(CONFIGMAPS, "pin", namespace="default")
    assert stored["data"] == {"a": "1"}


@pytest.mark.trio
async def test_unconditional_delete_is_retried_past_racing_writes(api: APIHarness) -> None:
    held = {"name": "held", "finalizers": ["example.com/hold"]}
    for metadata in ({"name": "plain"}, held):
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"a": "1"}}
        await api.admin.create(CONFIGMAPS, cm, namespace="default")
    races = _race_every_read(api, 3)
    await api.admin.delete(CONFIGMAPS, "plain", namespace="default")
    assert len(races) == 3
    with pytest.raises(KubeAPIError) as caught:
        await api.admin.get(CONFIGMAPS, "plain", namespace="default")
    assert caught.value.code == 404
    races = _race_every_read(api, 3)
    marked = await api.admin.delete(CONFIGMAPS, "held", namespace="default")
    assert len(races) == 3
    assert marked["metadata"]["deletionTimestamp"]


@pytest.mark.trio
async def test_delete_with_a_uid_precondition_is_retried_past_racing_writes(
    api: APIHarness,
) -> None:
    """Upstream's conditionalDelete judges the preconditions again on the newer object after a
    lost race: a uid still matches after another writer's update, a resourceVersion does not.
    (Found by the cluster suite's object linearizability check: the ReplicaSet controller's
    delete of a pod whose kubelet was writing its status was answered 409.)"""
    for name in ("by-uid", "by-rv"):
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
        created = await api.admin.create(CONFIGMAPS, cm, namespace="default")
        meta = created["metadata"]
        pre = (
            {"uid": meta["uid"]}
            if name == "by-uid"
            else {"resourceVersion": meta["resourceVersion"]}
        )
        races = _race_every_read(api, 1)
        options = {"preconditions": pre}
        if name == "by-uid":
            await api.admin.delete(CONFIGMAPS, name, namespace="default", options=options)
        else:
            with pytest.raises(KubeAPIError) as caught:
                await api.admin.delete(CONFIGMAPS, name, namespace="default", options=options)
            assert caught.value.code == 409 and "ResourceVersion in the precondition" in str(
                caught.value
            )
        assert len(races) == 1
    with pytest.raises(KubeAPIError) as gone:
        await api.admin.get(CONFIGMAPS, "by-uid", namespace="default")
    assert gone.value.code == 404
    assert await api.admin.get(CONFIGMAPS, "by-rv", namespace="default")
