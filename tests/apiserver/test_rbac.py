"""RBAC: rule matching, binding resolution, aggregation, the exact refusal texts, the chain,
and what the default (bootstrap) roles grant the components."""

from __future__ import annotations

from typing import Any

import pytest

from raftkube.apiserver.auth import bootstrap
from raftkube.apiserver.auth.authorize import Authorizer, Decision, forbidden
from raftkube.apiserver.auth.rbac import RBACAuthorizer, aggregate_rules, rule_allows
from raftkube.apiserver.auth.user import AUTHENTICATED, MASTERS, UNAUTHENTICATED, UserInfo
from raftkube.apiserver.request_info import RequestInfo, parse_request_info
from tests.helpers.memory_rbac import Source

Obj = dict[str, Any]


def req(method: str, path: str, **query: str) -> RequestInfo:
    return parse_request_info(method, path, {k: (v,) for k, v in query.items()})


def role(kind: str, name: str, rules: list[Obj], namespace: str = "", **extra: Any) -> Obj:
    meta: Obj = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta.update(extra.pop("meta", {}))
    return {"kind": kind, "metadata": meta, "rules": rules, **extra}


def binding(
    kind: str, name: str, ref_kind: str, ref: str, subjects: list[Obj], namespace: str = ""
) -> Obj:
    meta: Obj = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind, "name": ref},
        "subjects": subjects,
    }


ALICE = UserInfo("alice", groups=("devs", AUTHENTICATED))


# --- rule matching -------------------------------------------------------------------------

POD_READER = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
LOG_READER = {**POD_READER, "resources": ["pods/log"]}
ANY_GROUP = {**POD_READER, "apiGroups": ["*"]}


@pytest.mark.parametrize(
    ("rule", "info", "allowed"),
    [
        (POD_READER, req("GET", "/api/v1/namespaces/ns/pods/p"), True),
        (POD_READER, req("GET", "/api/v1/namespaces/ns/pods"), True),
        (POD_READER, req("GET", "/api/v1/pods", watch="true"), True),
        (POD_READER, req("DELETE", "/api/v1/namespaces/ns/pods/p"), False),
        # a subresource needs its own entry
        (POD_READER, req("GET", "/api/v1/namespaces/ns/pods/p/log"), False),
        (LOG_READER, req("GET", "/api/v1/namespaces/ns/pods/p/log"), True),
        (LOG_READER, req("GET", "/api/v1/namespaces/ns/pods/p"), False),
        # */subresource matches that subresource of anything, nothing else
        ({"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"]},
         req("GET", "/apis/apps/v1/namespaces/ns/deployments/d/scale"), True),
        ({"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"]},
         req("GET", "/apis/apps/v1/namespaces/ns/deployments/d/status"), False),
        ({"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"]},
         req("GET", "/apis/apps/v1/namespaces/ns/deployments/d"), False),
        # groups
        (POD_READER, req("GET", "/apis/apps/v1/namespaces/ns/pods/p"), False),
        (ANY_GROUP, req("GET", "/apis/apps/v1/namespaces/ns/pods/p"), True),
        # wildcards
        ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
         req("POST", "/apis/apps/v1/namespaces/ns/deployments/d/scale"), True),
        # resource names restrict named requests; an unnamed list is not a name
        ({**POD_READER, "resourceNames": ["a"]}, req("GET", "/api/v1/namespaces/ns/pods/a"), True),
        ({**POD_READER, "resourceNames": ["a"]}, req("GET", "/api/v1/namespaces/ns/pods/b"), False),
        ({**POD_READER, "resourceNames": ["a"]}, req("GET", "/api/v1/namespaces/ns/pods"), False),
        ({**POD_READER, "resourceNames": ["a"]},
         req("GET", "/api/v1/namespaces/ns/pods", fieldSelector="metadata.name=a"), True),
        # non-resource URLs: exact, trailing *, and never for resource requests
        ({"nonResourceURLs": ["/healthz"], "verbs": ["get"]}, req("GET", "/healthz"), True),
        ({"nonResourceURLs": ["/healthz"], "verbs": ["get"]}, req("GET", "/healthz/etcd"), False),
        ({"nonResourceURLs": ["/healthz*"], "verbs": ["get"]}, req("GET", "/healthz/etcd"), True),
        ({"nonResourceURLs": ["/apis/*"], "verbs": ["get"]}, req("GET", "/apis/apps"), True),
        ({"nonResourceURLs": ["/apis/*"], "verbs": ["get"]}, req("GET", "/apis"), False),
        ({"nonResourceURLs": ["*"], "verbs": ["*"]}, req("POST", "/anything"), True),
        ({"nonResourceURLs": ["*"], "verbs": ["*"]}, req("GET", "/api/v1/pods"), False),
        ({"nonResourceURLs": ["/version"], "verbs": ["get"]}, req("POST", "/version"), False),
    ],
)  # fmt: skip
def test_rule_matching(rule: Obj, info: RequestInfo, allowed: bool) -> None:
    assert rule_allows(info, rule) is allowed


