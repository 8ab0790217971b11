"""The Node authorizer (what a kubelet may read and write) and NodeRestriction (which object)."""

from __future__ import annotations

from typing import Any

import pytest

from raftkube.apiserver.auth.authorize import Authorizer, Decision, node_identity
from raftkube.apiserver.auth.bootstrap import bootstrap_objects
from raftkube.apiserver.auth.node import NodeAuthorizer, pod_secret_names
from raftkube.apiserver.auth.noderestriction import forbidden_node_labels, node_restriction
from raftkube.apiserver.auth.rbac import RBACAuthorizer
from raftkube.apiserver.auth.user import AUTHENTICATED, NODES, UserInfo
from raftkube.apiserver.errors import APIError
from raftkube.apiserver.request_info import RequestInfo, parse_request_info
from tests.helpers.memory_rbac import Source

Obj = dict[str, Any]

N1 = UserInfo("system:node:n1", groups=(NODES, AUTHENTICATED))


def pod(name: str, node: str, namespace: str = "default", **spec: Any) -> Obj:
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": {"nodeName": node, **spec},
    }


WEB = pod(
    "web",
    "n1",
    serviceAccountName="builder",
    imagePullSecrets=[{"name": "pull"}],
    containers=[
        {
            "name": "c",
            "envFrom": [{"configMapRef": {"name": "settings"}}],
            "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "env-secret"}}}],
        }
    ],
    volumes=[
        {"name": "certs", "secret": {"secretName": "tls"}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "claim"}},
        {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}},
        {"name": "all", "projected": {"sources": [{"configMap": {"name": "projected-cm"}},
                                                  {"secret": {"name": "projected-secret"}}]}},
    ],
)  # fmt: skip
OTHER = pod("db", "n2", volumes=[{"name": "s", "secret": {"secretName": "db-secret"}}])
PODS = {"n1": [WEB], "n2": [OTHER]}


def authorizer(with_selectors: bool = True) -> NodeAuthorizer:
    return NodeAuthorizer(lambda node: PODS.get(node, []), with_selectors=with_selectors)


def req(method: str, path: str, **query: str) -> RequestInfo:
    return parse_request_info(method, path, {k: (v,) for k, v in query.items()})


NO_RELATION = "no relationship found between node 'n1' and this object"
ALLOW = Decision(True)
NONE = Decision(False)
UNRELATED = Decision(False, NO_RELATION)
NS = "/api/v1/namespaces/default"
LEASES = "/apis/coordination.k8s.io/v1/namespaces"
SELECTOR_ONLY = Decision(False, "can only list/watch pods with spec.nodeName field selector")
READ_ONLY = Decision(False, "can only read resources of this type")
GET_ONLY = Decision(False, "can only get individual resources of this type")
TOKEN_ONLY = Decision(False, "can only create tokens for individual service accounts")
NAMESPACED = Decision(False, "can only read namespaced object of this type")
OWN_LEASE = Decision(False, "can only access node lease with the same name as the requesting node")
LEASE_NS = Decision(False, 'can only access leases in the "kube-node-lease" system namespace')
LEASE_VERBS = Decision(False, "can only get, create, update, patch, or delete a node lease")
OTHER_NODE = Decision(False, "node 'n1' cannot read 'n2', only its own Node object")
ALL_NODES = Decision(False, "node 'n1' cannot read all nodes, only its own Node object")


