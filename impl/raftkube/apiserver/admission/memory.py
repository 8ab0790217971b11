"""An :class:`~raftkube.apiserver.admission.interfaces.AdmissionContext` held in memory: the
objects the plugins look up and the reservations, for tests of the plugins and of code that
drives the chain, without a store.

``reserve`` and ``release`` pass a Trio checkpoint first, so concurrent tasks interleave there
as they would around a store round trip, and a test of two API servers racing means something.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from typing import Any

import attrs
import trio

from raftkube.apiserver.resources import ResourceInfo


@attrs.define
class InMemoryContext:
    objects: dict[tuple[str, str, str], dict[str, Any]] = attrs.field(factory=dict)
    """``(qualified resource, namespace, name) -> object``."""
    reservations: dict[str, str] = attrs.field(factory=dict)
    """``key -> owner``."""

    def put(self, resource: ResourceInfo, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (resource.qualified, str(meta.get("namespace", "")), str(meta.get("name", "")))
        self.objects[key] = copy.deepcopy(obj)

    async def get(self, resource: ResourceInfo, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.objects.get((resource.qualified, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    async def reserve(self, key: str, owner: str) -> bool:
        await trio.lowlevel.checkpoint()
        if key in self.reservations:
            return False
        self.reservations[key] = owner
        return True

    async def release(self, key: str, owner: str) -> None:
        await trio.lowlevel.checkpoint()
        if self.reservations.get(key) == owner:
            del self.reservations[key]

    async def held(self, prefix: str) -> Collection[str]:
        return [k for k in self.reservations if k.startswith(prefix)]