# --- bindings ------------------------------------------------------------------------------


def test_subjects_user_group_and_service_account() -> None:
    reader = role("ClusterRole", "reader", [POD_READER])
    source = Source(
        [
            reader,
            binding("ClusterRoleBinding", "by-group", "ClusterRole", "reader",
                    [{"kind": "Group", "name": "devs"}]),
            binding("RoleBinding", "sa", "ClusterRole", "reader",
                    [{"kind": "ServiceAccount", "name": "robot"}], namespace="ns"),
        ]
    )  # fmt: skip
    rbac = RBACAuthorizer(source)
    get_pod = req("GET", "/api/v1/namespaces/ns/pods/p")
    assert rbac.authorize(ALICE, get_pod) == Decision(
        True,
        'RBAC: allowed by ClusterRoleBinding "by-group" of ClusterRole "reader" to Group "devs"',
    )
    bob = UserInfo("bob", groups=(AUTHENTICATED,))
    assert not rbac.authorize(bob, get_pod).allowed
    # A ServiceAccount subject without a namespace means the binding's namespace.
    robot = UserInfo("system:serviceaccount:ns:robot")
    assert rbac.authorize(robot, get_pod) == Decision(
        True,
        'RBAC: allowed by RoleBinding "sa/ns" of ClusterRole "reader" to ServiceAccount "robot/ns"',
    )
    other_ns = UserInfo("system:serviceaccount:other:robot")
    assert not rbac.authorize(other_ns, get_pod).allowed


def test_role_binding_to_cluster_role_applies_in_its_namespace_only() -> None:
    source = Source(
        [
            role("ClusterRole", "reader", [POD_READER]),
            binding("RoleBinding", "rb", "ClusterRole", "reader",
                    [{"kind": "User", "name": "alice"}], namespace="ns"),
        ]
    )  # fmt: skip
    rbac = RBACAuthorizer(source)
    assert rbac.authorize(ALICE, req("GET", "/api/v1/namespaces/ns/pods/p")).allowed
    assert not rbac.authorize(ALICE, req("GET", "/api/v1/namespaces/other/pods/p")).allowed
    assert not rbac.authorize(ALICE, req("GET", "/api/v1/pods")).allowed  # cluster-wide list


def test_namespaced_role() -> None:
    source = Source(
        [
            role("Role", "cm", [{"apiGroups": [""], "resources": ["configmaps"],
                                 "verbs": ["create"]}], namespace="ns"),
            binding("RoleBinding", "rb", "Role", "cm", [{"kind": "User", "name": "alice"}],
                    namespace="ns"),
        ]
    )  # fmt: skip
    rbac = RBACAuthorizer(source)
    assert rbac.authorize(ALICE, req("POST", "/api/v1/namespaces/ns/configmaps")).allowed
    assert not rbac.authorize(ALICE, req("POST", "/api/v1/namespaces/ns/secrets")).allowed


# --- refusal texts -------------------------------------------------------------------------


