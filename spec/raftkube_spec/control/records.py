"""The objects the control loops read and write, as small abstract records.

The object API model (``raftkube_spec.kube``) keeps objects as full JSON, because it is checked
against a real server byte for byte. The loops need a handful of fields each, and a model
checker needs states that hash and compare quickly, so here every kind is a frozen record with
just those fields. The mapping to the API objects is fixed, so that a fuzzer can translate a
real request into the record request the spec allows from the same view:

===================  =========================================================================
record field         API object field
===================  =========================================================================
Meta.kind/name/ns    ``kind``, ``metadata.name``, ``metadata.namespace``
Meta.uid             ``metadata.uid``
Meta.labels          ``metadata.labels`` (sorted pairs)
Meta.owners          ``metadata.ownerReferences`` (kind, name, uid, ``blockOwnerDeletion``)
Meta.deleting        ``metadata.deletionTimestamp`` is set
Meta.finalizers      ``metadata.finalizers``; for a Namespace ``spec.finalizers`` too
Node.zone            label ``topology.kubernetes.io/zone``
Node.cpu             ``status.allocatable.cpu`` in whole units
Node.unschedulable   ``spec.unschedulable``
Node.taints          ``spec.taints`` (key, effect, ``timeAdded``)
Node.ready           ``status.conditions[type=Ready].status``: True, False or Unknown
Node.pod_cidr        ``spec.podCIDR``
Node.provider_id     ``spec.providerID``; Node.addresses: ``status.addresses[*].address``
Pod.node             ``spec.nodeName`` (set by the Binding subresource)
Pod.cpu              the pod's summed ``resources.requests.cpu`` (upstream's PodRequests)
Pod.node_selector    ``spec.nodeSelector``
Pod.tolerations      ``spec.tolerations`` (operator Exists; ``tolerationSeconds``)
Pod.anti_affinity    ``spec.affinity.podAntiAffinity.requiredDuringScheduling...``: one
                     term, its ``labelSelector.matchLabels`` and ``topologyKey``
Pod.ready            ``status.conditions[type=Ready].status == "True"``
ReplicaSet           ``spec.replicas``, ``spec.selector.matchLabels``, the template's labels
                     and cpu request; ``template_hash`` is label ``pod-template-hash``
Deployment           ``spec.replicas``, ``spec.template`` (its version stands for the hash),
                     ``spec.strategy.rollingUpdate.maxSurge/maxUnavailable`` as numbers
Service              ``spec.selector``, ``spec.ports[0].port/targetPort``,
                     ``spec.type == LoadBalancer``, ``status.loadBalancer.ingress[0].ip``
Endpoints            ``subsets[0].addresses[*]`` (targetRef pod name, nodeName) and the port
ServiceAccount       the ServiceAccount object
Token                a Secret of type ``kubernetes.io/service-account-token`` with the
                     annotations ``kubernetes.io/service-account.name`` and ``.uid``
Namespace            ``status.phase == Terminating`` is Meta.deleting
Lease                ``coordination.k8s.io/v1`` Lease: ``holderIdentity``, ``renewTime``,
                     ``leaseDurationSeconds``
===================  =========================================================================

Times are whole seconds as :class:`Stamp` values, always in the clock of the component that
wrote them; the model checker shifts every stamp together (only differences are ever read).
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

Labels = tuple[tuple[str, str], ...]


def labels(**pairs: str) -> Labels:
    return tuple(sorted(pairs.items()))


def matches(selector: Labels, target: Labels) -> bool:
    """Equality-based label selection; an empty selector selects nothing (as a Service's)."""
    return bool(selector) and set(selector) <= set(target)


@attrs.frozen(order=True)
class Stamp:
    """A clock reading of the component that wrote it, in seconds."""

    t: int


@attrs.frozen
class OwnerRef:
    kind: str
    name: str
    uid: str
    block: bool = False
    """``blockOwnerDeletion``: a foreground deletion waits for this dependent."""


@attrs.frozen
class Meta:
    kind: str
    name: str
    namespace: str = "default"
    uid: str = ""
    labels: Labels = ()
    owners: tuple[OwnerRef, ...] = ()
    deleting: bool = False
    finalizers: tuple[str, ...] = ()

    @property
    def key(self) -> Key:
        return (self.kind, self.namespace, self.name)

    @property
    def ref(self) -> Ref:
        return Ref(self.kind, self.namespace, self.name, self.uid)


Key = tuple[str, str, str]
"""(kind, namespace, name); cluster-scoped kinds have namespace ``""``."""


@attrs.frozen
class Ref:
    """An object by key and uid: a request on it is refused if the uid changed (a precondition)."""

    kind: str
    namespace: str
    name: str
    uid: str

    @property
    def key(self) -> Key:
        return (self.kind, self.namespace, self.name)


@attrs.frozen
class Taint:
    key: str
    effect: str
    added: Stamp | None = None


NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"


@attrs.frozen
class Toleration:
    """operator Exists on ``key`` (empty: every key) for ``effect`` (empty: every effect)."""

    key: str
    effect: str = ""
    seconds: int | None = None

    def tolerates(self, taint: Taint) -> bool:
        return (self.key in ("", taint.key)) and (self.effect in ("", taint.effect))


@attrs.frozen
class Node:
    meta: Meta
    zone: str = "zone-a"
    cpu: int = 1
    unschedulable: bool = False
    taints: tuple[Taint, ...] = ()
    ready: str = "True"
    pod_cidr: str = ""
    provider_id: str = ""
    addresses: tuple[str, ...] = ()


@attrs.frozen
class AntiAffinity:
    selector: Labels
    topology: str = "hostname"
    """``hostname`` (kubernetes.io/hostname) or ``zone`` (topology.kubernetes.io/zone)."""


@attrs.frozen
class Pod:
    meta: Meta
    node: str = ""
    cpu: int = 1
    node_selector: Labels = ()
    tolerations: tuple[Toleration, ...] = ()
    anti_affinity: AntiAffinity | None = None
    ready: bool = False


@attrs.frozen
class ReplicaSet:
    meta: Meta
    replicas: int
    selector: Labels
    template_labels: Labels
    cpu: int = 1


@attrs.frozen
class Deployment:
    meta: Meta
    replicas: int
    selector: Labels
    version: int = 1
    """Stands for the pod template: a new version is a new template (a new pod-template-hash)."""
    max_surge: int = 1
    max_unavailable: int = 0


@attrs.frozen
class Service:
    meta: Meta
    selector: Labels
    port: int = 80
    target_port: int = 8080
    load_balancer: bool = False
    ingress: str = ""


@attrs.frozen
class Address:
    pod: str
    node: str


@attrs.frozen
class Endpoints:
    meta: Meta
    addresses: tuple[Address, ...] = ()
    port: int = 0


@attrs.frozen
class ServiceAccount:
    meta: Meta


@attrs.frozen
class Token:
    meta: Meta
    account: str
    account_uid: str


@attrs.frozen
class Namespace:
    meta: Meta


@attrs.frozen
class Lease:
    meta: Meta
    holder: str = ""
    renew_time: Stamp | None = None
    duration: int = 0


Record = (
    Node
    | Pod
    | ReplicaSet
    | Deployment
    | Service
    | Endpoints
    | ServiceAccount
    | Token
    | Namespace
    | Lease
)
CLUSTER_SCOPED = frozenset({"Node", "Namespace"})


def meta(kind: str, name: str, namespace: str | None = None, **fields: object) -> Meta:
    """Metadata for a new object; the API server assigns the uid on create unless given."""
    ns = "" if kind in CLUSTER_SCOPED else ("default" if namespace is None else namespace)
    uid = str(fields.pop("uid", ""))
    return Meta(kind, name, ns, uid, **fields)  # type: ignore[arg-type]


def sorted_records(records: Iterable[Record]) -> tuple[Record, ...]:
    return tuple(sorted(records, key=lambda r: r.meta.key))
