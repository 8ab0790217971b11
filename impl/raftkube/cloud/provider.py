"""The simulated cloud's state: instances, routes and load balancers, as plain data.

An *instance* is a machine a Node runs on: a name (the Node's), a provider ID
(``raftkube://{zone}/{name}``), a zone and region, an instance type, addresses, and a state
(``running`` or ``shutdown``). A *route* sends a destination CIDR (a node's pod CIDR) to a
target instance and belongs to one cluster. A *load balancer* has a name (upstream's
``GetLoadBalancerName``), the Service it serves, its ports, its target nodes and an IPv4
address taken from ``lb_range`` (a network inside 127.0.0.0/8, so addresses are local and
need no real cloud); a deleted one's address returns to the pool.

Every method is synchronous and pure apart from the state it changes; the HTTP face is
:mod:`raftkube.cloud.server`. Failures are :class:`CloudAPIError` with an HTTP status.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

import attrs

Obj = dict[str, Any]

PROVIDER_NAME = "raftkube"
DEFAULT_LB_RANGE = "127.240.0.0/24"
INSTANCE_STATES = ("running", "shutdown")


class CloudAPIError(Exception):
    """A request the cloud refuses: ``status`` is the HTTP status it answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def provider_id(zone: str, name: str) -> str:
    return f"{PROVIDER_NAME}://{zone}/{name}"


def _text(body: Mapping[str, Any], field: str, default: str = "") -> str:
    value = body.get(field, default)
    if not isinstance(value, str):
        raise CloudAPIError(400, f"{field} must be a string")
    return value


def _addresses(body: Mapping[str, Any]) -> list[Obj]:
    raw = body.get("addresses", [])
    if not isinstance(raw, list) or not all(
        isinstance(a, dict) and isinstance(a.get("type"), str) and isinstance(a.get("address"), str)
        for a in raw
    ):
        raise CloudAPIError(400, "addresses must be a list of {type, address}")
    return [{"type": a["type"], "address": a["address"]} for a in raw]


@attrs.define
class SimulatedCloud:
    """See the module docstring."""

    lb_range: ipaddress.IPv4Network = attrs.field(
        default=ipaddress.IPv4Network(DEFAULT_LB_RANGE), converter=ipaddress.IPv4Network
    )
    instances: dict[str, Obj] = attrs.field(factory=dict)
    routes: dict[str, Obj] = attrs.field(factory=dict)
    load_balancers: dict[str, Obj] = attrs.field(factory=dict)

    @lb_range.validator
    def _check_range(self, _: object, value: ipaddress.IPv4Network) -> None:
        if not value.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
            raise ValueError(f"the load balancer range {value} is not inside 127.0.0.0/8")

    # --- instances -------------------------------------------------------------------------

    def put_instance(self, name: str, body: Mapping[str, Any]) -> Obj:
        """Create or replace the instance ``name``."""
        zone = _text(body, "zone")
        state = _text(body, "state", "running")
        if state not in INSTANCE_STATES:
            raise CloudAPIError(400, f"state must be one of {', '.join(INSTANCE_STATES)}")
        instance = {
            "name": name,
            "providerID": provider_id(zone, name),
            "zone": zone,
            "region": _text(body, "region"),
            "instanceType": _text(body, "instanceType", "sim.small"),
            "addresses": _addresses(body),
            "state": state,
        }
        self.instances[name] = instance
        return instance

    def instance(self, name: str) -> Obj:
        try:
            return self.instances[name]
        except KeyError:
            raise CloudAPIError(404, f"instance {name} not found") from None

    def delete_instance(self, name: str) -> Obj:
        instance = self.instance(name)
        del self.instances[name]
        return instance

    # --- routes ----------------------------------------------------------------------------

    def put_route(self, name: str, body: Mapping[str, Any]) -> Obj:
        cidr = _text(body, "destinationCIDR")
        try:
            ipaddress.ip_network(cidr)
        except ValueError:
            raise CloudAPIError(400, f"destinationCIDR {cidr!r} is not a CIDR") from None
        target = _text(body, "targetNode")
        route = {
            "name": name,
            "cluster": _text(body, "cluster"),
            "targetNode": target,
            "destinationCIDR": cidr,
            "blackhole": target not in self.instances,
        }
        self.routes[name] = route
        return route

    def list_routes(self) -> list[Obj]:
        """Every route; one whose target instance is gone is a blackhole."""
        return [
            {**r, "blackhole": r["targetNode"] not in self.instances} for r in self.routes.values()
        ]

    def delete_route(self, name: str) -> Obj:
        try:
            return self.routes.pop(name)
        except KeyError:
            raise CloudAPIError(404, f"route {name} not found") from None

    # --- load balancers --------------------------------------------------------------------

    def _free_address(self) -> str:
        taken = {lb["ip"] for lb in self.load_balancers.values()}
        for address in self.lb_range.hosts():
            if str(address) not in taken:
                return str(address)
        raise CloudAPIError(507, f"no free address left in {self.lb_range}")

    def put_load_balancer(self, name: str, body: Mapping[str, Any]) -> Obj:
        """Create the load balancer or update its ports and nodes (its address stays)."""
        nodes = body.get("nodes", [])
        ports = body.get("ports", [])
        if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
            raise CloudAPIError(400, "nodes must be a list of node names")
        if not isinstance(ports, list) or not all(isinstance(p, dict) for p in ports):
            raise CloudAPIError(400, "ports must be a list of objects")
        existing = self.load_balancers.get(name)
        lb = {
            "name": name,
            "service": _text(body, "service"),
            "cluster": _text(body, "cluster"),
            "ip": existing["ip"] if existing else self._free_address(),
            "nodes": sorted(set(nodes)),
            "ports": ports,
        }
        self.load_balancers[name] = lb
        return lb

    def load_balancer(self, name: str) -> Obj:
        try:
            return self.load_balancers[name]
        except KeyError:
            raise CloudAPIError(404, f"load balancer {name} not found") from None

    def delete_load_balancer(self, name: str) -> Obj:
        lb = self.load_balancer(name)
        del self.load_balancers[name]
        return lb