def test_missing_role_is_the_reason_and_forbidden_text_is_upstreams() -> None:
    source = Source(
        [
            binding("RoleBinding", "rb", "Role", "missing", [{"kind": "User", "name": "alice"}],
                    namespace="ns"),
        ]
    )  # fmt: skip
    rbac = RBACAuthorizer(source)
    info = req("GET", "/api/v1/namespaces/ns/pods/p")
    decision = rbac.authorize(ALICE, info)
    assert decision == Decision(False, 'RBAC: role.rbac.authorization.k8s.io "missing" not found')
    error = forbidden(ALICE, info, decision.reason)
    assert error.code == 403
    assert error.reason == "Forbidden"
    assert error.message == (
        'pods "p" is forbidden: User "alice" cannot get resource "pods" in API group "" in the '
        'namespace "ns": RBAC: role.rbac.authorization.k8s.io "missing" not found'
    )
    assert error.status()["details"] == {"kind": "pods", "name": "p"}


def test_several_errors_are_aggregated_like_upstream() -> None:
    source = Source(
        [
            binding("ClusterRoleBinding", "a", "ClusterRole", "gone1",
                    [{"kind": "User", "name": "alice"}]),
            binding("ClusterRoleBinding", "b", "ClusterRole", "gone2",
                    [{"kind": "User", "name": "alice"}]),
            binding("ClusterRoleBinding", "c", "ClusterRole", "gone1",
                    [{"kind": "User", "name": "alice"}]),
        ]
    )  # fmt: skip
    decision = RBACAuthorizer(source).authorize(ALICE, req("GET", "/api/v1/nodes"))
    assert decision.reason == (
        'RBAC: [clusterrole.rbac.authorization.k8s.io "gone1" not found, '
        'clusterrole.rbac.authorization.k8s.io "gone2" not found]'
    )


@pytest.mark.parametrize(
    ("info", "message"),
    [
        (req("GET", "/api/v1/namespaces/ns/pods"),
         'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the '
         'namespace "ns"'),
        (req("GET", "/api/v1/nodes/n1"),
         'nodes "n1" is forbidden: User "alice" cannot get resource "nodes" in API group "" at '
         "the cluster scope"),
        (req("PUT", "/api/v1/namespaces/ns/pods/p/status"),
         'pods "p" is forbidden: User "alice" cannot update resource "pods/status" in API group '
         '"" in the namespace "ns"'),
        (req("PATCH", "/apis/apps/v1/namespaces/ns/deployments/d/scale"),
         'deployments.apps "d" is forbidden: User "alice" cannot patch resource '
         '"deployments/scale" in API group "apps" in the namespace "ns"'),
        (req("GET", "/api/v1/namespaces/ns"),
         'namespaces "ns" is forbidden: User "alice" cannot get resource "namespaces" in API '
         'group "" in the namespace "ns"'),
        (req("GET", "/metrics"), 'forbidden: User "alice" cannot get path "/metrics"'),
        (req("GET", "/x<y>&z"), 'forbidden: User "alice" cannot get path "/x&lt;y&gt;&amp;z"'),
    ],
)  # fmt: skip
def test_forbidden_messages(info: RequestInfo, message: str) -> None:
    decision = RBACAuthorizer(Source([])).authorize(ALICE, info)
    assert decision == Decision(False, "")
    assert forbidden(ALICE, info, decision.reason).message == message


# --- aggregation ---------------------------------------------------------------------------


