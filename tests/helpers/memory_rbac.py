"""An in-memory RBACSource for the authorization tests: what the watch caches give the
authorizer in the server."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Obj = dict[str, Any]


class Source:
    """An in-memory RBACSource."""

    def __init__(self, objects: Iterable[Obj]) -> None:
        self.objects = list(objects)

    def _of(self, kind: str, namespace: str = "") -> list[Obj]:
        return [
            o
            for o in self.objects
            if o["kind"] == kind and o["metadata"].get("namespace", "") == namespace
        ]

    def _named(self, kind: str, name: str, namespace: str = "") -> Obj | None:
        return next((o for o in self._of(kind, namespace) if o["metadata"]["name"] == name), None)

    def cluster_roles(self) -> list[Obj]:
        return self._of("ClusterRole")

    def cluster_role(self, name: str) -> Obj | None:
        return self._named("ClusterRole", name)

    def cluster_role_bindings(self) -> list[Obj]:
        return self._of("ClusterRoleBinding")

    def roles(self, namespace: str) -> list[Obj]:
        return self._of("Role", namespace)

    def role(self, namespace: str, name: str) -> Obj | None:
        return self._named("Role", name, namespace)

    def role_bindings(self, namespace: str) -> list[Obj]:
        return self._of("RoleBinding", namespace)
