"""The resources the API server serves: names, scope, verbs and subresources of each.

This table is the single place a resource is declared. Discovery, OpenAPI, routing, storage
keys, authorization and kubectl's short names (``po``, ``svc``, ``deploy``) are all read from
it, so a resource added here appears everywhere at once; what each kind *means* (defaults,
validation, printed columns) lives in the per-kind modules beside it.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CREATE_ONLY = ("create",)


@attrs.frozen
class ResourceInfo:
    """One served resource, such as ``apps/v1 deployments``.

    ``subresources`` are the ones served under ``{name}/{subresource}``; ``status`` among them
    means the main resource ignores status changes and ``/status`` ignores everything else, as
    upstream's strategies do. ``storage`` is false for virtual resources (reviews, bindings)
    that are answered without being stored.
    """

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    storage: bool = True

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def group_version(self) -> str:
        """``v1`` for the core group, ``apps/v1`` otherwise: an object's ``apiVersion``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified(self) -> str:
        """``pods`` or ``deployments.apps``: how errors and RBAC name the resource."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    def has(self, subresource: str) -> bool:
        return subresource in self.subresources


_CORE = "v1"
_ALL = ("all",)

RESOURCES: tuple[ResourceInfo, ...] = (
    # core/v1
    ResourceInfo("", _CORE, "namespaces", "Namespace", False, ("ns",),
                 ("create", "delete", "get", "list", "patch", "update", "watch"),
                 ("status", "finalize")),
    ResourceInfo("", _CORE, "nodes", "Node", False, ("no",), subresources=("status",)),
    ResourceInfo("", _CORE, "pods", "Pod", True, ("po",),
                 subresources=("status", "binding", "eviction", "log"), categories=_ALL),
    ResourceInfo("", _CORE, "services", "Service", True, ("svc",), subresources=("status",),
                 categories=_ALL),
    ResourceInfo("", _CORE, "endpoints", "Endpoints", True, ("ep",)),
    ResourceInfo("", _CORE, "replicationcontrollers", "ReplicationController", True, ("rc",),
                 subresources=("scale", "status"), categories=_ALL),
    ResourceInfo("", _CORE, "serviceaccounts", "ServiceAccount", True, ("sa",),
                 subresources=("token",)),
    ResourceInfo("", _CORE, "secrets", "Secret", True),
    ResourceInfo("", _CORE, "configmaps", "ConfigMap", True, ("cm",)),
    ResourceInfo("", _CORE, "events", "Event", True, ("ev",)),
    ResourceInfo("", _CORE, "bindings", "Binding", True, verbs=CREATE_ONLY, storage=False),
    # apps/v1
    ResourceInfo("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",),
                 subresources=("scale", "status"), categories=_ALL),
    ResourceInfo("apps", "v1", "deployments", "Deployment", True, ("deploy",),
                 subresources=("scale", "status"), categories=_ALL),
    # coordination.k8s.io/v1
    ResourceInfo("coordination.k8s.io", "v1", "leases", "Lease", True),
    # rbac.authorization.k8s.io/v1
    ResourceInfo("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ResourceInfo("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ResourceInfo("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ResourceInfo("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
                 False),
    # authorization.k8s.io/v1 and authentication.k8s.io/v1: reviews, answered, never stored
    ResourceInfo("authorization.k8s.io", "v1", "selfsubjectaccessreviews",
                 "SelfSubjectAccessReview", False, verbs=CREATE_ONLY, storage=False),
    ResourceInfo("authorization.k8s.io", "v1", "selfsubjectrulesreviews",
                 "SelfSubjectRulesReview", False, verbs=CREATE_ONLY, storage=False),
    ResourceInfo("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview",
                 False, verbs=CREATE_ONLY, storage=False),
    ResourceInfo("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False,
                 verbs=CREATE_ONLY, storage=False),
    ResourceInfo("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", False,
                 verbs=CREATE_ONLY, storage=False),
)  # fmt: skip

GROUP_PREFERRED_VERSION = {r.group: r.version for r in RESOURCES}

_BY_PATH = {(r.group, r.version, r.resource): r for r in RESOURCES}
_BY_KIND = {(r.group, r.kind): r for r in RESOURCES}


def lookup(group: str, version: str, resource: str) -> ResourceInfo | None:
    """The resource served at ``/apis/{group}/{version}/.../{resource}``, if any."""
    return _BY_PATH.get((group, version, resource))


def by_kind(api_version: str, kind: str) -> ResourceInfo | None:
    """The resource whose objects have ``apiVersion: api_version`` and ``kind: kind``."""
    group, _, version = api_version.rpartition("/")
    info = _BY_KIND.get((group, kind))
    return info if info is not None and info.version == version else None


def groups() -> Iterator[str]:
    """API group names in the order discovery lists them (the core group first)."""
    seen: list[str] = []
    for r in RESOURCES:
        if r.group not in seen:
            seen.append(r.group)
    yield from seen


def in_group(group: str, version: str) -> tuple[ResourceInfo, ...]:
    return tuple(r for r in RESOURCES if r.group == group and r.version == version)
