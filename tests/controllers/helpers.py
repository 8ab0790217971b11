"""Helpers shared by the controllers' tests: objects, polling a real server, clocks."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import attrs
import trio

from raftkube.apiserver.resources import ResourceInfo
from raftkube.clock import Clock
from raftkube.kubeclient import KubeAPIError, KubeClient

Obj = dict[str, Any]


def configmap(name: str, namespace: str = "default") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"k": name},
    }


async def wait_for(predicate: Callable[[], object], what: str, timeout: float = 15) -> None:
    """Poll a condition the real server's work will make true (real sockets: real time)."""
    with trio.move_on_after(timeout):
        while not predicate():
            await trio.sleep(0.02)
        return
    raise AssertionError(f"timed out waiting for {what}")


@attrs.frozen
class OffsetClock:
    """``base`` read ``offset`` seconds ahead (or behind): a host whose clock disagrees with
    the others' by a fixed amount while time passes at the same rate for all."""

    base: Clock
    offset: float

    def now(self) -> float:
        return self.base.now() + self.offset

    async def sleep_until(self, deadline: float) -> None:
        await self.base.sleep_until(deadline - self.offset)

    def cancel_scope_at(self, deadline: float) -> trio.CancelScope:
        return self.base.cancel_scope_at(deadline - self.offset)


class UnusedListWatch:
    """A ListerWatcher for an informer that is fed by hand and never run."""

    async def list(self, resource_version: str) -> Obj:
        raise AssertionError("not to be listed")

    def watch(self, resource_version: str, timeout: int) -> AbstractAsyncContextManager[Any]:
        raise AssertionError("not to be watched")


async def get_or_none(
    client: KubeClient, resource: ResourceInfo, name: str, namespace: str = ""
) -> Obj | None:
    """The object, or None on 404."""
    try:
        result: Obj = await client.get(resource, name, namespace=namespace)
    except KubeAPIError as exc:
        if exc.code == 404:
            return None
        raise
    return result


async def eventually(check: Callable[[], Any], what: str, timeout: float = 15) -> Any:
    """Await ``check()`` until it returns something truthy (real server: real time)."""
    with trio.move_on_after(timeout):
        while not (result := await check()):
            await trio.sleep(0.05)
        return result
    raise AssertionError(f"timed out waiting for {what}")
