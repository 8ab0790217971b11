"""The default roles and bindings upstream's API server creates at startup.

Transcribed from upstream's bootstrap policy (``plugin/pkg/auth/authorizer/rbac/bootstrappolicy``:
``policy.go``, ``controller_policy.go``, ``namespace_policy.go`` and the ``testdata/*.yaml`` it is
checked against), rule for rule, including the rules for resources this cluster does not serve:
a role is upstream's or it is not, and kubectl users read these roles. Each rule's lists are
sorted, as upstream's ``PolicyRuleBuilder`` sorts them; every object carries the
``kubernetes.io/bootstrapping: rbac-defaults`` label and the ``autoupdate`` annotation.

Kept: the user-facing roles (``cluster-admin``, ``admin``, ``edit``, ``view`` with their
aggregation and the ``system:aggregate-to-*`` roles that feed them), discovery and basic-user,
the component roles (scheduler, controller manager, node, proxy), the leader-locking Roles in
``kube-system``, and the ``system:controller:*`` roles of the controllers this project runs,
each bound to its ServiceAccount in ``kube-system`` as upstream binds them. Upstream has no role
for the service-account *token* controller: it runs with the controller manager's own
credentials. Left out: roles for components this project does not have (DNS, volumes,
certificates, the aggregator, heapster, monitoring).

The integrator writes each object returned by :func:`bootstrap_objects` if it is absent.

Why one module: it is one table, upstream's bootstrap RBAC policy (``policy.go`` and
``controller_policy.go``), kept whole so it can be read and compared against upstream's side
by side.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from .user import AUTHENTICATED, MASTERS, UNAUTHENTICATED

Obj = dict[str, Any]

RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"
BOOTSTRAP_LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
AGGREGATE_TO_ADMIN = "rbac.authorization.k8s.io/aggregate-to-admin"
AGGREGATE_TO_EDIT = "rbac.authorization.k8s.io/aggregate-to-edit"
AGGREGATE_TO_VIEW = "rbac.authorization.k8s.io/aggregate-to-view"
CONTROLLER_PREFIX = "system:controller:"

KUBE_SCHEDULER = "system:kube-scheduler"
KUBE_CONTROLLER_MANAGER = "system:kube-controller-manager"
KUBE_PROXY = "system:kube-proxy"

READ = ("get", "list", "watch")
READ_WRITE = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
WRITE = ("create", "delete", "deletecollection", "patch", "update")

CORE = ""
APPS = "apps"
EXTENSIONS = "extensions"
EVENTS = "events.k8s.io"
COORDINATION = "coordination.k8s.io"
AUTHENTICATION = "authentication.k8s.io"
AUTHORIZATION = "authorization.k8s.io"
STORAGE = "storage.k8s.io"
RESOURCE = "resource.k8s.io"
NETWORKING = "networking.k8s.io"
CERTIFICATES = "certificates.k8s.io"
KUBE_SYSTEM = "kube-system"


def rule(
    verbs: Iterable[str],
    groups: Iterable[str] = (),
    resources: Iterable[str] = (),
    names: Iterable[str] = (),
    urls: Iterable[str] = (),
) -> Obj:
    """A PolicyRule as upstream's builder makes it: every list sorted, empty ones left out."""
    out: Obj = {}
    if urls:
        out["nonResourceURLs"] = sorted(urls)
    else:
        out["apiGroups"] = sorted(groups)
        out["resources"] = sorted(resources)
        if names:
            out["resourceNames"] = sorted(names)
    out["verbs"] = sorted(verbs)
    return out


def _events_rule() -> Obj:
    return rule(("create", "update", "patch"), (CORE, EVENTS), ("events",))


def _meta(name: str, labels: dict[str, str] | None = None, namespace: str = "") -> Obj:
    meta: Obj = {"name": name, "labels": {**BOOTSTRAP_LABEL, **(labels or {})}}
    if namespace:
        meta["namespace"] = namespace
    meta["annotations"] = dict(AUTOUPDATE)
    return meta


def _cluster_role(name: str, rules: list[Obj], labels: dict[str, str] | None = None) -> Obj:
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "ClusterRole",
        "metadata": _meta(name, labels),
        "rules": rules,
    }


