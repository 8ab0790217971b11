"""What a kubelet may write, judged on the object: upstream's NodeRestriction admission rule.

The Node authorizer (:mod:`.node`) lets every node create or update Nodes, create mirror pods
and update pod status, because it cannot see which object a request writes; this rule, run on
the object, keeps each node to its own: a node may create only mirror pods bound to itself that
reference no other API object, delete or evict only pods bound to it, update the status only of
pods bound to it (and not their labels), modify only its own Node (never its taints, nor labels
outside the kubelet's allowed set, in particular none under ``node-restriction.kubernetes.io/``),
only its own Lease in ``kube-node-lease``, and request only tokens bound to a pod scheduled on
it. Messages are upstream's, wrapped as its ``admission.NewForbidden`` wraps them.

Left out: the rules for objects this cluster does not serve (PersistentVolumeClaim status,
CSINodes, ResourceSlices, CertificateSigningRequests).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from raftkube.apiserver.errors import APIError, forbidden_message, not_found
from raftkube.apiserver.request_info import RequestInfo

from .authorize import node_identity
from .node import NODE_LEASE_NAMESPACE, pod_configmap_names, pod_secret_names
from .user import UserInfo

Obj = Mapping[str, Any]
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
NODE_RESTRICTION_LABEL_NAMESPACE = "node-restriction.kubernetes.io"

_KUBELET_LABELS = frozenset(
    {
        "kubernetes.io/hostname",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
    }
)
_KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


def _in_namespace(namespace: str, domain: str) -> bool:
    return namespace == domain or namespace.endswith("." + domain)


def _label_namespace(key: str) -> str:
    prefix, sep, _ = key.partition("/")
    return prefix if sep else ""


def forbidden_node_labels(new: Mapping[str, str], old: Mapping[str, str]) -> list[str]:
    """The labels a node changed (added, removed or modified) that it may not: those under
    ``node-restriction.kubernetes.io`` and any ``kubernetes.io``/``k8s.io`` label outside the
    kubelet's own set, sorted."""
    changed = {k for k in new.keys() | old.keys() if new.get(k) != old.get(k)}
    forbidden = set()
    for key in changed:
        namespace = _label_namespace(key)
        if _in_namespace(namespace, NODE_RESTRICTION_LABEL_NAMESPACE):
            forbidden.add(key)
        is_kubernetes = _in_namespace(namespace, "kubernetes.io") or _in_namespace(
            namespace, "k8s.io"
        )
        is_kubelet = key in _KUBELET_LABELS or any(
            _in_namespace(namespace, allowed) for allowed in _KUBELET_LABEL_NAMESPACES
        )
        if is_kubernetes and not is_kubelet:
            forbidden.add(key)
    return sorted(forbidden)


_OPERATIONS = {
    "create": "CREATE",
    "update": "UPDATE",
    "patch": "UPDATE",
    "delete": "DELETE",
    "deletecollection": "DELETE",
}


def _meta(obj: Obj | None) -> Obj:
    return (obj or {}).get("metadata") or {}


def _spec(obj: Obj | None) -> Obj:
    return (obj or {}).get("spec") or {}


@attrs.frozen
class _Refusal:
    """Builds upstream's ``admission.NewForbidden``: ``{resource} "{name}" is forbidden:
    {why}``, the name from the request or else from the object."""

    info: RequestInfo
    obj: Obj | None

    def __call__(self, why: str) -> APIError:
        info = self.info
        name = info.name or _meta(self.obj).get("name", "")
        qualified = f"{info.resource}.{info.api_group}" if info.api_group else info.resource
        subject = f'{qualified} "{name}"' if name else qualified
        return forbidden_message(
            f"{subject} is forbidden: {why}", info.resource, name, info.api_group
        )


