"""Objects as the model keeps them: canonical JSON text under a store key.

An object is stored as its canonical JSON text (keys sorted, no insignificant whitespace)
rather than as a frozen mapping. Text is immutable and hashable for free, two objects are equal
exactly when their JSON is, a state's hash stays cheap for a memoizing search, and nothing a
caller does to a dict it was handed can reach back into a state. The price is a parse when a
transition reads a field, which for objects of a few hundred bytes is cheaper than keeping a
parallel frozen structure in step with the text.

:func:`normalize` is the one definition of "the part of an object the model owns". The model
applies it to everything it stores, and a checker applies it to what a real server returns, so
that both sides are compared in the same shape.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import attrs

JSONObject = dict[str, Any]
"""A decoded JSON object, as the API server handles objects."""

UNOWNED_METADATA = ("managedFields", "selfLink")
"""Metadata a real server writes that this model does not: server-side apply's field
ownership, and the long-deprecated self link."""


@attrs.frozen
class ObjectKey:
    """Where an object lives: its resource, namespace (``""`` if cluster-scoped) and name.

    ``resource`` is the group-qualified resource as upstream prints it in messages, ``pods``
    for the core group and ``deployments.apps`` otherwise.
    """

    resource: str
    namespace: str
    name: str

    @property
    def group(self) -> str:
        return self.resource.partition(".")[2]

    @property
    def path(self) -> str:
        """The key below the resource's prefix, as the store spells it: ``ns/name`` or ``name``."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def sort_key(self) -> tuple[str, str]:
        """Store order: by resource, then by the byte order of :attr:`path` (so ``a-b/x``
        sorts before ``a/x``, as the store's keys do, and unlike a field-by-field order)."""
        return (self.resource, self.path)

    def __str__(self) -> str:
        return f"{self.resource}/{self.path}"


def normalize(obj_json: Mapping[str, Any]) -> JSONObject:
    """A deep copy of ``obj_json`` in the shape the model stores and compares.

    Dropped: :data:`UNOWNED_METADATA`, and metadata fields that are ``null`` or empty (every
    ``ObjectMeta`` field is ``omitempty`` upstream, so a server never sends ``labels: {}`` or
    ``finalizers: []``, while a client may). Everything else is kept as is: the model does not
    default or validate content, so a side-by-side check feeds both sides objects the server
    stores unchanged apart from the metadata the model owns.
    """
    out: JSONObject = copy.deepcopy(dict(obj_json))
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        out["metadata"] = {
            k: v
            for k, v in metadata.items()
            if k not in UNOWNED_METADATA and v is not None and v != {} and v != [] and v != ""
        }
    return out


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@attrs.frozen(cache_hash=True)
class Object:
    """One stored object: the canonical JSON text of its normalized content."""

    text: str

    @classmethod
    def of(cls, content: Mapping[str, Any]) -> Object:
        return cls(canonical_json(normalize(content)))

    def to_dict(self) -> JSONObject:
        """A fresh decoded copy; changing it changes nothing in the model."""
        decoded: JSONObject = json.loads(self.text)
        return decoded

    @property
    def metadata(self) -> JSONObject:
        found = self.to_dict().get("metadata")
        return found if isinstance(found, dict) else {}

    @property
    def kind(self) -> str:
        kind = self.to_dict().get("kind")
        return kind if isinstance(kind, str) else ""

    @property
    def resource_version(self) -> str:
        return str(self.metadata.get("resourceVersion", ""))

    @property
    def uid(self) -> str:
        return str(self.metadata.get("uid", ""))

    @property
    def finalizers(self) -> tuple[str, ...]:
        return tuple(str(f) for f in self.metadata.get("finalizers", ()))

    @property
    def labels(self) -> dict[str, str]:
        found = self.metadata.get("labels", {})
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    def with_resource_version(self, revision: int) -> Object:
        content = self.to_dict()
        content.setdefault("metadata", {})["resourceVersion"] = str(revision)
        return Object.of(content)


def metadata_of(content: JSONObject) -> JSONObject:
    """``content["metadata"]``, created empty if missing, for editing in place."""
    found = content.get("metadata")
    if not isinstance(found, dict):
        found = content["metadata"] = {}
    return found