@pytest.mark.parametrize(
    ("method", "path", "selector", "decision"),
    [
        # secrets and configmaps a pod on the node uses, and nothing else
        ("GET", f"{NS}/secrets/tls", "", ALLOW),
        ("GET", f"{NS}/secrets/pull", "", ALLOW),
        ("GET", f"{NS}/secrets/env-secret", "", ALLOW),
        ("GET", f"{NS}/secrets/projected-secret", "", ALLOW),
        ("GET", f"{NS}/configmaps/settings", "", ALLOW),
        ("GET", f"{NS}/configmaps/projected-cm", "", ALLOW),
        ("GET", f"{NS}/secrets/db-secret", "", UNRELATED),
        ("GET", "/api/v1/namespaces/other/secrets/tls", "", UNRELATED),
        ("GET", f"{NS}/secrets", "", Decision(False, "No Object name found")),
        ("GET", f"{NS}/secrets", "metadata.name=tls", ALLOW),
        ("GET", "/api/v1/secrets", "", NAMESPACED),
        ("PUT", f"{NS}/secrets/tls", "", READ_ONLY),
        # claims: get only
        ("GET", f"{NS}/persistentvolumeclaims/claim", "", ALLOW),
        ("GET", f"{NS}/persistentvolumeclaims/web-scratch", "", ALLOW),
        ("GET", f"{NS}/persistentvolumeclaims", "", GET_ONLY),
        ("GET", "/api/v1/persistentvolumes/pv", "", UNRELATED),
        # service accounts: only a token for the account a pod on the node runs as
        ("POST", f"{NS}/serviceaccounts/builder/token", "", ALLOW),
        ("POST", f"{NS}/serviceaccounts/other/token", "", UNRELATED),
        ("GET", f"{NS}/serviceaccounts/builder", "", TOKEN_ONLY),
        # pods
        ("GET", f"{NS}/pods/web", "", ALLOW),
        ("GET", f"{NS}/pods/db", "", UNRELATED),
        ("GET", "/api/v1/pods", "spec.nodeName=n1", ALLOW),
        ("GET", "/api/v1/pods", "spec.nodeName==n1,status.phase!=Failed", ALLOW),
        ("GET", "/api/v1/pods", "spec.nodeName=n2", SELECTOR_ONLY),
        ("GET", "/api/v1/pods", "spec.nodeName!=n1", SELECTOR_ONLY),
        ("GET", "/api/v1/pods", "", SELECTOR_ONLY),
        ("POST", f"{NS}/pods", "", ALLOW),
        ("PATCH", f"{NS}/pods/web/status", "", ALLOW),
        ("POST", f"{NS}/pods/web/eviction", "", ALLOW),
        ("PUT", f"{NS}/pods/web", "", NONE),
        # its own Node only
        ("GET", "/api/v1/nodes/n1", "", ALLOW),
        ("GET", "/api/v1/nodes", "metadata.name=n1", ALLOW),
        ("GET", "/api/v1/nodes/n2", "", OTHER_NODE),
        ("GET", "/api/v1/nodes", "", ALL_NODES),
        ("POST", "/api/v1/nodes", "", ALLOW),
        ("PUT", "/api/v1/nodes/n1/status", "", ALLOW),
        ("DELETE", "/api/v1/nodes/n1", "", NONE),
        # its own Lease
        ("PUT", f"{LEASES}/kube-node-lease/leases/n1", "", ALLOW),
        ("POST", f"{LEASES}/kube-node-lease/leases", "", ALLOW),
        ("PUT", f"{LEASES}/kube-node-lease/leases/n2", "", OWN_LEASE),
        ("GET", f"{LEASES}/kube-system/leases/n1", "", LEASE_NS),
        ("GET", f"{LEASES}/kube-node-lease/leases", "", LEASE_VERBS),
        # the static rules
        ("GET", "/api/v1/services", "", ALLOW),
        ("GET", f"{NS}/endpoints/e", "", ALLOW),
        ("POST", f"{NS}/events", "", ALLOW),
        ("GET", "/api/v1/endpoints", "", NONE),
        ("GET", "/apis/apps/v1/deployments", "", NONE),
        ("DELETE", f"{NS}/services/s", "", NONE),
    ],
)
def test_node_authorizer(method: str, path: str, selector: str, decision: Decision) -> None:
    query = {"fieldSelector": selector} if selector.startswith("metadata.name") else {}
    info = req(method, path, **query)
    assert authorizer().authorize(N1, info, field_selector=selector) == decision


def test_only_nodes_are_judged() -> None:
    info = req("GET", "/api/v1/namespaces/default/secrets/tls")
    plain = UserInfo("alice", groups=(AUTHENTICATED,))
    assert authorizer().authorize(plain, info) == Decision(False, "")
    no_group = UserInfo("system:node:n1", groups=(AUTHENTICATED,))
    assert node_identity(no_group) == ("", False)
    assert authorizer().authorize(no_group, info) == Decision(False, "")
    nameless = UserInfo("system:node:", groups=(NODES,))
    assert authorizer().authorize(nameless, info) == Decision(
        False, 'unknown node for user "system:node:"'
    )


def test_without_selectors_nodes_and_pods_follow_the_static_rules() -> None:
    legacy = authorizer(with_selectors=False)
    assert legacy.authorize(N1, req("GET", "/api/v1/nodes")).allowed
    assert legacy.authorize(N1, req("GET", "/api/v1/pods")).allowed
    assert not legacy.authorize(N1, req("DELETE", "/api/v1/nodes/n2")).allowed


