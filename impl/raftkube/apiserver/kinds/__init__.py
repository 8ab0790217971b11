"""What each served kind means: defaults, validation, create/update strategies, field labels
and schemas, with upstream Kubernetes's field names, defaults and messages.

The handlers use one registry::

    strategy = kinds.strategy_for(info)       # info: a ResourceInfo from resources.py
    strategy.default(obj)                     # on every create and update body
    kinds.prepare_create(info, obj, now, uid)  # then strategy.validate_create(obj)
    kinds.prepare_update(info, new, old, subresource)  # then strategy.validate_update(new, old)
                                                        # (validate_status_update for /status)
    strategy.field_labels(obj)                # what field selectors match
    strategy.field_label_names()              # which labels a selector may name
    strategy.unknown_fields(obj)              # for fieldValidation=Strict|Warn
    kinds.schema_for(info)                    # JSON-schema-like data for OpenAPI

:mod:`.strategy` explains the order of the calls; each family's module (:mod:`.pods`,
:mod:`.services`, :mod:`.workloads`, :mod:`.core`, :mod:`.config`, :mod:`.events`,
:mod:`.rbac`, :mod:`.reviews`) says what it follows upstream in and where it simplifies.
"""

from __future__ import annotations

from functools import cache

from ..resources import ResourceInfo
from .config import ConfigMapStrategy, SecretStrategy
from .core import NamespaceStrategy, NodeStrategy, ServiceAccountStrategy
from .events import EventStrategy, LeaseStrategy
from .pods import BindingStrategy, PodStrategy
from .rbac import (
    ClusterRoleBindingStrategy,
    ClusterRoleStrategy,
    RoleBindingStrategy,
    RoleStrategy,
)
from .reviews import (
    SelfSubjectAccessReviewStrategy,
    SelfSubjectReviewStrategy,
    SelfSubjectRulesReviewStrategy,
    SubjectAccessReviewStrategy,
    TokenReviewStrategy,
)
from .schema import Schema
from .services import EndpointsStrategy, ServiceStrategy
from .strategy import Obj, Strategy
from .strategy import prepare_create as _prepare_create
from .strategy import prepare_update as _prepare_update
from .workloads import DeploymentStrategy, ReplicaSetStrategy, ReplicationControllerStrategy

__all__ = ["Strategy", "prepare_create", "prepare_update", "schema_for", "strategy_for"]

_RBAC = "rbac.authorization.k8s.io"

STRATEGIES: dict[tuple[str, str], type[Strategy]] = {
    ("", "Namespace"): NamespaceStrategy,
    ("", "Node"): NodeStrategy,
    ("", "Pod"): PodStrategy,
    ("", "Binding"): BindingStrategy,
    ("", "Service"): ServiceStrategy,
    ("", "Endpoints"): EndpointsStrategy,
    ("", "ReplicationController"): ReplicationControllerStrategy,
    ("", "ServiceAccount"): ServiceAccountStrategy,
    ("", "Secret"): SecretStrategy,
    ("", "ConfigMap"): ConfigMapStrategy,
    ("", "Event"): EventStrategy,
    ("apps", "ReplicaSet"): ReplicaSetStrategy,
    ("apps", "Deployment"): DeploymentStrategy,
    ("coordination.k8s.io", "Lease"): LeaseStrategy,
    (_RBAC, "Role"): RoleStrategy,
    (_RBAC, "ClusterRole"): ClusterRoleStrategy,
    (_RBAC, "RoleBinding"): RoleBindingStrategy,
    (_RBAC, "ClusterRoleBinding"): ClusterRoleBindingStrategy,
    ("authorization.k8s.io", "SelfSubjectAccessReview"): SelfSubjectAccessReviewStrategy,
    ("authorization.k8s.io", "SelfSubjectRulesReview"): SelfSubjectRulesReviewStrategy,
    ("authorization.k8s.io", "SubjectAccessReview"): SubjectAccessReviewStrategy,
    ("authentication.k8s.io", "SelfSubjectReview"): SelfSubjectReviewStrategy,
    ("authentication.k8s.io", "TokenReview"): TokenReviewStrategy,
}


@cache
def strategy_for(info: ResourceInfo) -> Strategy:
    """The strategy of a served resource; every entry of ``resources.RESOURCES`` has one."""
    return STRATEGIES[(info.group, info.kind)](info)


def schema_for(info: ResourceInfo) -> Schema:
    """The kind's schema (shared data: copy it before changing it)."""
    return type(strategy_for(info)).schema


def prepare_create(info: ResourceInfo, obj: Obj, now_rfc3339: str, uid: str) -> None:
    """System fields of a new object (uid, creationTimestamp, generation 1 where tracked) and
    the kind's ``PrepareForCreate`` (status reset, namespace finalizer, ...), in place."""
    _prepare_create(strategy_for(info), obj, now_rfc3339, uid)


def prepare_update(info: ResourceInfo, new: Obj, old: Obj, subresource: str = "") -> None:
    """Identity metadata from ``old``, the status-subresource rule (``subresource`` is ``""``
    for the main resource, ``"status"``, or another whole-object subresource such as
    ``"finalize"``), and the generation bump on a spec change, in place."""
    _prepare_update(strategy_for(info), new, old, subresource)