def _aggregated(name: str, to_label: str, labels: dict[str, str] | None = None) -> Obj:
    role = _cluster_role(name, [], labels)
    role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {to_label: "true"}}]}
    return role


def _user(name: str) -> Obj:
    return {"apiGroup": RBAC_GROUP, "kind": "User", "name": name}


def _group(name: str) -> Obj:
    return {"apiGroup": RBAC_GROUP, "kind": "Group", "name": name}


def _service_account(namespace: str, name: str) -> Obj:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def _binding(kind: str, name: str, role_kind: str, subjects: list[Obj], namespace: str = "") -> Obj:
    out: Obj = {
        "apiVersion": RBAC_API_VERSION,
        "kind": kind,
        "metadata": _meta(name, namespace=namespace),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": role_kind, "name": name},
    }
    if subjects:  # upstream's system:node binding has none: the Node authorizer covers nodes
        out["subjects"] = subjects
    return out


def node_rules() -> list[Obj]:
    """Upstream's ``NodeRules()``: the ``system:node`` role, and what the Node authorizer
    grants every node for the resources it does not subdivide."""
    return [
        rule(("create",), (AUTHENTICATION,), ("tokenreviews",)),
        rule(("create",), (AUTHORIZATION,), ("subjectaccessreviews", "localsubjectaccessreviews")),
        rule(READ, (CORE,), ("services",)),
        rule(("create", "get", "list", "watch"), (CORE,), ("nodes",)),
        rule(("update", "patch"), (CORE,), ("nodes/status",)),
        rule(("update", "patch"), (CORE,), ("nodes",)),
        rule(("create", "update", "patch"), (CORE, EVENTS), ("events",)),
        rule(READ, (CORE,), ("pods",)),
        rule(("create", "delete"), (CORE,), ("pods",)),
        rule(("update", "patch"), (CORE,), ("pods/status",)),
        rule(("create",), (CORE,), ("pods/eviction",)),
        rule(READ, (CORE,), ("secrets", "configmaps")),
        rule(("get",), (CORE,), ("persistentvolumeclaims", "persistentvolumes")),
        rule(("get",), (CORE,), ("endpoints",)),
        rule(("create", "get", "list", "watch"), (CERTIFICATES,), ("certificatesigningrequests",)),
        rule(("get", "create", "update", "patch", "delete"), (COORDINATION,), ("leases",)),
        rule(("get",), (STORAGE,), ("volumeattachments",)),
        rule(("create",), (CORE,), ("serviceaccounts/token",)),
        rule(("get", "update", "patch"), (CORE,), ("persistentvolumeclaims/status",)),
        rule(READ, (STORAGE,), ("csidrivers",)),
        rule(("get", "create", "update", "patch", "delete"), (STORAGE,), ("csinodes",)),
        rule(READ, ("node.k8s.io",), ("runtimeclasses",)),
        rule(("get",), (RESOURCE,), ("resourceclaims",)),
        rule(("deletecollection",), (RESOURCE,), ("resourceslices",)),
        rule(("get",), (CORE,), ("serviceaccounts",)),
    ]  # fmt: skip