def test_chain_reports_the_node_reason_in_the_refusal() -> None:
    chain = Authorizer(RBACAuthorizer(Source(bootstrap_objects())), authorizer())
    info = req("GET", "/api/v1/namespaces/default/secrets/db-secret")
    with pytest.raises(APIError) as caught:
        chain.check(N1, info)
    assert caught.value.message == (
        'secrets "db-secret" is forbidden: User "system:node:n1" cannot get resource "secrets" '
        'in API group "" in the namespace "default": no relationship found between node '
        "'n1' and this object"
    )
    chain.check(N1, req("GET", "/api/v1/namespaces/default/secrets/tls"))
    chain.check(N1, req("GET", "/api/v1/pods"), field_selector="spec.nodeName=n1")


def test_node_rules_are_incomplete() -> None:
    chain = Authorizer(RBACAuthorizer(Source(bootstrap_objects())), authorizer())
    status = chain.rules_for(N1, "default")
    assert status["incomplete"] is True
    assert status["evaluationError"] == "node authorizer does not support user rule resolution"
    alice = UserInfo("alice", groups=(AUTHENTICATED,))
    assert chain.rules_for(alice, "default")["incomplete"] is False


def test_pod_references() -> None:
    assert pod_secret_names(WEB) == {"pull", "env-secret", "tls", "projected-secret"}
    csi = pod("c", "n1", volumes=[{"name": "v", "csi": {"nodePublishSecretRef": {"name": "k"}}}])
    assert pod_secret_names(csi) == {"k"}


# --- NodeRestriction -----------------------------------------------------------------------

NODE_OBJ = {"metadata": {"name": "n1", "uid": "node-uid"}}


def mirror(node: str = "n1", **extra: Any) -> Obj:
    obj = pod("static", node)
    obj["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "hash"}
    obj["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Node", "name": node, "uid": "node-uid", "controller": True}
    ]
    obj["spec"].update(extra)
    return obj


def admit(
    method: str, path: str, obj: Obj | None = None, old: Obj | None = None, **kw: Any
) -> str | None:
    error = node_restriction(N1, req(method, path), obj, old, **kw)
    return None if error is None else error.message


PODS_PATH = "/api/v1/namespaces/default/pods"


def test_mirror_pods_only() -> None:
    assert admit("POST", PODS_PATH, mirror(), node=NODE_OBJ) is None
    assert admit("POST", PODS_PATH, pod("static", "n1"), node=NODE_OBJ) == (
        'pods "static" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, '
        'node "n1" can only create mirror pods'
    )
    assert admit("POST", PODS_PATH, mirror("n2"), node=NODE_OBJ) == (
        'pods "static" is forbidden: node "n1" can only create pods with spec.nodeName set to '
        "itself"
    )
    unowned = mirror()
    unowned["metadata"]["ownerReferences"] = []
    assert admit("POST", PODS_PATH, unowned, node=NODE_OBJ) == (
        'pods "static" is forbidden: node "n1" can only create pods with an owner reference set '
        "to itself"
    )
    stale = {"metadata": {"name": "n1", "uid": "new-uid"}}
    assert admit("POST", PODS_PATH, mirror(), node=stale) == (
        'pods "static" is forbidden: node n1 UID mismatch: expected node-uid got new-uid'
    )
    with_secret = mirror(volumes=[{"name": "s", "secret": {"secretName": "x"}}])
    assert admit("POST", PODS_PATH, with_secret, node=NODE_OBJ) == (
        'pods "static" is forbidden: node "n1" can not create pods that reference secrets'
    )
    with_sa = mirror(serviceAccountName="default")
    assert admit("POST", PODS_PATH, with_sa, node=NODE_OBJ) == (
        'pods "static" is forbidden: node "n1" can not create pods that reference a service account'
    )


