"""Informers whose caches a test sets by hand, for the request-conformance tests: the monitor
reads a sync's view from the informers a loop names, never from a server, so none is dialled."""

from __future__ import annotations

from typing import Any

from raftkube.apiserver.resources import lookup
from raftkube.clock import Clock
from raftkube.controllers.informer import SharedIndexInformer
from raftkube.controllers.listwatch import ListWatch
from raftkube.kubeclient import KubeClient

Obj = dict[str, Any]


def set_cache(made: SharedIndexInformer, items: list[Obj], version: int) -> None:
    """``made``'s cache now holds ``items``, listed at resourceVersion ``version``."""
    made.replace(items, str(version))
    made.reflector.last_sync_resource_version = str(version)


def cached_informer(
    group: str, resource: str, items: list[Obj], version: int, clock: Clock | None = None
) -> SharedIndexInformer:
    """An informer of ``group``/v1 ``resource`` whose cache holds ``items`` at ``version``."""
    info = lookup(group, "v1", resource)
    assert info is not None
    client = KubeClient("https://127.0.0.1:1")
    made = SharedIndexInformer(
        ListWatch(client, info), clock=clock or client.clock, name=info.qualified
    )
    set_cache(made, items, version)
    return made
