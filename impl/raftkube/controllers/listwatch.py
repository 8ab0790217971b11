"""What a reflector lists and watches: client-go's ``ListerWatcher`` and ``ListWatch``.

The reflector only needs two calls, so it takes this small interface rather than a client; a
test can wrap a real :class:`ListWatch` to hold a watch back or cut one short.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import attrs

from raftkube.apiserver.resources import ResourceInfo
from raftkube.kubeclient import KubeClient

Obj = dict[str, Any]
WatchEvent = tuple[str, Obj]
WatchStream = AbstractAsyncContextManager[AsyncIterator[WatchEvent]]


class ListerWatcher(Protocol):
    async def list(self, resource_version: str) -> Obj:
        """One list of the collection (a ``...List`` object with ``metadata.resourceVersion``);
        ``resource_version`` "" is a consistent read, "0" any cached state, else not older
        than it."""
        ...

    def watch(self, resource_version: str, timeout_seconds: int) -> WatchStream:
        """A watch from ``resource_version`` with bookmarks: ``async with lw.watch(...) as
        events: async for type, obj in events``; refused watches raise on entry."""
        ...


@attrs.frozen
class ListWatch:
    """A :class:`ListerWatcher` of one resource (in one namespace, or all when ""), optionally
    narrowed by selectors, through ``client``.

    List items come without ``kind``/``apiVersion`` on the wire; they are filled in so that
    every cached object is a complete object a controller can send back."""

    client: KubeClient
    resource: ResourceInfo
    namespace: str = ""
    label_selector: str = ""
    field_selector: str = ""

    async def list(self, resource_version: str) -> Obj:
        listed = await self.client.list(
            self.resource,
            namespace=self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            resource_version=resource_version,
        )
        for item in listed.get("items") or []:
            item.setdefault("kind", self.resource.kind)
            item.setdefault("apiVersion", self.resource.group_version)
        return listed

    def watch(self, resource_version: str, timeout_seconds: int) -> WatchStream:
        return self.client.watch(
            self.resource,
            namespace=self.namespace,
            resource_version=resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout_seconds,
        )
