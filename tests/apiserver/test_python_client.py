"""The official ``kubernetes`` Python client, as a user writes it: list, watch, create, patch
(its dict body is a strategic merge patch, its list body a JSON patch), delete, and the
ApiException a refused request raises.

The client is synchronous, so each call runs in a worker thread while the server runs in the
test's Trio loop.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import trio
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.helpers.api_server import APIHarness

T = TypeVar("T")


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


def core(api: APIHarness) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(str(api.kubeconfig)))


@pytest.mark.trio
async def test_list_create_patch_delete(api: APIHarness) -> None:
    v1 = core(api)
    with trio.fail_after(30):
        names = [n.metadata.name for n in (await blocking(v1.list_namespace)).items]
        assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]

        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c1"), data={"a": "1"})
        created = await blocking(v1.create_namespaced_config_map, "default", body)
        assert created.metadata.uid and created.data == {"a": "1"}

        merged = await blocking(
            v1.patch_namespaced_config_map, "c1", "default", {"data": {"b": "2"}}
        )
        assert merged.data == {"a": "1", "b": "2"}
        patched = await blocking(
            v1.patch_namespaced_config_map,
            "c1",
            "default",
            [{"op": "replace", "path": "/data/a", "value": "9"}],
        )
        assert patched.data == {"a": "9", "b": "2"}
        assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)

        await blocking(v1.delete_namespaced_config_map, "c1", "default")
        with pytest.raises(ApiException) as refused:
            await blocking(v1.read_namespaced_config_map, "c1", "default")
        assert refused.value.status == 404


@pytest.mark.trio
async def test_a_stale_update_is_a_conflict(api: APIHarness) -> None:
    v1 = core(api)
    with trio.fail_after(30):
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c2"), data={"a": "1"})
        first = await blocking(v1.create_namespaced_config_map, "default", body)
        first.data = {"a": "2"}
        await blocking(v1.replace_namespaced_config_map, "c2", "default", first)
        first.data = {"a": "3"}  # still carries the resourceVersion it was read at
        with pytest.raises(ApiException) as refused:
            await blocking(v1.replace_namespaced_config_map, "c2", "default", first)
        assert refused.value.status == 409
        assert "the object has been modified" in refused.value.body


@pytest.mark.trio
async def test_watch_streams_events_from_a_resource_version(api: APIHarness) -> None:
    v1 = core(api)
    with trio.fail_after(30):
        listed = await blocking(v1.list_namespaced_config_map, "default")
        start = listed.metadata.resource_version
        for n in range(3):
            body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"w{n}"))
            await blocking(v1.create_namespaced_config_map, "default", body)
        await blocking(v1.delete_namespaced_config_map, "w1", "default")

        def collect() -> list[tuple[str, str]]:
            seen = []
            stream = watch.Watch().stream(
                v1.list_namespaced_config_map,
                "default",
                resource_version=start,
                timeout_seconds=1,
            )
            for event in stream:
                seen.append((event["type"], event["object"].metadata.name))
            return seen

        seen = await blocking(collect)
        assert seen == [("ADDED", "w0"), ("ADDED", "w1"), ("ADDED", "w2"), ("DELETED", "w1")]
