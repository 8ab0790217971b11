"""The informer's cache: client-go's ``cache.Indexer`` (a keyed store plus secondary indexes).

Keys are client-go's ``MetaNamespaceKeyFunc``: ``namespace/name`` for a namespaced object and
``name`` for a cluster-scoped one. Indexers map an index name to a function returning the
index values of an object; ``by_index(name, value)`` then answers "every pod of namespace x" or
"every pod on node y" without a scan.

Thread safety is by design rather than by locking: exactly one Trio task (the informer's
reflector) writes, and every reader runs in the same thread between its checkpoints, so a
reader never sees a half-applied change. Objects handed out are the cache's own: callers must
not change them (client-go's rule too: copy before modifying).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], list[str]]

NAMESPACE_INDEX = "namespace"
"""client-go's ``cache.NamespaceIndex``."""


@attrs.frozen
class DeletedFinalStateUnknown:
    """What a delete handler gets for an object whose deletion the informer did not see as an
    event (it vanished between a watch breaking and the relist): the last state it knew.
    client-go's type of the same name."""

    key: str
    obj: Obj


def meta_namespace_key(obj: Obj) -> str:
    """client-go's ``MetaNamespaceKeyFunc``: ``namespace/name``, or ``name`` when cluster-scoped."""
    meta = obj.get("metadata") or {}
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    return f"{namespace}/{name}" if namespace else str(name)


def deletion_handling_meta_namespace_key(obj: Obj | DeletedFinalStateUnknown) -> str:
    """client-go's ``DeletionHandlingMetaNamespaceKeyFunc``: the tombstone's key, or the
    object's."""
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    return meta_namespace_key(obj)


def split_meta_namespace_key(key: str) -> tuple[str, str]:
    """client-go's ``SplitMetaNamespaceKey``: ``(namespace, name)``; namespace "" if none."""
    namespace, sep, name = key.partition("/")
    if not sep:
        return "", key
    if "/" in name:
        raise ValueError(f"unexpected key format: {key!r}")
    return namespace, name


def object_of(obj: Obj | DeletedFinalStateUnknown) -> Obj:
    """The object itself, unwrapping a tombstone."""
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


def meta_namespace_index(obj: Obj) -> list[str]:
    """client-go's ``MetaNamespaceIndexFunc``: the object's namespace."""
    namespace = (obj.get("metadata") or {}).get("namespace") or ""
    return [namespace] if namespace else []


class Indexer:
    """A keyed cache of objects with named indexes; see the module docstring."""

    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = dict(indexers or {})
        # index name -> index value -> keys
        self._indices: dict[str, dict[str, set[str]]] = {n: {} for n in self._indexers}

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add indexes; allowed at any time, the existing items are indexed at once."""
        for name, fn in indexers.items():
            if name in self._indexers:
                raise ValueError(f"indexer conflict: {name}")
            self._indexers[name] = fn
            self._indices[name] = {}
            for key, obj in self._items.items():
                self._index(name, key, obj)

    # --- writes (the informer's one task only) ---------------------------------------------

    def add(self, obj: Obj) -> Obj | None:
        """Store ``obj`` under its key; returns the object it replaced, if any."""
        key = meta_namespace_key(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name in self._indexers:
            self._index(name, key, obj)
        return old

    update = add

    def delete(self, obj: Obj) -> Obj | None:
        """Remove the object with ``obj``'s key; returns what was stored, if anything."""
        return self.delete_key(meta_namespace_key(obj))

    def delete_key(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def replace(self, items: Iterable[Obj]) -> None:
        """Make the store hold exactly ``items``."""
        self._items = {}
        self._indices = {n: {} for n in self._indexers}
        for obj in items:
            self.add(obj)

    def _index(self, name: str, key: str, obj: Obj) -> None:
        index = self._indices[name]
        for value in self._indexers[name](obj):
            index.setdefault(value, set()).add(key)

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]

    # --- reads -----------------------------------------------------------------------------

    def get_by_key(self, key: str) -> Obj | None:
        return self._items.get(key)

    def get(self, obj: Obj) -> Obj | None:
        return self._items.get(meta_namespace_key(obj))

    def list(self) -> builtins.list[Obj]:
        return list(self._items.values())

    def list_keys(self) -> builtins.list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def by_index(self, index_name: str, value: str) -> builtins.list[Obj]:
        """Every object whose ``index_name`` values include ``value``."""
        if index_name not in self._indices:
            raise KeyError(f"index with name {index_name} does not exist")
        keys = self._indices[index_name].get(value, ())
        return [self._items[k] for k in sorted(keys)]

    def index_keys(self, index_name: str, value: str) -> builtins.list[str]:
        if index_name not in self._indices:
            raise KeyError(f"index with name {index_name} does not exist")
        return sorted(self._indices[index_name].get(value, ()))

    def list_index_func_values(self, index_name: str) -> builtins.list[str]:
        return sorted(self._indices.get(index_name, {}))
