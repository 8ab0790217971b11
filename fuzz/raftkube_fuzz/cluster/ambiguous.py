"""Pod creates of the controller managers whose outcome is unknown: what ``NoOverCreation``
excuses besides leader overlap.

Upstream's ReplicaSet controller (``manageReplicas`` in
``pkg/controller/replicaset/replica_set.go``, through ``slowStartBatch``) lowers its
expectations (``CreationObserved``) for every pod create that returned an error other than
NamespaceTerminating, as :mod:`raftkube.controllers.replicaset` does. When the error hid a
pod that was written after all (the API server's store write timed out after it committed:
a 500 "etcdserver: request timed out"; a 504; the connection broke or the request timed out
before the answer came), its next sync sees one pod fewer than exists and creates again: the
ReplicaSet has one active pod too many until a later sync deletes it. So upstream allows one
extra active pod per create with an unknown outcome, and no more: a create answered 2xx or
4xx leaves nothing to excuse.

:class:`AmbiguousCreates` is the :data:`~raftkube.kubeclient.RequestObserver` the suite gives
every controller manager's clients: it counts, per owning controller (by uid, from the pod's
controller ``ownerReference`` in the request body), the pod creates (``POST .../pods``) that
ended with a 5xx or an exception (but not a connection that could not be opened: nothing was
sent). The count only grows, as the most replicas asked for does: the surplus is allowed for
as long as it can last.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from raftkube.kubeclient import KubeConnectionError
from raftkube_fuzz.checks.ownership import controller_uid


def is_pod_create(method: str, path: str) -> bool:
    """``POST /api/v1/namespaces/NS/pods``: a pod create (not a binding or an eviction)."""
    parts = path.strip("/").split("/")
    return method == "POST" and len(parts) == 5 and parts[:3] == ["api", "v1", "namespaces"] \
        and parts[4] == "pods"  # fmt: skip


def is_ambiguous(outcome: int | BaseException) -> bool:
    """The server may have acted although the caller got an error: no answer at all, or a
    server-side failure (5xx: a store write that timed out may still commit). A connection
    that could not be opened carried nothing (``sent`` False): nothing to excuse."""
    if isinstance(outcome, KubeConnectionError):
        return outcome.sent
    return isinstance(outcome, BaseException) or outcome >= 500


@attrs.define(eq=False)
class AmbiguousCreates:
    """See the module docstring; call it as a request observer."""

    by_owner: dict[str, int] = attrs.field(factory=dict)
    """Owning controller's uid -> its pod creates with an unknown outcome."""

    def __call__(self, method: str, path: str, body: Any, outcome: int | BaseException) -> None:
        if not is_pod_create(method, path) or not is_ambiguous(outcome):
            return
        owner = controller_uid(body) if isinstance(body, Mapping) else None
        if owner:
            self.by_owner[owner] = self.by_owner.get(owner, 0) + 1

    def of(self, owner_uid: str) -> int:
        return self.by_owner.get(owner_uid, 0)