def test_aggregation_computed_on_read() -> None:
    label = {"labels": {"rbac.authorization.k8s.io/aggregate-to-monitor": "true"}}
    extra_rule = {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}
    monitor = role(
        "ClusterRole", "monitor", [],
        aggregationRule={"clusterRoleSelectors": [
            {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-monitor": "true"}}]},
    )  # fmt: skip
    source = Source(
        [
            monitor,
            role("ClusterRole", "b-part", [POD_READER, extra_rule], meta=label),
            role("ClusterRole", "a-part", [POD_READER], meta=label),
            role("ClusterRole", "unlabelled", [{"apiGroups": ["*"], "resources": ["*"],
                                                "verbs": ["*"]}]),
            binding("ClusterRoleBinding", "m", "ClusterRole", "monitor",
                    [{"kind": "User", "name": "alice"}]),
        ]
    )  # fmt: skip
    # each rule once, roles in name order
    assert aggregate_rules(monitor, source.cluster_roles()) == [POD_READER, extra_rule]
    rbac = RBACAuthorizer(source)
    assert rbac.authorize(ALICE, req("GET", "/api/v1/nodes/n")).allowed
    assert not rbac.authorize(ALICE, req("DELETE", "/api/v1/nodes/n")).allowed
    # a role added later is picked up at once
    source.objects.append(
        role("ClusterRole", "c-part", [{"apiGroups": [""], "resources": ["nodes"],
                                        "verbs": ["delete"]}], meta=label)
    )  # fmt: skip
    assert rbac.authorize(ALICE, req("DELETE", "/api/v1/nodes/n")).allowed


def test_match_expressions_in_aggregation() -> None:
    selector = {
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "skip", "operator": "DoesNotExist"},
        ]
    }
    agg = role("ClusterRole", "agg", [], aggregationRule={"clusterRoleSelectors": [selector]})
    roles = [
        agg,
        role("ClusterRole", "x", [POD_READER], meta={"labels": {"tier": "a"}}),
        role("ClusterRole", "y", [{"verbs": ["get"], "nonResourceURLs": ["/y"]}],
             meta={"labels": {"tier": "b", "skip": ""}}),
        role("ClusterRole", "z", [{"verbs": ["get"], "nonResourceURLs": ["/z"]}],
             meta={"labels": {"tier": "c"}}),
    ]  # fmt: skip
    assert aggregate_rules(agg, roles) == [POD_READER]


DEFAULTS = Source(bootstrap.bootstrap_objects())


def bound_to(cluster_role: str, user: UserInfo, namespace: str = "ns") -> RBACAuthorizer:
    source = Source(
        [
            *bootstrap.bootstrap_objects(),
            binding("RoleBinding", "rb", "ClusterRole", cluster_role,
                    [{"kind": "User", "name": user.name}], namespace=namespace),
        ]
    )  # fmt: skip
    return RBACAuthorizer(source)


def test_view_edit_admin_aggregate_from_the_defaults() -> None:
    secrets = req("GET", "/api/v1/namespaces/ns/secrets/s")
    pods = req("GET", "/api/v1/namespaces/ns/pods/p")
    create_deploy = req("POST", "/apis/apps/v1/namespaces/ns/deployments")
    create_role = req("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/ns/roles")
    view, edit, admin = (bound_to(r, ALICE) for r in ("view", "edit", "admin"))
    assert view.authorize(ALICE, pods).allowed
    assert not view.authorize(ALICE, secrets).allowed  # view never shows secrets
    assert not view.authorize(ALICE, create_deploy).allowed
    assert edit.authorize(ALICE, secrets).allowed
    assert edit.authorize(ALICE, create_deploy).allowed
    assert edit.authorize(ALICE, pods).allowed  # view is aggregated into edit
    assert not edit.authorize(ALICE, create_role).allowed
    assert admin.authorize(ALICE, create_role).allowed
    assert admin.authorize(ALICE, pods).allowed  # and edit into admin
    assert not admin.authorize(ALICE, req("GET", "/api/v1/namespaces/other/pods/p")).allowed


def test_rules_for_lists_what_applies() -> None:
    status = bound_to("view", ALICE).rules_for(ALICE, "ns")
    assert status["incomplete"] is False
    assert {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]} in (
        status["resourceRules"])  # fmt: skip
    assert any("pods" in r["resources"] for r in status["resourceRules"])
    assert {
        "verbs": ["get"],
        "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
    } in status["nonResourceRules"]
    assert "evaluationError" not in status


# --- the chain and the component roles -----------------------------------------------------