def _aggregate_to_roles() -> list[Obj]:
    admin = [
        rule(("create",), (AUTHORIZATION,), ("localsubjectaccessreviews",)),
        rule(READ_WRITE, (RBAC_GROUP,), ("roles", "rolebindings")),
    ]
    pod_access = ("pods/attach", "pods/proxy", "pods/exec", "pods/portforward")
    edit = [
        rule(READ, (CORE,), (*pod_access, "secrets", "services/proxy")),
        rule(("impersonate",), (CORE,), ("serviceaccounts",)),
        rule(WRITE, (CORE,), ("pods", *pod_access)),
        rule(("create",), (CORE,), ("pods/eviction",)),
        rule(
            WRITE,
            (CORE,),
            (
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
            ),
        ),
        rule(("create",), (CORE,), ("serviceaccounts/token",)),
        rule(WRITE, (CORE, EVENTS), ("events",)),
        rule(
            WRITE,
            (APPS,),
            (
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
            ),
        ),
        rule(WRITE, ("autoscaling",), ("horizontalpodautoscalers",)),
        rule(WRITE, ("batch",), ("jobs", "cronjobs")),
        rule(
            WRITE,
            (EXTENSIONS,),
            (
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "ingresses",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
                "networkpolicies",
            ),
        ),
        rule(WRITE, ("policy",), ("poddisruptionbudgets",)),
        rule(WRITE, (NETWORKING,), ("ingresses", "networkpolicies")),
        rule(READ_WRITE, (COORDINATION,), ("leases",)),
        rule(WRITE, (RESOURCE,), ("resourceclaims", "resourceclaimtemplates")),
    ]
    view = [
        rule(READ, (CORE,), ("pods", "replicationcontrollers", "replicationcontrollers/scale",
             "serviceaccounts", "services", "services/status", "endpoints",
             "persistentvolumeclaims", "persistentvolumeclaims/status", "configmaps")),
        rule(READ, (CORE,), ("limitranges", "resourcequotas", "bindings", "pods/log",
             "pods/status", "replicationcontrollers/status", "resourcequotas/status",
             "namespaces/status")),
        rule(READ, (CORE,), ("namespaces",)),
        rule(READ, (CORE, EVENTS), ("events",)),
        rule(READ, ("discovery.k8s.io",), ("endpointslices",)),
        rule(READ, (APPS,), ("controllerrevisions", "statefulsets", "statefulsets/status",
             "statefulsets/scale", "daemonsets", "daemonsets/status", "deployments",
             "deployments/status", "deployments/scale", "replicasets", "replicasets/status",
             "replicasets/scale")),
        rule(READ, ("autoscaling",), ("horizontalpodautoscalers",
             "horizontalpodautoscalers/status")),
        rule(READ, ("batch",), ("jobs", "cronjobs", "cronjobs/status", "jobs/status")),
        rule(READ, (EXTENSIONS,), ("daemonsets", "daemonsets/status", "deployments",
             "deployments/scale", "deployments/status", "ingresses", "ingresses/status",
             "replicasets", "replicasets/scale", "replicasets/status",
             "replicationcontrollers/scale", "networkpolicies")),
        rule(READ, ("policy",), ("poddisruptionbudgets", "poddisruptionbudgets/status")),
        rule(READ, (NETWORKING,), ("ingresses", "ingresses/status", "networkpolicies")),
        rule(READ, (RESOURCE,), ("resourceclaims", "resourceclaims/status",
             "resourceclaimtemplates")),
    ]  # fmt: skip
    return [
        _cluster_role("system:aggregate-to-admin", admin, {AGGREGATE_TO_ADMIN: "true"}),
        _cluster_role("system:aggregate-to-edit", edit, {AGGREGATE_TO_EDIT: "true"}),
        _cluster_role("system:aggregate-to-view", view, {AGGREGATE_TO_VIEW: "true"}),
    ]


def _scheduler_rules() -> list[Obj]:
    return [
        _events_rule(),
        rule(("create",), (COORDINATION,), ("leases",)),
        rule(("get", "list", "update", "watch"), (COORDINATION,), ("leases",), ("kube-scheduler",)),
        rule(READ_WRITE, (COORDINATION,), ("leasecandidates",)),
        rule(READ, (CORE,), ("nodes",)),
        rule(("delete", "get", "list", "watch"), (CORE,), ("pods",)),
        rule(("create",), (CORE,), ("pods/binding", "bindings")),
        rule(("patch", "update"), (CORE,), ("pods/status",)),
        rule(READ, (CORE,), ("replicationcontrollers", "services")),
        rule(READ, (APPS, EXTENSIONS), ("replicasets",)),
        rule(READ, (APPS,), ("statefulsets",)),
        rule(READ, ("policy",), ("poddisruptionbudgets",)),
        rule(READ, (CORE,), ("persistentvolumeclaims", "persistentvolumes")),
        rule(("create",), (AUTHENTICATION,), ("tokenreviews",)),
        rule(("create",), (AUTHORIZATION,), ("subjectaccessreviews",)),
        rule(READ, (STORAGE,), ("csinodes",)),
        rule(READ, (STORAGE,), ("volumeattachments",)),
        rule(READ, (CORE,), ("namespaces",)),
        rule(READ, (STORAGE,), ("csidrivers",)),
        rule(READ, (STORAGE,), ("csistoragecapacities",)),
        rule(READ, (RESOURCE,), ("deviceclasses",)),
        rule(("get", "list", "patch", "update", "watch"), (RESOURCE,), ("resourceclaims",)),
        rule(("get", "list", "patch", "update", "watch"), (RESOURCE,), ("resourceclaims/status",)),
        rule(("update",), (CORE,), ("pods/finalizers",)),
        rule(READ, (RESOURCE,), ("resourceslices",)),
        rule(("create", "delete"), (RESOURCE,), ("resourceclaims",)),
    ]  # fmt: skip