def test_pod_delete_status_and_eviction_only_for_its_pods() -> None:
    assert admit("DELETE", f"{PODS_PATH}/web", old=WEB) is None
    assert admit("DELETE", f"{PODS_PATH}/db", old=OTHER) == (
        'pods "db" is forbidden: node "n1" can only delete pods with spec.nodeName set to itself'
    )
    assert admit("DELETE", f"{PODS_PATH}/gone") == 'pod "gone" not found'
    status = {**WEB, "status": {"phase": "Running"}}
    assert admit("PUT", f"{PODS_PATH}/web/status", status, WEB) is None
    assert admit("PATCH", f"{PODS_PATH}/db/status", OTHER, OTHER) == (
        'pods "db" is forbidden: node "n1" can only update pod status for pods with spec.nodeName '
        "set to itself"
    )
    relabelled = {**WEB, "metadata": {**WEB["metadata"], "labels": {"role": "db"}}}
    assert admit("PUT", f"{PODS_PATH}/web/status", relabelled, WEB) == (
        'pods "web" is forbidden: node "n1" cannot update labels through pod status'
    )
    assert admit("PUT", f"{PODS_PATH}/web", WEB, WEB) == (
        'pods "web" is forbidden: unexpected operation "UPDATE", node "n1" can only create and '
        "delete mirror pods"
    )
    eviction = {"metadata": {"name": "db"}}
    assert admit("POST", f"{PODS_PATH}/db/eviction", eviction, OTHER) == (
        'pods "db" is forbidden: node n1 can only evict pods with spec.nodeName set to itself'
    )


def test_own_node_only_and_protected_labels() -> None:
    n1 = {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}, "spec": {}}
    assert admit("POST", "/api/v1/nodes", n1) is None
    assert admit("PUT", "/api/v1/nodes/n2", n1, n1) == (
        'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"'
    )
    labelled = {"metadata": {"name": "n1", "labels": {
        "kubernetes.io/hostname": "n1", "node-role.kubernetes.io/master": "",
        "node-restriction.kubernetes.io/secure": "true", "example.com/rack": "7",
        "node.kubernetes.io/exclude-from-external-load-balancers": ""}}}  # fmt: skip
    assert admit("POST", "/api/v1/nodes", labelled) == (
        'nodes "n1" is forbidden: node "n1" is not allowed to set the following labels: '
        "node-restriction.kubernetes.io/secure, node-role.kubernetes.io/master"
    )
    restricted = {"metadata": {"name": "n1", "labels": {
        "node-restriction.kubernetes.io/secure": "true"}}}  # fmt: skip
    assert admit("PATCH", "/api/v1/nodes/n1", n1, restricted) == (
        'nodes "n1" is forbidden: is not allowed to modify labels: '
        "node-restriction.kubernetes.io/secure"
    )
    tainted = {**n1, "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}
    assert admit("PUT", "/api/v1/nodes/n1/status", n1, tainted) == (
        'nodes "n1" is forbidden: node "n1" is not allowed to modify taints'
    )
    assert admit("DELETE", "/api/v1/nodes/n2") == (
        'nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"'
    )


def test_forbidden_node_labels() -> None:
    assert forbidden_node_labels({"topology.kubernetes.io/zone": "a"}, {}) == []
    assert forbidden_node_labels({"kubelet.kubernetes.io/x": "1"}, {}) == []
    assert forbidden_node_labels({"foo.k8s.io/x": "1"}, {}) == ["foo.k8s.io/x"]
    assert forbidden_node_labels({}, {"a.node-restriction.kubernetes.io/x": "1"}) == [
        "a.node-restriction.kubernetes.io/x"
    ]
    assert forbidden_node_labels({"k8s.io/x": "1"}, {"k8s.io/x": "1"}) == []


def test_leases_and_tokens() -> None:
    leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
    assert admit("POST", leases, {"metadata": {"name": "n1"}}) is None
    assert admit("POST", leases, {"metadata": {"name": "n2"}}) == (
        'leases.coordination.k8s.io "n2" is forbidden: can only access node lease with the same '
        "name as the requesting node"
    )
    token = "/api/v1/namespaces/default/serviceaccounts/builder/token"
    bound = {"spec": {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "web",
                                         "uid": "uid-web"}}}  # fmt: skip
    assert admit("POST", token, bound, bound_pod=WEB) is None
    assert admit("POST", token, {"spec": {}}) == (
        'serviceaccounts "builder" is forbidden: node requested token not bound to a pod'
    )
    assert admit("POST", token, bound, bound_pod=OTHER) is not None
    elsewhere = {**OTHER, "metadata": {**OTHER["metadata"], "uid": "uid-web"}}
    assert admit("POST", token, bound, bound_pod=elsewhere) == (
        'serviceaccounts "builder" is forbidden: node requested token bound to a pod scheduled '
        "on a different node"
    )


def test_others_and_reads_are_not_restricted() -> None:
    alice = UserInfo("alice", groups=(AUTHENTICATED,))
    assert node_restriction(alice, req("POST", PODS_PATH), pod("p", "n2"), None) is None
    assert admit("GET", f"{PODS_PATH}/db") is None
    assert admit("POST", "/api/v1/namespaces/default/events", {"metadata": {"name": "e"}}) is None