def test_masters_are_always_allowed() -> None:
    chain = Authorizer(RBACAuthorizer(Source([])))
    admin = UserInfo("kubernetes-admin", groups=(MASTERS, AUTHENTICATED))
    assert chain.authorize(admin, req("DELETE", "/api/v1/nodes/n")).allowed
    assert not chain.authorize(ALICE, req("DELETE", "/api/v1/nodes/n")).allowed
    chain.check(admin, req("DELETE", "/api/v1/nodes/n"))


def test_cluster_admin_binding_by_group() -> None:
    rbac = RBACAuthorizer(DEFAULTS)
    admin = UserInfo("someone", groups=(MASTERS,))
    assert rbac.authorize(admin, req("DELETE", "/apis/apps/v1/namespaces/x/deployments/d")).allowed
    assert rbac.authorize(admin, req("GET", "/logs/anything")).allowed


SCHEDULER = UserInfo("system:kube-scheduler", groups=(AUTHENTICATED,))
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/v1/pods", True),
        ("GET", "/api/v1/nodes", True),
        ("POST", "/api/v1/namespaces/ns/pods/p/binding", True),
        ("PUT", "/api/v1/namespaces/ns/pods/p/status", True),
        ("POST", "/api/v1/namespaces/ns/events", True),
        ("GET", "/api/v1/services", True),
        ("GET", "/apis/apps/v1/replicasets", True),
        ("GET", f"{LEASES}/kube-scheduler", True),
        ("PUT", f"{LEASES}/kube-scheduler", True),
        ("POST", LEASES, True),
        # not another component's lease
        ("PUT", f"{LEASES}/kube-controller-manager", False),
        # nothing like secrets, and no writes beyond its job
        ("GET", "/api/v1/namespaces/ns/secrets/s", False),
        ("GET", "/api/v1/secrets", False),
        ("GET", "/api/v1/namespaces/ns/configmaps/c", False),
        ("POST", "/api/v1/namespaces/ns/pods", False),
        ("PUT", "/api/v1/nodes/n1", False),
        ("DELETE", "/api/v1/nodes/n1", False),
        ("POST", "/apis/apps/v1/namespaces/ns/deployments", False),
    ],
)  # fmt: skip
def test_scheduler_gets_what_it_needs_and_nothing_more(
    method: str, path: str, allowed: bool
) -> None:
    assert RBACAuthorizer(DEFAULTS).authorize(SCHEDULER, req(method, path)).allowed is allowed


def test_controller_roles_are_bound_to_their_service_accounts() -> None:
    rbac = RBACAuthorizer(DEFAULTS)

    def sa(name: str) -> UserInfo:
        return UserInfo(f"system:serviceaccount:kube-system:{name}",
                        groups=("system:serviceaccounts", AUTHENTICATED))  # fmt: skip

    rs = sa("replicaset-controller")
    assert rbac.authorize(rs, req("POST", "/api/v1/namespaces/ns/pods")).allowed
    assert rbac.authorize(
        rs, req("PUT", "/apis/apps/v1/namespaces/ns/replicasets/r/status")
    ).allowed
    assert not rbac.authorize(rs, req("DELETE", "/api/v1/nodes/n")).allowed
    dep = sa("deployment-controller")
    assert rbac.authorize(dep, req("POST", "/apis/apps/v1/namespaces/ns/replicasets")).allowed
    assert not rbac.authorize(dep, req("POST", "/api/v1/namespaces/ns/pods")).allowed
    ep = sa("endpoint-controller")
    assert rbac.authorize(ep, req("PUT", "/api/v1/namespaces/ns/endpoints/e")).allowed
    nc = sa("node-controller")
    assert rbac.authorize(nc, req("PATCH", "/api/v1/nodes/n/status")).allowed
    assert rbac.authorize(nc, req("DELETE", "/api/v1/namespaces/ns/pods/p")).allowed
    ns = sa("namespace-controller")
    assert rbac.authorize(ns, req("DELETE", "/apis/apps/v1/namespaces/x/deployments")).allowed
    gc = sa("generic-garbage-collector")
    assert rbac.authorize(gc, req("DELETE", "/api/v1/namespaces/x/pods/p")).allowed
    assert not rbac.authorize(gc, req("POST", "/api/v1/namespaces/x/pods")).allowed
    sac = sa("service-account-controller")
    assert rbac.authorize(sac, req("POST", "/api/v1/namespaces/x/serviceaccounts")).allowed
    # the account name must match: another account in kube-system gets nothing
    assert not rbac.authorize(sa("nobody"), req("POST", "/api/v1/namespaces/ns/pods")).allowed