def _controller_manager_rules() -> list[Obj]:
    return [
        _events_rule(),
        rule(("create",), (COORDINATION,), ("leases",)),
        rule(("get", "update"), (COORDINATION,), ("leases",), ("kube-controller-manager",)),
        rule(("create",), (CORE,), ("secrets", "serviceaccounts")),
        rule(("delete",), (CORE,), ("secrets",)),
        rule(("get",), (CORE,), ("configmaps", "namespaces", "secrets", "serviceaccounts")),
        rule(("update",), (CORE,), ("secrets", "serviceaccounts")),
        rule(("create",), (AUTHENTICATION,), ("tokenreviews",)),
        rule(("create",), (AUTHORIZATION,), ("subjectaccessreviews",)),
        rule(("list", "watch"), ("*",), ("*",)),
        rule(("create",), (CORE,), ("serviceaccounts/token",)),
    ]


def _controller_roles() -> list[Obj]:
    """``controller_policy.go``'s roles for the controllers this project runs."""
    apps_ext = (APPS, EXTENSIONS)
    roles = {
        "deployment-controller": [
            rule(("get", "list", "watch", "update"), apps_ext, ("deployments",)),
            rule(("update",), apps_ext, ("deployments/status",)),
            rule(("update",), apps_ext, ("deployments/finalizers",)),
            rule(("get", "list", "watch", "create", "update", "patch", "delete"), apps_ext,
                 ("replicasets",)),
            rule(("get", "list", "watch", "update"), (CORE,), ("pods",)),
            _events_rule(),
        ],
        "endpoint-controller": [
            rule(READ, (CORE,), ("services", "pods")),
            rule(("get", "list", "watch", "create", "update", "delete"), (CORE,), ("endpoints",)),
            rule(("create",), (CORE,), ("endpoints/restricted",)),
            _events_rule(),
        ],
        "generic-garbage-collector": [
            rule(("get", "list", "watch", "patch", "update", "delete"), ("*",), ("*",)),
            _events_rule(),
        ],
        "namespace-controller": [
            rule(("get", "list", "watch", "delete"), (CORE,), ("namespaces",)),
            rule(("update",), (CORE,), ("namespaces/finalize", "namespaces/status")),
            rule(("get", "list", "watch", "delete", "deletecollection"), ("*",), ("*",)),
        ],
        "node-controller": [
            rule(("get", "list", "watch", "update", "delete", "patch"), (CORE,), ("nodes",)),
            rule(("patch", "update"), (CORE,), ("nodes/status",)),
            rule(("patch", "update"), (CORE,), ("pods/status",)),
            rule(("list", "watch", "get", "delete"), (CORE,), ("pods",)),
            rule(READ, (COORDINATION,), ("leases",)),
            _events_rule(),
        ],
        "replicaset-controller": [
            rule(("get", "list", "watch", "update"), apps_ext, ("replicasets",)),
            rule(("update",), apps_ext, ("replicasets/status",)),
            rule(("update",), apps_ext, ("replicasets/finalizers",)),
            rule(("list", "watch", "patch", "create", "delete"), (CORE,), ("pods",)),
            _events_rule(),
        ],
        "pod-garbage-collector": [
            rule(("list", "watch", "delete"), (CORE,), ("pods",)),
            rule(("get", "list"), (CORE,), ("nodes",)),
            rule(("patch",), (CORE,), ("pods/status",)),
        ],
        "replication-controller": [
            rule(("get", "list", "watch", "update"), (CORE,), ("replicationcontrollers",)),
            rule(("update",), (CORE,), ("replicationcontrollers/status",)),
            rule(("update",), (CORE,), ("replicationcontrollers/finalizers",)),
            rule(("list", "watch", "patch", "create", "delete"), (CORE,), ("pods",)),
            _events_rule(),
        ],
        "root-ca-cert-publisher": [
            rule(("create", "update"), (CORE,), ("configmaps",)),
            _events_rule(),
        ],
        "route-controller": [
            rule(("list", "watch"), (CORE,), ("nodes",)),
            rule(("patch",), (CORE,), ("nodes/status",)),
            _events_rule(),
        ],
        "service-account-controller": [
            rule(("create",), (CORE,), ("serviceaccounts",)),
            _events_rule(),
        ],
        "service-controller": [
            rule(("get", "list", "watch"), (CORE,), ("services",)),
            rule(("patch", "update"), (CORE,), ("services/status",)),
            rule(("list", "watch"), (CORE,), ("nodes",)),
            _events_rule(),
        ],
    }  # fmt: skip
    return [_cluster_role(CONTROLLER_PREFIX + name, rules) for name, rules in roles.items()]


