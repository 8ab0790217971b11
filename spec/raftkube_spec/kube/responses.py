"""What the object API answers, shaped so a real server's JSON answer maps onto it directly.

Every response that carries an object carries the :class:`Object` itself (normalized canonical
JSON), so comparing a server's answer with the model's is ``Object.of(body) == response.object``
plus the HTTP code.
"""

from __future__ import annotations

import attrs

from raftkube_spec.kube.errors import KubeError
from raftkube_spec.kube.objects import Object
from raftkube_spec.kube.state import WatchEvent


@attrs.frozen
class ObjectResponse:
    """Create (201), Get, Update and Patch (200): the object as the server now holds it.

    One exception, as upstream: an update that removes the last finalizer of an object being
    deleted deletes it, and answers with the object as updated, at its old resourceVersion.
    """

    object: Object
    code: int = 200


@attrs.frozen
class ListResponse:
    """A list: ``resource_version`` is the list-level ``metadata.resourceVersion``;
    ``continue_token`` is ``""`` on the last page; ``remaining_item_count`` is set, as
    upstream, only on a page cut by ``limit`` of a list without a label selector."""

    resource_version: int
    items: tuple[Object, ...]
    continue_token: str = ""
    remaining_item_count: int | None = None


@attrs.frozen
class DeleteResponse:
    """``deleted``: the object is gone; otherwise it is being deleted, held by finalizers or a
    grace period, and ``object`` is its state now. A deleted object is answered with its last
    stored state stamped with the deleting revision, as the etcd3 store decodes it (upstream
    sends that object for pods and a ``Status`` naming it for most other resources; the
    translation is the server's)."""

    object: Object
    deleted: bool

    @property
    def code(self) -> int:
        """200 either way: upstream answers 202 only to the deprecated
        ``orphanDependents: false``, which the model does not take."""
        return 200


@attrs.frozen
class WatchResponse:
    """Every event a watch has had to deliver by now, in order."""

    events: tuple[WatchEvent, ...]


@attrs.frozen
class CompactResponse:
    revision: int


Response = ObjectResponse | ListResponse | DeleteResponse | WatchResponse | CompactResponse

Result = Response | KubeError
"""Everything :func:`raftkube_spec.kube.apply` can answer."""
