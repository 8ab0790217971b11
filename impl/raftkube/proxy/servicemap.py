"""What the proxy should do, as plain functions of cached Services and Endpoints.

The names are upstream's (``pkg/proxy``): a :class:`ServicePortName` is one port of one
Service (``namespace/name:port``); :func:`service_listeners` says where that port is served
(its ClusterIP and, for NodePort and LoadBalancer Services, the node's address at the
``nodePort``); :func:`endpoints_map` lists the ready ``ip:port`` pairs behind each port, as the
userspace proxier's ``buildEndpointsMap`` does: an Endpoints subset port serves the Service
port of the same name, and only ``addresses`` count (``notReadyAddresses`` never receive
traffic).

Only TCP ports are proxied (the userspace proxier's UDP path is not provided); Services
without a ClusterIP (headless, ``None``) and ExternalName Services have nothing to listen on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

Obj = dict[str, Any]

NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


@attrs.frozen(order=True)
class ServicePortName:
    """``proxy.ServicePortName``: one named port of one Service."""

    namespace: str
    name: str
    port: str = ""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port}"


HostPort = tuple[str, int]


def _meta(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _is_tcp(port: Obj) -> bool:
    return (port.get("protocol") or "TCP") == "TCP"


def has_cluster_ip(service: Obj) -> bool:
    """``ShouldSkipService``'s test, inverted: a ClusterIP that is set and not ``None``, and a
    type other than ExternalName."""
    spec = service.get("spec") or {}
    ip = spec.get("clusterIP") or ""
    return ip not in ("", "None") and spec.get("type") != "ExternalName"


def service_listeners(service: Obj, bind_address: str) -> dict[HostPort, ServicePortName]:
    """Where each TCP port of ``service`` is served: ``clusterIP:port`` always, and
    ``bind_address:nodePort`` when the Service's type allocates node ports."""
    if not has_cluster_ip(service):
        return {}
    namespace, name = _meta(service)
    spec = service.get("spec") or {}
    cluster_ip = str(spec["clusterIP"])
    node_ports = spec.get("type") in NODE_PORT_TYPES
    out: dict[HostPort, ServicePortName] = {}
    for port in spec.get("ports") or []:
        if not _is_tcp(port) or not isinstance(port.get("port"), int):
            continue
        spn = ServicePortName(namespace, name, str(port.get("name") or ""))
        out[(cluster_ip, port["port"])] = spn
        if node_ports and isinstance(port.get("nodePort"), int) and port["nodePort"]:
            out[(bind_address, port["nodePort"])] = spn
    return out


def listeners_for(services: Iterable[Obj], bind_address: str) -> dict[HostPort, ServicePortName]:
    """Every address to listen on, for all ``services``. Two ports claiming one address (which
    the API server's allocators prevent) resolve to the one whose name sorts first, so the
    answer does not depend on the cache's order."""
    out: dict[HostPort, ServicePortName] = {}
    for service in services:
        for address, spn in service_listeners(service, bind_address).items():
            if address not in out or spn < out[address]:
                out[address] = spn
    return out


def endpoints_map(endpoints: Iterable[Obj]) -> dict[ServicePortName, list[HostPort]]:
    """The ready ``(ip, port)`` pairs of each Service port, from the Endpoints objects (each
    list sorted, so equal inputs give equal answers)."""
    out: dict[ServicePortName, list[HostPort]] = {}
    for obj in endpoints:
        namespace, name = _meta(obj)
        for subset in obj.get("subsets") or []:
            ips = [str(a["ip"]) for a in subset.get("addresses") or [] if a.get("ip")]
            for port in subset.get("ports") or []:
                if not _is_tcp(port) or not isinstance(port.get("port"), int):
                    continue
                spn = ServicePortName(namespace, name, str(port.get("name") or ""))
                pairs = out.setdefault(spn, [])
                pairs.extend((ip, port["port"]) for ip in ips)
    return {spn: sorted(set(pairs)) for spn, pairs in out.items() if pairs}