CLOUD_CONTROLLER_MANAGER = "system:cloud-controller-manager"


def _cloud_provider_roles() -> list[Obj]:
    """The cloud-controller-manager's roles, which are not in upstream's bootstrap policy but
    in the cloud-provider project's example manifests (kubernetes/cloud-provider), bound there
    to the ``cloud-controller-manager`` and ``cloud-node-controller`` service accounts of
    ``kube-system``. The route and service controllers have their bootstrap roles above."""
    return [
        _cluster_role(CLOUD_CONTROLLER_MANAGER, [
            _events_rule(),
            rule(("create",), (COORDINATION,), ("leases",)),
            rule(("get", "update"), (COORDINATION,), ("leases",), ("cloud-controller-manager",)),
            rule(("create", "get", "update"), (CORE,), ("endpoints", "serviceaccounts")),
            rule(("get", "update"), (CORE,), ("nodes",)),
            rule(("get",), (CORE,), ("namespaces",)),
            rule(("patch", "update"), (CORE,), ("nodes/status",)),
            rule(("create", "delete", "get", "update"), (CORE,), ("secrets",)),
            rule(("create",), (AUTHENTICATION,), ("tokenreviews",)),
            rule(("list", "watch"), ("*",), ("*",)),
            rule(("create",), (CORE,), ("serviceaccounts/token",)),
        ]),
        _cluster_role(CONTROLLER_PREFIX + "cloud-node-controller", [
            rule(("create", "patch", "update"), (CORE,), ("events",)),
            rule(("get", "list", "update", "delete", "patch"), (CORE,), ("nodes",)),
            rule(("get", "list", "update", "delete", "patch"), (CORE,), ("nodes/status",)),
            rule(("list", "delete"), (CORE,), ("pods",)),
            rule(("list", "delete"), (CORE,), ("pods/status",)),
        ]),
    ]  # fmt: skip


def cluster_roles() -> list[Obj]:
    """Every default ClusterRole, as fresh dicts the caller may keep or change."""
    roles = [
        _cluster_role(
            "cluster-admin", [rule(("*",), ("*",), ("*",)), rule(("*",), urls=("*",))]
        ),
        _aggregated("admin", AGGREGATE_TO_ADMIN),
        _aggregated("edit", AGGREGATE_TO_EDIT, {AGGREGATE_TO_ADMIN: "true"}),
        _aggregated("view", AGGREGATE_TO_VIEW, {AGGREGATE_TO_EDIT: "true"}),
        *_aggregate_to_roles(),
        _cluster_role(
            "system:basic-user",
            [
                rule(("create",), (AUTHORIZATION,),
                     ("selfsubjectaccessreviews", "selfsubjectrulesreviews")),
                rule(("create",), (AUTHENTICATION,), ("selfsubjectreviews",)),
            ],
        ),
        _cluster_role(
            "system:discovery",
            [rule(("get",), urls=("/healthz", "/livez", "/readyz", "/version", "/version/",
                                  "/api", "/api/*", "/apis", "/apis/*", "/openapi",
                                  "/openapi/*"))],
        ),
        _cluster_role(
            "system:public-info-viewer",
            [rule(("get",), urls=("/healthz", "/livez", "/readyz", "/version", "/version/"))],
        ),
        _cluster_role(KUBE_SCHEDULER, _scheduler_rules()),
        _cluster_role(KUBE_CONTROLLER_MANAGER, _controller_manager_rules()),
        _cluster_role("system:node", node_rules()),
        _cluster_role(
            "system:node-proxier",
            [
                rule(("list", "watch"), (CORE,), ("services", "endpoints")),
                rule(READ, (CORE,), ("nodes",)),
                _events_rule(),
                rule(("list", "watch"), (NETWORKING,), ("servicecidrs",)),
                rule(("list", "watch"), ("discovery.k8s.io",), ("endpointslices",)),
            ],
        ),
        *_controller_roles(),
        *_cloud_provider_roles(),
    ]  # fmt: skip
    return roles


