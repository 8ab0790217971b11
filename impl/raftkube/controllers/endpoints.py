"""The endpoints controller: an Endpoints object per Service with a selector, listing the
Service's pods (upstream's ``pkg/controller/endpoint``).

A Service is put on the queue when it changes and whenever a pod it selects (before or after the
change) is added, changed or deleted. The sync of ``namespace/name``:

- Service absent from the (synced) cache: its Endpoints are deleted, but only after an uncached
  read confirms the Service is gone, so a lagging cache never deletes a live Service's
  Endpoints (the bug PR #104062 fixed at start-up);
- ExternalName Services and Services without a selector are left alone;
- otherwise :func:`desired_subsets` computes the subsets from the cached pods: a pod with an IP
  of the Service's family that is not finished (and not being deleted, unless
  ``publishNotReadyAddresses``) contributes its address to ``addresses`` if it is Ready (or the
  Service publishes not-ready addresses) and to ``notReadyAddresses`` otherwise, once for each
  Service port whose ``targetPort`` it resolves (a name is looked up among its containers' ports
  with the same protocol); :func:`repack_subsets` groups addresses by the ports they serve, and
  everything is sorted so that equal inputs give equal objects;
- the result is compared with the Endpoints as the API holds them *now* (a GET, not the cache:
  comparing with a stale cached copy and skipping the write left endpoints wrong for good,
  kubernetes #125638), and written (created or updated) only if subsets, labels or the
  over-capacity annotation differ. At most 1000 addresses are written (``truncate_endpoints``,
  with ``endpoints.kubernetes.io/over-capacity: truncated``).

Simplified: the ``endpoints.kubernetes.io/last-change-trigger-time`` annotation is not written,
ports within a subset and subsets are ordered by their fields (upstream orders by a hash of
them), and Endpoints left over from deleted Services are found at start-up from the cache.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import math
from typing import Any

from raftkube.clock import Clock
from raftkube.controllers.controller import Worker, new_queue
from raftkube.controllers.controller_utils import (
    NAMESPACE_TERMINATING_CAUSE,
    error_text,
    has_status_cause,
    is_pod_ready,
    labels_of,
)
from raftkube.controllers.events import WARNING, EventRecorder
from raftkube.controllers.informer import ResourceEventHandlerFuncs, SharedInformerFactory
from raftkube.controllers.resources import resource
from raftkube.controllers.store import (
    DeletedFinalStateUnknown,
    meta_namespace_key,
    object_of,
    split_meta_namespace_key,
)
from raftkube.kubeclient import KubeAPIError, KubeClient

logger = logging.getLogger("raftkube.controllers.endpoints")

Obj = dict[str, Any]

PODS = resource("", "v1", "pods")
SERVICES = resource("", "v1", "services")
ENDPOINTS = resource("", "v1", "endpoints")

MAX_CAPACITY = 1000
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
HEADLESS = "service.kubernetes.io/headless"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"


# --- decisions -----------------------------------------------------------------------------------


def service_selects(service: Obj, pod: Obj) -> bool:
    """``labels.Set(service.Spec.Selector)`` matches the pod (a Service without a selector
    selects nothing here)."""
    selector = (service.get("spec") or {}).get("selector")
    if not isinstance(selector, dict):
        return False
    labels = labels_of(pod)
    return all(labels.get(k) == v for k, v in selector.items())


def should_pod_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """``ShouldPodBeInEndpoints``: not finished, has an IP, and not being deleted unless
    terminating pods are included."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    if not status.get("podIP") and not status.get("podIPs"):
        return False
    return include_terminating or not (pod.get("metadata") or {}).get("deletionTimestamp")