def node_restriction(
    user: UserInfo,
    info: RequestInfo,
    obj: Obj | None,
    old: Obj | None,
    *,
    node: Obj | None = None,
    bound_pod: Obj | None = None,
) -> APIError | None:
    """NodeRestriction for one create, update/patch or delete: the error to refuse it with, or
    None. ``obj`` is the object being written (a TokenRequest for ``serviceaccounts/token``, an
    Eviction for ``pods/eviction``), ``old`` the stored one (the pod being deleted, evicted or
    having its status updated). ``node`` is the requesting node's Node (to check a mirror
    pod's owner uid) and ``bound_pod`` the pod a TokenRequest binds to, both looked up by the
    caller; None means they do not exist."""
    node_name, is_node = node_identity(user)
    operation = _OPERATIONS.get(info.verb)
    if not is_node or operation is None or not info.is_resource_request:
        return None
    refuse = _Refusal(info, obj)
    if not node_name:
        return refuse(f'could not determine node from user "{user.name}"')
    group, resource = info.api_group, info.resource
    if group == "" and resource == "pods":
        return _admit_pod(node_name, info, operation, obj, old, node, refuse)
    if group == "" and resource == "nodes":
        return _admit_node(node_name, info, operation, obj, old, refuse)
    if group == "" and resource == "serviceaccounts":
        return _admit_token(node_name, info, operation, obj, bound_pod, refuse)
    if group == "coordination.k8s.io" and resource == "leases":
        if info.namespace != NODE_LEASE_NAMESPACE:
            return refuse(
                f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace'
            )
        name = _meta(obj).get("name", "") if operation == "CREATE" else info.name
        if name != node_name:
            return refuse("can only access node lease with the same name as the requesting node")
    return None


def _admit_pod(
    node_name: str,
    info: RequestInfo,
    operation: str,
    obj: Obj | None,
    old: Obj | None,
    node: Obj | None,
    refuse: _Refusal,
) -> APIError | None:
    who = f'node "{node_name}"'
    if info.subresource == "":
        if operation == "CREATE":
            return _admit_mirror_pod(node_name, obj, node, refuse)
        if operation == "DELETE":
            if old is None:
                return not_found("pod", info.name)
            if _spec(old).get("nodeName") != node_name:
                return refuse(f"{who} can only delete pods with spec.nodeName set to itself")
            return None
        return refuse(
            f'unexpected operation "{operation}", {who} can only create and delete mirror pods'
        )
    if info.subresource == "status":
        if operation != "UPDATE":
            return refuse(f'unexpected operation "{operation}"')
        if _spec(old).get("nodeName") != node_name:
            return refuse(
                f"{who} can only update pod status for pods with spec.nodeName set to itself"
            )
        if (_meta(old).get("labels") or {}) != (_meta(obj).get("labels") or {}):
            return refuse(f"{who} cannot update labels through pod status")
        return None
    if info.subresource == "eviction":
        if operation != "CREATE":
            return refuse(f"unexpected operation {operation}")
        if old is None:
            return not_found("pod", info.name or _meta(obj).get("name", ""))
        if _spec(old).get("nodeName") != node_name:
            return refuse(f"node {node_name} can only evict pods with spec.nodeName set to itself")
        return None
    return refuse(
        f'unexpected pod subresource "{info.subresource}", '
        "only 'status' and 'eviction' are allowed"
    )


