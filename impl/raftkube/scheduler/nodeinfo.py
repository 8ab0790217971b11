"""What the scheduler knows of a node and of a pod, reduced to the numbers it compares:
upstream's ``framework.NodeInfo``, ``framework.PodInfo`` and ``framework.Resource``.

Amounts are integers as upstream keeps them: CPU in millicores (``Quantity.MilliValue``),
everything else in whole units (``Quantity.Value``), both rounded up. A pod's *requests* are
upstream's ``PodRequests`` (:func:`raftkube.apiserver.kinds.pods.pod_requests`: containers,
sidecars, the init-container peak, overhead); its *non-zero requests*, which only scoring
uses, are the same sum with 100m CPU and 200Mi memory standing in for a container that
requests none (``NonMissingContainerRequests``), so a node full of pods without requests
does not look empty to the scorers.

A node's capacity for scheduling is ``status.allocatable`` alone, as ``NodeInfo.SetNode``.

**Memos.** For a pod without topology spread constraints every filter and score is a function
of the node and of the pod's amounts, tolerations, node selector, affinity and node name,
which :attr:`PodInfo.signature` captures (every replica of a workload shares one). A node
keeps the results it computed for each signature (:attr:`NodeInfo.filter_memo`,
:attr:`NodeInfo.score_memo`) until it changes (a pod added or removed, a new Node object),
so scheduling many alike pods recomputes only the node that took the last one. The memo is
invisible: the same inputs give the same decisions with it or without it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from raftkube.apiserver.kinds.pods import pod_requests
from raftkube.apiserver.quantity import Quantity, QuantityError, parse_quantity_json

Obj = dict[str, Any]

CPU, MEMORY, EPHEMERAL_STORAGE, PODS = "cpu", "memory", "ephemeral-storage", "pods"
DEFAULT_MILLI_CPU_REQUEST = 100
"""``schedutil.DefaultMilliCPURequest``."""
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
"""``schedutil.DefaultMemoryRequest`` (200Mi)."""
_NON_MISSING = {CPU: "100m", MEMORY: str(DEFAULT_MEMORY_REQUEST)}
_PLACEMENT_FIELDS = ("tolerations", "nodeSelector", "affinity", "nodeName")


def is_scalar_resource(name: str) -> bool:
    """Upstream's ``IsScalarResourceName``: extended resources (``example.com/gpu``), prefixed
    native ones (``*kubernetes.io/*``), huge pages and attachable volumes."""
    if name.startswith("requests."):
        return False
    return "/" in name or name.startswith(("hugepages-", "attachable-volumes-"))


@attrs.define
class Resource:
    """Upstream's ``framework.Resource``: amounts of the resources the scheduler accounts."""

    milli_cpu: int = 0
    memory: int = 0
    ephemeral_storage: int = 0
    allowed_pod_number: int = 0
    scalar: dict[str, int] = attrs.field(factory=dict)

    @classmethod
    def from_list(cls, amounts: Mapping[str, Quantity]) -> Resource:
        out = cls()
        for name, quantity in amounts.items():
            if name == CPU:
                out.milli_cpu = quantity.milli_value()
            elif name == MEMORY:
                out.memory = quantity.value()
            elif name == EPHEMERAL_STORAGE:
                out.ephemeral_storage = quantity.value()
            elif name == PODS:
                out.allowed_pod_number = quantity.value()
            elif is_scalar_resource(name):
                out.scalar[name] = quantity.value()
        return out

    def add(self, other: Resource, sign: int = 1) -> None:
        self.milli_cpu += sign * other.milli_cpu
        self.memory += sign * other.memory
        self.ephemeral_storage += sign * other.ephemeral_storage
        for name, amount in other.scalar.items():
            self.scalar[name] = self.scalar.get(name, 0) + sign * amount


def parse_resource_list(values: Any) -> dict[str, Quantity]:
    """A ResourceList of an object (a quantity that does not parse is left out: the API server
    validated it, so only a hand-made test object can have one)."""
    out: dict[str, Quantity] = {}
    for name, value in values.items() if isinstance(values, dict) else ():
        try:
            out[name] = parse_quantity_json(value)
        except QuantityError:
            continue
    return out


def _requests_cpu_and_memory_everywhere(spec: Obj) -> bool:
    for part in ("containers", "initContainers"):
        for container in spec.get(part) or []:
            requests = ((container or {}).get("resources") or {}).get("requests") or {}
            if CPU not in requests or MEMORY not in requests:
                return False
    return True


def _with_non_missing_requests(spec: Obj) -> Obj:
    """``spec`` with every container that requests no CPU (memory) requesting the default."""
    out = dict(spec)
    for part in ("containers", "initContainers"):
        containers = spec.get(part)
        if not isinstance(containers, list):
            continue
        changed = []
        for container in containers:
            if not isinstance(container, dict):
                continue
            resources = container.get("resources")
            requests = resources.get("requests") if isinstance(resources, dict) else None
            requests = dict(requests) if isinstance(requests, dict) else {}
            for name, default in _NON_MISSING.items():
                requests.setdefault(name, default)
            changed.append({**container, "resources": {**(resources or {}), "requests": requests}})
        out[part] = changed
    return out


def _signature(spec: Obj, requests: Resource, non_zero: Resource) -> str | None:
    """One string (its hash is computed once, where a tuple's is computed at every lookup)."""
    if spec.get("topologySpreadConstraints"):
        return None  # its filter also counts other pods: nothing to memoise by node alone
    return json.dumps(
        [
            [spec.get(name) for name in _PLACEMENT_FIELDS],
            requests.milli_cpu,
            requests.memory,
            requests.ephemeral_storage,
            sorted(requests.scalar.items()),
            non_zero.milli_cpu,
            non_zero.memory,
        ],
        sort_keys=True,
    )


def pod_key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


@attrs.define(eq=False)
class PodInfo:
    """One pod, with what the filters and scorers read of it computed once."""

    pod: Obj
    key: str
    namespace: str
    name: str
    uid: str
    labels: dict[str, str]
    requests: Resource
    non_zero_cpu: int
    non_zero_memory: int
    priority: int
    signature: str | None = None
    """All that its filters and scores read of it, if no other pod's matters; see above."""

    @classmethod
    def of(cls, pod: Obj) -> PodInfo:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        requests = Resource.from_list(pod_requests(spec))
        if _requests_cpu_and_memory_everywhere(spec):
            non_zero = requests  # no container is missing a request: nothing to stand in for
        else:
            non_zero = Resource.from_list(pod_requests(_with_non_missing_requests(spec)))
        return cls(
            pod=pod,
            key=pod_key(pod),
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            uid=str(meta.get("uid") or ""),
            labels=dict(meta.get("labels") or {}),
            requests=requests,
            non_zero_cpu=non_zero.milli_cpu,
            non_zero_memory=non_zero.memory,
            priority=int(spec.get("priority") or 0),
            signature=_signature(spec, requests, non_zero),
        )

    @property
    def spec(self) -> Obj:
        spec: Obj = self.pod.get("spec") or {}
        return spec

    @property
    def node_name(self) -> str:
        return str(self.spec.get("nodeName") or "")

    @property
    def terminating(self) -> bool:
        return bool((self.pod.get("metadata") or {}).get("deletionTimestamp"))


@attrs.define(eq=False)
class NodeInfo:
    """One node and the pods the scheduler counts on it (bound or assumed): upstream's
    ``NodeInfo``. ``requested`` sums the pods' requests, ``non_zero_cpu``/``non_zero_memory``
    their non-zero requests. ``node`` is None for a node the cache has pods of but no Node
    object (deleted, or not yet seen): such a node is never a candidate."""

    name: str
    node: Obj | None = None
    allocatable: Resource = attrs.field(factory=Resource)
    requested: Resource = attrs.field(factory=Resource)
    non_zero_cpu: int = 0
    non_zero_memory: int = 0
    pods: dict[str, PodInfo] = attrs.field(factory=dict)
    labels: dict[str, str] = attrs.field(factory=dict)
    taints: list[Obj] = attrs.field(factory=list)
    unschedulable: bool = False
    filter_memo: dict[str, Any] = attrs.field(factory=dict)
    """Filter results per pod signature, valid until the node changes (see above)."""
    score_memo: dict[str, int] = attrs.field(factory=dict)
    """Resource scores per pod signature, likewise."""

    def _changed(self) -> None:
        self.filter_memo.clear()
        self.score_memo.clear()

    def set_node(self, node: Obj) -> None:
        self._changed()
        status = node.get("status") or {}
        spec = node.get("spec") or {}
        self.node = node
        self.allocatable = Resource.from_list(parse_resource_list(status.get("allocatable")))
        self.labels = dict((node.get("metadata") or {}).get("labels") or {})
        self.taints = [t for t in spec.get("taints") or [] if isinstance(t, dict)]
        self.unschedulable = bool(spec.get("unschedulable"))

    def add_pod(self, info: PodInfo) -> None:
        self._changed()
        self.pods[info.key] = info
        self.requested.add(info.requests)
        self.non_zero_cpu += info.non_zero_cpu
        self.non_zero_memory += info.non_zero_memory

    def remove_pod(self, key: str) -> PodInfo | None:
        info = self.pods.pop(key, None)
        if info is not None:
            self._changed()
            self.requested.add(info.requests, -1)
            self.non_zero_cpu -= info.non_zero_cpu
            self.non_zero_memory -= info.non_zero_memory
        return info