def _is_ipv6(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 6
    except ValueError:
        return False


def pod_address(service: Obj, pod: Obj) -> Obj | None:
    """``podToEndpointAddressForService``: the pod's IP of the Service's first family."""
    families = (service.get("spec") or {}).get("ipFamilies") or ["IPv4"]
    want_v6 = families[0] == "IPv6"
    status = pod.get("status") or {}
    ips = [entry.get("ip") for entry in status.get("podIPs") or [] if isinstance(entry, dict)]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    ip = next((i for i in ips if i and _is_ipv6(i) == want_v6), None)
    if ip is None:
        return None
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    address: Obj = {
        "ip": ip,
        "nodeName": spec.get("nodeName") or "",
        "targetRef": {
            "kind": "Pod",
            "namespace": meta.get("namespace") or "",
            "name": meta.get("name") or "",
            "uid": meta.get("uid") or "",
        },
    }
    service_meta = service.get("metadata") or {}
    if (
        spec.get("hostname")
        and spec.get("subdomain") == service_meta.get("name")
        and meta.get("namespace") == service_meta.get("namespace")
    ):
        address["hostname"] = spec["hostname"]
    return address


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """``podutil.FindPort``: a numeric ``targetPort`` as it is, a named one among the pod's
    containers' ports of the same protocol (None if none has it)."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def endpoint_port(service_port: Obj, number: int) -> Obj:
    port: Obj = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def _address_key(address: Obj) -> tuple[str, str]:
    return address["ip"], (address.get("targetRef") or {}).get("uid") or ""


def _ip_sort_key(address: Obj) -> tuple[bytes, str]:
    """``LessEndpointAddress``: by the IP's bytes, then the target's uid."""
    try:
        packed = ipaddress.ip_address(address["ip"]).packed
    except ValueError:
        packed = address["ip"].encode()
    return packed, (address.get("targetRef") or {}).get("uid") or ""


def _port_key(port: Obj) -> tuple[str, int, str, str]:
    return (port.get("name") or "", port["port"], port["protocol"], port.get("appProtocol") or "")


def repack_subsets(subsets: list[Obj]) -> list[Obj]:
    """``RepackSubsets``: one subset per set of (address, ready) pairs serving the same ports,
    sorted (see the module docstring for how the order departs from upstream's)."""
    addresses: dict[tuple[str, str], Obj] = {}
    by_port: dict[tuple[str, int, str, str], dict[tuple[str, str], bool]] = {}
    ports: dict[tuple[str, int, str, str], Obj] = {}
    sentinel = ("", -1, "", "")
    for subset in subsets:
        subset_ports = subset.get("ports") or []
        keys = [_port_key(p) for p in subset_ports] or [sentinel]
        for port, key in zip(subset_ports or [None], keys, strict=True):
            if port is not None:
                ports[key] = port
            served = by_port.setdefault(key, {})
            for ready, field in ((True, "addresses"), (False, "notReadyAddresses")):
                for address in subset.get(field) or []:
                    akey = _address_key(address)
                    addresses.setdefault(akey, address)
                    if not served.get(akey, False):
                        served[akey] = ready
    groups: dict[tuple[tuple[tuple[str, str], bool], ...], list[Obj]] = {}
    for key, served in by_port.items():
        group = tuple(sorted(served.items()))
        listed = groups.setdefault(group, [])
        if key != sentinel:
            listed.append(ports[key])
    final: list[Obj] = []
    for group, group_ports in groups.items():
        ready_list = sorted((addresses[a] for a, r in group if r), key=_ip_sort_key)
        not_ready = sorted((addresses[a] for a, r in group if not r), key=_ip_sort_key)
        repacked: Obj = {}
        if ready_list:
            repacked["addresses"] = ready_list
        if not_ready:
            repacked["notReadyAddresses"] = not_ready
        if group_ports:
            repacked["ports"] = sorted(group_ports, key=_port_key)
        final.append(repacked)
    return sorted(final, key=_subset_key)


def _subset_key(subset: Obj) -> tuple[Any, ...]:
    first = (subset.get("addresses") or subset.get("notReadyAddresses") or [{"ip": ""}])[0]
    return _ip_sort_key(first), [_port_key(p) for p in subset.get("ports") or []]


def desired_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    """The Endpoints subsets for ``service`` from ``pods`` (see the module docstring)."""
    spec = service.get("spec") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    subsets: list[Obj] = []
    for pod in pods:
        if not service_selects(service, pod):
            continue
        if not should_pod_be_in_endpoints(pod, publish_not_ready):
            continue
        address = pod_address(service, pod)
        if address is None:
            continue
        field = "addresses" if publish_not_ready or is_pod_ready(pod) else "notReadyAddresses"
        service_ports = spec.get("ports") or []
        if not service_ports:
            if spec.get("clusterIP") == "None":  # headless without ports: the addresses alone
                subsets.append({field: [address]})
            continue
        for service_port in service_ports:
            number = find_port(pod, service_port)
            if number is None:
                continue
            subsets.append({field: [address], "ports": [endpoint_port(service_port, number)]})
    return repack_subsets(subsets)


def truncate_endpoints(endpoints: Obj) -> bool:
    """``truncateEndpoints``: keep at most :data:`MAX_CAPACITY` addresses, not-ready ones
    dropped first, each subset keeping its (rounded-up) share; whether it truncated."""
    subsets = endpoints.get("subsets") or []
    ready = sum(len(s.get("addresses") or []) for s in subsets)
    not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if ready + not_ready <= MAX_CAPACITY:
        return False
    truncate_ready = ready > MAX_CAPACITY
    most, total = (MAX_CAPACITY, ready) if truncate_ready else (MAX_CAPACITY - ready, not_ready)
    room = most
    for subset in subsets:
        field = "addresses" if truncate_ready else "notReadyAddresses"
        share = math.ceil(len(subset.get(field) or []) / total * most)
        share = min(share, room)
        subset[field] = (subset.get(field) or [])[:share]
        if truncate_ready:
            subset["notReadyAddresses"] = []
        room -= len(subset[field])
    return True


def _address_count(subsets: list[Obj]) -> int:
    return sum(
        len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or []) for s in subsets
    )


def desired_endpoints(service: Obj, current: Obj | None, subsets: list[Obj]) -> Obj | None:
    """The Endpoints to write for ``service`` given ``current`` (as the API holds it, None if
    absent), or None if ``current`` is already right."""
    meta = service.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    if current is not None:
        current_labels = dict((current.get("metadata") or {}).get("labels") or {})
        current_labels.pop(HEADLESS, None)
        annotations = (current.get("metadata") or {}).get("annotations") or {}
        capacity_ok = (
            _address_count(current.get("subsets") or []) <= MAX_CAPACITY
            and OVER_CAPACITY not in annotations
        )
        if (current.get("subsets") or []) == subsets and current_labels == labels and capacity_ok:
            return None
        endpoints = copy.deepcopy(current)
    else:
        endpoints = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": meta["name"], "namespace": meta.get("namespace") or ""},
        }
    endpoints["subsets"] = copy.deepcopy(subsets)
    out_meta = endpoints["metadata"]
    annotations = dict(out_meta.get("annotations") or {})
    if truncate_endpoints(endpoints):
        annotations[OVER_CAPACITY] = "truncated"
    else:
        annotations.pop(OVER_CAPACITY, None)
    if annotations:
        out_meta["annotations"] = annotations
    else:
        out_meta.pop("annotations", None)
    cluster_ip = (service.get("spec") or {}).get("clusterIP")
    if not cluster_ip or cluster_ip == "None":
        labels[HEADLESS] = ""
    if labels:
        out_meta["labels"] = labels
    else:
        out_meta.pop("labels", None)
    return endpoints


