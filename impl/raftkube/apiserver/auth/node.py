"""What a kubelet may read and write: upstream's Node authorizer.

A node is a user named ``system:node:{name}`` in the group ``system:nodes`` (upstream's default
node identifier). Each may read only what the pods bound to it need, and write only its own
objects: upstream splits this between this authorizer, which knows the request but not its
body, and the NodeRestriction admission rule (:mod:`.noderestriction`), which sees the object.

The rules (upstream's ``NodeAuthorizer`` with the ``AuthorizeNodeWithSelectors`` behaviour that
is on by default since 1.32):

- secrets and configmaps: get/list/watch of one named object some pod on the node uses;
- persistentvolumeclaims: get of one a pod on the node uses; serviceaccounts: only creating a
  ``token`` for one a pod on the node runs as;
- pods: get of a pod bound to it, list/watch only with the ``spec.nodeName={node}`` field
  selector (or of one such pod by name), create/delete (mirror pods), status updates, eviction;
- nodes: create/update/patch (NodeRestriction keeps it to its own), get/list/watch of its own
  Node only, status updates;
- leases: get/create/update/patch/delete of its own Lease in ``kube-node-lease``;
- everything else: the static rules of ``system:node`` (:func:`.bootstrap.node_rules`), which
  let it read services and endpoints and write events.

Anything refused gets no opinion (with upstream's reason), so RBAC may still allow it. Upstream
finds "the pods that use this object" in a graph its informers maintain; here the integrator
supplies ``pods_on_node(node) -> pods`` (a watch-cache index by ``spec.nodeName``) and the
relationships are read from those pods' specs on each request, which costs one pass over the
node's pods. Persistent volumes, which this cluster does not serve, are related to nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs

from raftkube.apiserver.request_info import RequestInfo

from .authorize import NO_OPINION, Decision, node_identity
from .bootstrap import node_rules
from .rbac import rules_allow
from .user import UserInfo

Obj = Mapping[str, Any]
NODE_LEASE_NAMESPACE = "kube-node-lease"

PodsOnNode = Callable[[str], Iterable[Obj]]

_ALLOW = Decision(True)


# --- what a pod references -----------------------------------------------------------------


def _containers(spec: Obj) -> Iterator[Obj]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or ()


def _env_refs(spec: Obj, ref_key: str, key_ref: str) -> Iterator[str]:
    for container in _containers(spec):
        for source in container.get("envFrom") or ():
            if (source.get(ref_key) or {}).get("name"):
                yield source[ref_key]["name"]
        for env in container.get("env") or ():
            ref = (env.get("valueFrom") or {}).get(key_ref) or {}
            if ref.get("name"):
                yield ref["name"]


def pod_secret_names(pod: Obj) -> set[str]:
    """Every Secret a pod references (upstream's ``VisitPodSecretNames``): pull secrets, env,
    secret and projected volumes, and the ``secretRef`` of volume plugins."""
    spec = pod.get("spec") or {}
    names = {s.get("name", "") for s in spec.get("imagePullSecrets") or ()}
    names.update(_env_refs(spec, "secretRef", "secretKeyRef"))
    for volume in spec.get("volumes") or ():
        for source_type, source in volume.items():
            if not isinstance(source, Mapping):
                continue
            if source_type in ("secret", "azureFile"):
                names.add(source.get("secretName", ""))
            for key in ("secretRef", "nodePublishSecretRef"):
                names.add((source.get(key) or {}).get("name", ""))
            if source_type == "projected":
                for projection in source.get("sources") or ():
                    names.add((projection.get("secret") or {}).get("name", ""))
    names.discard("")
    return names


def pod_configmap_names(pod: Obj) -> set[str]:
    """Every ConfigMap a pod references (upstream's ``VisitPodConfigmapNames``)."""
    spec = pod.get("spec") or {}
    names = set(_env_refs(spec, "configMapRef", "configMapKeyRef"))
    for volume in spec.get("volumes") or ():
        names.add((volume.get("configMap") or {}).get("name", ""))
        for projection in (volume.get("projected") or {}).get("sources") or ():
            names.add((projection.get("configMap") or {}).get("name", ""))
    names.discard("")
    return names


def pod_pvc_names(pod: Obj) -> set[str]:
    """The PersistentVolumeClaims a pod mounts, ephemeral ones (``{pod}-{volume}``) too."""
    pod_name = (pod.get("metadata") or {}).get("name", "")
    names: set[str] = set()
    for volume in (pod.get("spec") or {}).get("volumes") or ():
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            names.add(claim)
        if volume.get("ephemeral") is not None:
            names.add(f"{pod_name}-{volume.get('name', '')}")
    return names


def pod_service_account(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "")


_REFERENCES: dict[str, Callable[[Obj], Iterable[str]]] = {
    "secrets": pod_secret_names,
    "configmaps": pod_configmap_names,
    "persistentvolumeclaims": pod_pvc_names,
    "serviceaccounts": lambda pod: [pod_service_account(pod)],
    "pods": lambda pod: [(pod.get("metadata") or {}).get("name", "")],
}


def _field_selects_node(selector: str, node: str) -> bool:
    """Whether a field selector requires ``spec.nodeName`` to equal ``node``."""
    for term in selector.split(","):
        for operator in ("!=", "==", "="):
            key, sep, value = term.partition(operator)
            if sep:
                if operator != "!=" and key.strip() == "spec.nodeName" and value.strip() == node:
                    return True
                break
    return False


# --- the authorizer ------------------------------------------------------------------------


@attrs.frozen
class NodeAuthorizer:
    """See the module docstring. ``with_selectors=False`` is upstream's behaviour before
    ``AuthorizeNodeWithSelectors``: nodes and pods are then judged by the static rules."""

    pods_on_node: PodsOnNode
    with_selectors: bool = True
    static_rules: tuple[Obj, ...] = attrs.field(factory=lambda: tuple(node_rules()))

    def authorize(self, user: UserInfo, info: RequestInfo, *, field_selector: str = "") -> Decision:
        node, is_node = node_identity(user)
        if not is_node:
            return NO_OPINION
        if not node:
            return Decision(False, f'unknown node for user "{user.name}"')
        if info.is_resource_request:
            decision = self._subdivided(node, info, field_selector)
            if decision is not None:
                return decision
        return _ALLOW if rules_allow(info, self.static_rules) else NO_OPINION

    def _subdivided(self, node: str, info: RequestInfo, field_selector: str) -> Decision | None:
        """The decision for a resource upstream judges per object, or None for the others."""
        group, resource = info.api_group, info.resource
        if group == "" and resource in ("secrets", "configmaps"):
            return self._read_namespaced(node, info)
        if group == "" and resource == "persistentvolumeclaims":
            return self._get(node, info)
        if group == "" and resource == "persistentvolumes":
            return self._unrelated(node) if info.verb == "get" else _only_get()
        if group == "" and resource == "serviceaccounts":
            return self._create_token(node, info)
        if group == "coordination.k8s.io" and resource == "leases":
            return _lease(node, info)
        if group == "" and resource == "nodes" and self.with_selectors:
            return _node_object(node, info)
        if group == "" and resource == "pods" and self.with_selectors:
            return self._pod(node, info, field_selector)
        return None

    def _related(self, node: str, info: RequestInfo) -> Decision:
        """Allowed if a pod bound to ``node`` in the request's namespace uses the object."""
        if not info.name:
            return Decision(False, "No Object name found")
        references = _REFERENCES[info.resource]
        for pod in self.pods_on_node(node):
            meta = pod.get("metadata") or {}
            if meta.get("namespace", "") != info.namespace:
                continue
            if (pod.get("spec") or {}).get("nodeName") != node:
                continue
            if info.name in references(pod):
                return _ALLOW
        return self._unrelated(node)

    @staticmethod
    def _unrelated(node: str) -> Decision:
        return Decision(False, f"no relationship found between node '{node}' and this object")

    def _read_namespaced(self, node: str, info: RequestInfo) -> Decision:
        if info.verb not in ("get", "list", "watch"):
            return Decision(False, "can only read resources of this type")
        if info.subresource:
            return Decision(False, "cannot read subresource")
        if not info.namespace:
            return Decision(False, "can only read namespaced object of this type")
        return self._related(node, info)

    def _get(self, node: str, info: RequestInfo) -> Decision:
        if info.verb != "get":
            return _only_get()
        if info.subresource:
            return Decision(False, "cannot get subresource")
        return self._related(node, info)

    def _create_token(self, node: str, info: RequestInfo) -> Decision:
        if info.verb != "create" or not info.name:
            return Decision(False, "can only create tokens for individual service accounts")
        if info.subresource != "token":
            return Decision(False, "can only create token subresource of serviceaccount")
        return self._related(node, info)

    def _pod(self, node: str, info: RequestInfo, field_selector: str) -> Decision:
        verb = info.verb
        if info.subresource == "":
            if verb == "get":
                return self._get(node, info)
            if verb in ("list", "watch"):
                if _field_selects_node(field_selector, node):
                    return _ALLOW
                if info.name:
                    return self._related(node, info)
                return Decision(False, "can only list/watch pods with spec.nodeName field selector")
            if verb in ("create", "delete"):
                return _ALLOW  # mirror pods; NodeRestriction keeps them to this node
        elif info.subresource == "status" and verb in ("update", "patch"):
            return _ALLOW  # NodeRestriction keeps it to pods bound to this node
        elif info.subresource == "eviction" and verb == "create":
            return _ALLOW
        return NO_OPINION


def _only_get() -> Decision:
    return Decision(False, "can only get individual resources of this type")


def _lease(node: str, info: RequestInfo) -> Decision:
    if info.verb not in ("get", "create", "update", "patch", "delete"):
        return Decision(False, "can only get, create, update, patch, or delete a node lease")
    if info.namespace != NODE_LEASE_NAMESPACE:
        return Decision(
            False, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace'
        )
    # On create the name is in the body, which NodeRestriction checks.
    if info.verb != "create" and info.name != node:
        return Decision(
            False, "can only access node lease with the same name as the requesting node"
        )
    return _ALLOW


def _node_object(node: str, info: RequestInfo) -> Decision:
    if info.subresource == "":
        if info.verb in ("create", "update", "patch"):
            return _ALLOW  # NodeRestriction keeps it to its own Node
        if info.verb in ("get", "list", "watch"):
            if info.name == node:
                return _ALLOW
            if not info.name:
                return Decision(
                    False, f"node '{node}' cannot read all nodes, only its own Node object"
                )
            return Decision(
                False, f"node '{node}' cannot read '{info.name}', only its own Node object"
            )
    elif info.subresource == "status" and info.verb in ("update", "patch"):
        return _ALLOW
    return NO_OPINION
