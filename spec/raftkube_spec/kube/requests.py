"""What a client can ask of the object API, as frozen values.

Each request carries everything the outcome depends on, including what a real server decides
for itself before it writes: the uid it generates, the clock reading it stamps, the random
suffix it appends to ``generateName``. A checker fills those in from the server's answer (the
uid and creation time of the object it returned), so the model stays deterministic.

Query parameters keep their wire form where the wire form has meaning: ``resourceVersion`` is a
string because ``""`` (most recent), ``"0"`` (any) and ``"17"`` mean three different things.
Patches are JSON merge patches (RFC 7386), the one patch type that is a pure function of the
object and the patch document; JSON patch and strategic merge patch are computed by the server
and reach the model as the :class:`Update` they amount to.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from raftkube_spec.kube.objects import Object, ObjectKey, canonical_json

Selector = tuple[tuple[str, str], ...]
"""An equality-based label selector, as sorted (key, value) pairs: all must match."""

Subresource = Literal["", "status"]


def selector(labels: Mapping[str, str]) -> Selector:
    return tuple(sorted(labels.items()))


class ResourceVersionMatch(enum.Enum):
    NOT_OLDER_THAN = "NotOlderThan"
    EXACT = "Exact"


class PropagationPolicy(enum.Enum):
    ORPHAN = "Orphan"
    BACKGROUND = "Background"
    FOREGROUND = "Foreground"


@attrs.frozen
class Preconditions:
    """``DeleteOptions.preconditions``: ``None`` means "not given"."""

    uid: str | None = None
    resource_version: str | None = None


@attrs.frozen
class Create:
    """POST to the collection. ``now`` (seconds since the epoch) becomes creationTimestamp;
    ``generated_suffix`` is appended to ``generateName`` when the object has no name."""

    resource: str
    namespace: str
    object: Object
    uid: str
    now: int
    generated_suffix: str = ""


@attrs.frozen
class Get:
    key: ObjectKey


@attrs.frozen
class List:
    """GET on the collection. ``namespace == ""`` lists every namespace (and is the only
    choice for cluster-scoped resources). ``limit == 0`` means no limit."""

    resource: str
    namespace: str = ""
    label_selector: Selector = ()
    resource_version: str = ""
    resource_version_match: ResourceVersionMatch | None = None
    limit: int = 0
    continue_token: str = ""


@attrs.frozen
class Update:
    """PUT of ``object`` to ``key`` (or to its ``/status`` subresource).

    ``metadata.resourceVersion`` of the object is the optimistic-concurrency precondition; an
    empty one makes the update unconditional.
    """

    key: ObjectKey
    object: Object
    subresource: Subresource = ""


@attrs.frozen
class Patch:
    """PATCH with ``application/merge-patch+json``: ``patch`` is the document's canonical JSON.

    A ``metadata.resourceVersion`` inside the patch is a precondition, as upstream.
    """

    key: ObjectKey
    patch: str
    subresource: Subresource = ""

    @classmethod
    def of(cls, key: ObjectKey, patch: Mapping[str, Any], subresource: Subresource = "") -> Patch:
        return cls(key, canonical_json(dict(patch)), subresource)


@attrs.frozen
class Delete:
    """DELETE with its ``DeleteOptions``; ``now`` is the server's clock reading (seconds)."""

    key: ObjectKey
    now: int
    grace_period_seconds: int | None = None
    preconditions: Preconditions = Preconditions()
    propagation_policy: PropagationPolicy | None = None


@attrs.frozen
class Watch:
    """GET with ``watch=true``; the answer is every event the watch has to deliver so far."""

    resource: str
    namespace: str = ""
    label_selector: Selector = ()
    resource_version: str = ""


@attrs.frozen
class Compact:
    """The store's compaction, which the API server runs periodically: history below
    ``revision`` is forgotten."""

    revision: int


Request = Create | Get | List | Update | Patch | Delete | Watch | Compact
"""Everything :func:`raftkube_spec.kube.apply` accepts."""