# --- the controller --------------------------------------------------------------------------


class EndpointsController:
    """See the module docstring; :meth:`run` until cancelled."""

    def __init__(self, client: KubeClient, factory: SharedInformerFactory, clock: Clock) -> None:
        self.client = client
        self.recorder = EventRecorder(client, "endpoint-controller")
        self.queue = new_queue(clock, "endpoint")
        service_informer = factory.informer_for(SERVICES)
        pod_informer = factory.informer_for(PODS)
        self.endpoints_informer = factory.informer_for(ENDPOINTS)
        self.services = factory.lister(SERVICES)
        self.pods = factory.lister(PODS)
        self.endpoints = factory.lister(ENDPOINTS)
        service_informer.add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self._enqueue,
                update_func=lambda old, new: self._enqueue(new),
                delete_func=self._enqueue,
            )
        )
        pod_informer.add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self._pod_changed,
                update_func=self._pod_updated,
                delete_func=self._pod_changed,
            )
        )
        self.endpoints_informer.add_event_handler(
            ResourceEventHandlerFuncs(delete_func=self._enqueue)
        )
        self.worker = Worker(
            "endpoint",
            self.queue,
            self.sync_service,
            (service_informer, pod_informer, self.endpoints_informer),
        )

    def _enqueue(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.queue.add(meta_namespace_key(object_of(obj)))

    def _services_of(self, pod: Obj) -> list[Obj]:
        namespace = (pod.get("metadata") or {}).get("namespace") or ""
        return [s for s in self.services.list(namespace) if service_selects(s, pod)]

    def _pod_changed(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        for service in self._services_of(object_of(obj)):
            self._enqueue(service)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        keys = {meta_namespace_key(s) for s in self._services_of(new)}
        if labels_of(old) != labels_of(new):
            keys |= {meta_namespace_key(s) for s in self._services_of(old)}
        for key in keys:
            self.queue.add(key)

    def check_leftover_endpoints(self) -> None:
        """``checkLeftoverEndpoints``: Endpoints whose Service the synced cache lacks are
        queued, so that their sync deletes them (leader-election records are left alone)."""
        for endpoints in self.endpoints.list():
            meta = endpoints.get("metadata") or {}
            if LEADER_ANNOTATION in (meta.get("annotations") or {}):
                continue
            if self.services.get(meta.get("name") or "", meta.get("namespace") or "") is None:
                self._enqueue(endpoints)

    async def sync_service(self, key: str) -> None:
        namespace, name = split_meta_namespace_key(key)
        service = self.services.get(name, namespace)
        if service is None:
            await self._delete_orphaned(namespace, name)
            return
        spec = service.get("spec") or {}
        if spec.get("type") == "ExternalName" or not isinstance(spec.get("selector"), dict):
            return
        subsets = desired_subsets(service, self.pods.list(namespace))
        current = await self._current(namespace, name)
        endpoints = desired_endpoints(service, current, subsets)
        if endpoints is None:
            return
        try:
            if current is None:
                await self.client.create(ENDPOINTS, endpoints, namespace=namespace)
            else:
                await self.client.update(ENDPOINTS, endpoints, namespace=namespace)
        except KubeAPIError as exc:
            if current is None and has_status_cause(exc, NAMESPACE_TERMINATING_CAUSE):
                return
            if current is None:
                reason = "FailedToCreateEndpoint"
                message = f"Failed to create endpoint for service {namespace}/{name}: "
            else:
                reason, message = "FailedToUpdateEndpoint", f"Failed to update endpoint {key}: "
            await self.recorder.event(endpoints, WARNING, reason, message + error_text(exc))
            raise

    async def _current(self, namespace: str, name: str) -> Obj | None:
        try:
            current: Obj = await self.client.get(ENDPOINTS, name, namespace=namespace)
        except KubeAPIError as exc:
            if exc.code == 404:
                return None
            raise
        current.setdefault("kind", "Endpoints")
        current.setdefault("apiVersion", "v1")
        return current

    async def _delete_orphaned(self, namespace: str, name: str) -> None:
        try:
            await self.client.get(SERVICES, name, namespace=namespace)
            return  # the Service exists: the cache is behind, its event will come
        except KubeAPIError as exc:
            if exc.code != 404:
                raise
        try:
            await self.client.delete(ENDPOINTS, name, namespace=namespace)
        except KubeAPIError as exc:
            if exc.code != 404:
                raise

    async def run(self, workers: int = 5) -> None:
        """Queue the leftover Endpoints once the caches are synced, then sync until
        cancelled."""
        for informer in self.worker.informers:
            await informer.wait_for_sync()
        self.check_leftover_endpoints()
        await self.worker.run(workers)