def _admit_mirror_pod(
    node_name: str, pod: Obj | None, node: Obj | None, refuse: _Refusal
) -> APIError | None:
    who = f'node "{node_name}"'
    meta = _meta(pod)
    if MIRROR_POD_ANNOTATION not in (meta.get("annotations") or {}):
        return refuse(
            f'pod does not have "{MIRROR_POD_ANNOTATION}" annotation, '
            f"{who} can only create mirror pods"
        )
    if _spec(pod).get("nodeName") != node_name:
        return refuse(f"{who} can only create pods with spec.nodeName set to itself")
    owners = meta.get("ownerReferences") or []
    if len(owners) > 1:
        return refuse(f"{who} can only create pods with a single owner reference set to itself")
    if not owners:
        return refuse(f"{who} can only create pods with an owner reference set to itself")
    owner = owners[0]
    if (owner.get("apiVersion"), owner.get("kind"), owner.get("name")) != ("v1", "Node", node_name):
        return refuse(f"{who} can only create pods with an owner reference set to itself")
    if not owner.get("controller"):
        return refuse(f"{who} can only create pods with a controller owner reference set to itself")
    if owner.get("blockOwnerDeletion"):
        return refuse(f"{who} must not set blockOwnerDeletion on an owner reference")
    if node is None:
        return not_found("node", node_name)
    node_uid = _meta(node).get("uid", "")
    if owner.get("uid") != node_uid:
        return refuse(
            f"node {node_name} UID mismatch: expected {owner.get('uid', '')} got {node_uid}"
        )
    assert pod is not None  # it has the mirror annotation
    if _spec(pod).get("serviceAccountName"):
        return refuse(f"{who} can not create pods that reference a service account")
    if pod_secret_names(pod):
        return refuse(f"{who} can not create pods that reference secrets")
    if pod_configmap_names(pod):
        return refuse(f"{who} can not create pods that reference configmaps")
    for volume in _spec(pod).get("volumes") or ():
        for projection in (volume.get("projected") or {}).get("sources") or ():
            if projection.get("clusterTrustBundle") is not None:
                return refuse(f"{who} can not create pods that reference clustertrustbundles")
    for volume in _spec(pod).get("volumes") or ():
        if volume.get("persistentVolumeClaim") is not None:
            return refuse(f"{who} can not create pods that reference persistentvolumeclaims")
    return None  # fmt: skip


def _admit_node(
    node_name: str,
    info: RequestInfo,
    operation: str,
    obj: Obj | None,
    old: Obj | None,
    refuse: _Refusal,
) -> APIError | None:
    who = f'node "{node_name}"'
    requested = info.name or (_meta(obj).get("name", "") if operation == "CREATE" else "")
    if requested != node_name:
        return refuse(f'{who} is not allowed to modify node "{requested}"')
    labels = _meta(obj).get("labels") or {}
    if operation == "CREATE":
        if _spec(obj).get("configSource") is not None:
            return refuse(f"{who} is not allowed to create pods with a non-nil configSource")
        forbidden = forbidden_node_labels(labels, {})
        if forbidden:
            return refuse(
                f"{who} is not allowed to set the following labels: {', '.join(forbidden)}"
            )
    elif operation == "UPDATE":
        source = _spec(obj).get("configSource")
        if source is not None and source != _spec(old).get("configSource"):
            return refuse(
                f"{who} is not allowed to update configSource to a new non-nil configSource"
            )
        if (_spec(obj).get("taints") or []) != (_spec(old).get("taints") or []):
            return refuse(f"{who} is not allowed to modify taints")
        forbidden = forbidden_node_labels(labels, _meta(old).get("labels") or {})
        if forbidden:
            return refuse(f"is not allowed to modify labels: {', '.join(forbidden)}")
    return None  # fmt: skip


def _admit_token(
    node_name: str,
    info: RequestInfo,
    operation: str,
    request: Obj | None,
    bound_pod: Obj | None,
    refuse: _Refusal,
) -> APIError | None:
    if operation != "CREATE" or info.subresource != "token":
        return None
    ref = _spec(request).get("boundObjectRef") or {}
    if ref.get("apiVersion") != "v1" or ref.get("kind") != "Pod" or not ref.get("name"):
        return refuse("node requested token not bound to a pod")
    if not ref.get("uid"):
        return refuse("node requested token with a pod binding without a uid")
    if bound_pod is None:
        return not_found("pod", ref["name"])
    if ref["uid"] != _meta(bound_pod).get("uid"):
        return refuse(
            f"the UID in the bound object reference ({ref['uid']}) does not match the UID in "
            "record. The object might have been deleted and then recreated"
        )
    if _spec(bound_pod).get("nodeName") != node_name:
        return refuse("node requested token bound to a pod scheduled on a different node")
    return None