def test_discovery_public_info_basic_user_and_proxy() -> None:
    rbac = RBACAuthorizer(DEFAULTS)
    anonymous = UserInfo("system:anonymous", groups=(UNAUTHENTICATED,))
    user = UserInfo("carol", groups=(AUTHENTICATED,))
    for path in ("/api", "/api/v1", "/apis", "/apis/apps/v1", "/version", "/openapi/v2"):
        assert rbac.authorize(user, req("GET", path)).allowed, path
    assert not rbac.authorize(anonymous, req("GET", "/api")).allowed
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        assert rbac.authorize(anonymous, req("GET", path)).allowed, path
    ssar = req("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
    assert rbac.authorize(user, ssar).allowed
    whoami = req("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews")
    assert rbac.authorize(user, whoami).allowed
    assert not rbac.authorize(user, req("GET", "/api/v1/namespaces/ns/pods")).allowed
    proxy = UserInfo("system:kube-proxy", groups=(AUTHENTICATED,))
    assert rbac.authorize(proxy, req("GET", "/api/v1/endpoints", watch="true")).allowed
    assert rbac.authorize(proxy, req("GET", "/api/v1/services")).allowed
    assert not rbac.authorize(proxy, req("GET", "/api/v1/namespaces/ns/secrets/s")).allowed


def test_controller_manager_and_leader_locking() -> None:
    rbac = RBACAuthorizer(DEFAULTS)
    kcm = UserInfo("system:kube-controller-manager", groups=(AUTHENTICATED,))
    assert rbac.authorize(kcm, req("GET", "/apis/apps/v1/deployments", watch="true")).allowed
    lease = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager"
    assert rbac.authorize(kcm, req("PUT", lease)).allowed
    assert not rbac.authorize(kcm, req("DELETE", "/api/v1/namespaces/ns/pods/p")).allowed
    # the leader-locking Role lets it watch leases in kube-system
    leases = req("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", watch="1")
    assert rbac.authorize(kcm, leases).allowed


def test_bootstrap_objects_are_well_formed() -> None:
    objects = bootstrap.bootstrap_objects()
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names))
    roles = {o["metadata"]["name"] for o in objects if o["kind"] == "ClusterRole"}
    for wanted in ("cluster-admin", "admin", "edit", "view", "system:basic-user",
                   "system:discovery", "system:public-info-viewer", "system:kube-scheduler",
                   "system:kube-controller-manager", "system:node", "system:node-proxier",
                   "system:controller:replicaset-controller"):  # fmt: skip
        assert wanted in roles
    first_binding = names.index(("ClusterRoleBinding", "cluster-admin"))
    assert all(kind == "ClusterRole" for kind, _ in names[:first_binding])
    for obj in objects:
        assert obj["apiVersion"] == "rbac.authorization.k8s.io/v1"
        assert obj["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
        if obj["kind"].endswith("Binding"):
            ref = obj["roleRef"]
            assert (ref["kind"] == "Role") == (obj["kind"] == "RoleBinding")
        for rule in obj.get("rules", []):
            for key, values in rule.items():
                assert values == sorted(values), (obj["metadata"]["name"], key)
    node = next(o for o in objects if o["metadata"]["name"] == "system:node"
                and o["kind"] == "ClusterRoleBinding")  # fmt: skip
    assert "subjects" not in node
    # callers may change what they get without changing the next caller's copy
    objects[0]["rules"].clear()
    assert bootstrap.bootstrap_objects()[0]["rules"]