def cluster_role_bindings() -> list[Obj]:
    """Every default ClusterRoleBinding (each named after its ClusterRole, as upstream's)."""
    crb = "ClusterRoleBinding"
    bindings = [
        _binding(crb, "cluster-admin", "ClusterRole", [_group(MASTERS)]),
        _binding(crb, "system:basic-user", "ClusterRole", [_group(AUTHENTICATED)]),
        _binding(crb, "system:discovery", "ClusterRole", [_group(AUTHENTICATED)]),
        _binding(
            crb,
            "system:public-info-viewer",
            "ClusterRole",
            [_group(AUTHENTICATED), _group(UNAUTHENTICATED)],
        ),
        _binding(crb, KUBE_SCHEDULER, "ClusterRole", [_user(KUBE_SCHEDULER)]),
        _binding(crb, KUBE_CONTROLLER_MANAGER, "ClusterRole", [_user(KUBE_CONTROLLER_MANAGER)]),
        _binding(crb, "system:node", "ClusterRole", []),
        _binding(crb, "system:node-proxier", "ClusterRole", [_user(KUBE_PROXY)]),
    ]
    for role in _controller_roles():
        name = role["metadata"]["name"]
        account = name[len(CONTROLLER_PREFIX) :]
        bindings.append(
            _binding(crb, name, "ClusterRole", [_service_account("kube-system", account)])
        )
    bindings.append(
        _binding(
            crb,
            CLOUD_CONTROLLER_MANAGER,
            "ClusterRole",
            [_service_account("kube-system", "cloud-controller-manager")],
        )
    )
    name = CONTROLLER_PREFIX + "cloud-node-controller"
    bindings.append(
        _binding(
            crb, name, "ClusterRole", [_service_account("kube-system", "cloud-node-controller")]
        )
    )
    return bindings


def roles() -> list[Obj]:
    """The default Roles: leader locking in ``kube-system``."""
    return [
        {
            "apiVersion": RBAC_API_VERSION,
            "kind": "Role",
            "metadata": _meta("system::leader-locking-kube-controller-manager", None, KUBE_SYSTEM),
            "rules": [
                rule(("watch",), (CORE,), ("configmaps",)),
                rule(("get", "update"), (CORE,), ("configmaps",), ("kube-controller-manager",)),
                rule(("get", "watch", "list", "create", "update"), (COORDINATION,), ("leases",)),
            ],
        },
        {
            "apiVersion": RBAC_API_VERSION,
            "kind": "Role",
            "metadata": _meta("system::leader-locking-kube-scheduler", None, "kube-system"),
            "rules": [
                rule(("watch",), (CORE,), ("configmaps",)),
                rule(("get", "update"), (CORE,), ("configmaps",), ("kube-scheduler",)),
            ],
        },
    ]  # fmt: skip


def role_bindings() -> list[Obj]:
    """The default RoleBindings of :func:`roles`, to the component users and their
    ServiceAccounts."""
    return [
        _binding(
            "RoleBinding",
            "system::leader-locking-kube-controller-manager",
            "Role",
            [_user(KUBE_CONTROLLER_MANAGER),
             _service_account("kube-system", "kube-controller-manager")],
            "kube-system",
        ),
        _binding(
            "RoleBinding",
            "system::leader-locking-kube-scheduler",
            "Role",
            [_user(KUBE_SCHEDULER), _service_account("kube-system", "kube-scheduler")],
            "kube-system",
        ),
    ]  # fmt: skip


def bootstrap_objects() -> list[Obj]:
    """Everything to write at startup if absent, ClusterRoles first so no binding ever names
    a role that does not exist yet."""
    return copy.deepcopy([*cluster_roles(), *cluster_role_bindings(), *roles(), *role_bindings()])
