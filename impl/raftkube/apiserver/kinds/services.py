"""core/v1 Service and Endpoints: upstream's defaults, validation and update rules.

Defaults (``SetDefaults_Service``): ``type: ClusterIP``, ``sessionAffinity: None``, each
port's ``protocol: TCP`` and ``targetPort`` equal to its ``port``, ``internalTrafficPolicy:
Cluster`` (all but ExternalName), ``externalTrafficPolicy: Cluster`` for externally reachable
services, ``allocateLoadBalancerNodePorts: true`` for load balancers, and the single-stack IPv4
family fields the registry fills in upstream (``ipFamilies: [IPv4]``, ``ipFamilyPolicy:
SingleStack``). ClusterIP *allocation* is admission's job; this module only keeps an allocated
address: an update that leaves ``clusterIP``/``clusterIPs`` out keeps the stored ones (as
upstream's ``patchAllocatedValues``), and one that changes them is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import Cause
from . import field as f
from .meta import validate_labels
from .names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_ip,
    is_valid_port_name,
    is_valid_port_num,
    name_is_dns1035_label,
)
from .podspec import PROTOCOLS
from .schema import (
    BOOLEAN,
    INT32,
    INT_OR_STRING,
    OBJECT_REFERENCE,
    STRING,
    STRING_MAP,
    STRINGS,
    Schema,
    arr,
    conditions,
    kind_schema,
    obj,
)
from .strategy import Obj, Strategy, as_dict, dicts, sub

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES = ("ClientIP", "None")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILIES = ("IPv4", "IPv6")
IP_FAMILY_POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")

SERVICE_PORT = obj(
    ("port",),
    name=STRING,
    protocol=STRING,
    appProtocol=STRING,
    port=INT32,
    targetPort=INT_OR_STRING,
    nodePort=INT32,
)
_PORT_STATUS = obj(port=INT32, protocol=STRING, error=STRING)
SERVICE = kind_schema(
    spec=obj(
        ports=arr(SERVICE_PORT, "port"),
        selector=STRING_MAP,
        clusterIP=STRING,
        clusterIPs=STRINGS,
        type=STRING,
        externalIPs=STRINGS,
        sessionAffinity=STRING,
        loadBalancerIP=STRING,
        loadBalancerSourceRanges=STRINGS,
        externalName=STRING,
        externalTrafficPolicy=STRING,
        healthCheckNodePort=INT32,
        publishNotReadyAddresses=BOOLEAN,
        sessionAffinityConfig=obj(clientIP=obj(timeoutSeconds=INT32)),
        ipFamilies=STRINGS,
        ipFamilyPolicy=STRING,
        allocateLoadBalancerNodePorts=BOOLEAN,
        loadBalancerClass=STRING,
        internalTrafficPolicy=STRING,
        trafficDistribution=STRING,
    ),
    status=obj(
        loadBalancer=obj(
            ingress=arr(obj(ip=STRING, hostname=STRING, ipMode=STRING, ports=arr(_PORT_STATUS)))
        ),
        conditions=conditions("observedGeneration"),
    ),
)

_ENDPOINT_ADDRESS = obj(
    ("ip",), ip=STRING, hostname=STRING, nodeName=STRING, targetRef=OBJECT_REFERENCE
)
ENDPOINTS = kind_schema(
    subsets=arr(
        obj(
            addresses=arr(_ENDPOINT_ADDRESS),
            notReadyAddresses=arr(_ENDPOINT_ADDRESS),
            ports=arr(obj(("port",), name=STRING, port=INT32, protocol=STRING, appProtocol=STRING)),
        )
    )
)


def _enum(path: str, value: Any, supported: tuple[str, ...]) -> list[Cause]:
    if not value:
        return [f.required(path)]
    return [] if value in supported else [f.not_supported(path, value, supported)]


def _port_num_or_name(path: str, value: Any) -> list[Cause]:
    if isinstance(value, int) and not isinstance(value, bool):
        return f.each(path, value, is_valid_port_num(value))
    if isinstance(value, str):
        return f.each(path, value, is_valid_port_name(value))
    return []


def _externally_accessible(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (
        kind == "ClusterIP" and bool(spec.get("externalIPs"))
    )


class ServiceStrategy(Strategy):
    schema: ClassVar[Schema] = SERVICE

    def check_name(self, name: str, prefix: bool) -> list[str]:
        return name_is_dns1035_label(name, prefix)

    extra_field_labels = ("spec.clusterIP", "spec.type")

    def _default(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        spec.setdefault("sessionAffinity", "None")
        if spec["sessionAffinity"] == "None":
            spec.pop("sessionAffinityConfig", None)
        spec.setdefault("type", "ClusterIP")
        for port in dicts(spec.get("ports")):
            port.setdefault("protocol", "TCP")
            if port.get("targetPort") in (None, 0, "") and "port" in port:
                port["targetPort"] = port["port"]
        if _externally_accessible(spec):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if spec["type"] in ("ClusterIP", "NodePort", "LoadBalancer"):
            spec.setdefault("internalTrafficPolicy", "Cluster")
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("ipFamilies", ["IPv4"])
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
        if spec.get("clusterIP") and "clusterIPs" not in spec:
            spec["clusterIPs"] = [spec["clusterIP"]]

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"loadBalancer": {}}

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        spec, old_spec = sub(new, "spec"), old.get("spec") or {}
        if spec.get("type") != "ExternalName" and old_spec.get("clusterIP"):
            if not spec.get("clusterIP"):
                spec["clusterIP"] = old_spec["clusterIP"]
            if not spec.get("clusterIPs") and old_spec.get("clusterIPs"):
                spec["clusterIPs"] = list(old_spec["clusterIPs"])

    def _validate(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        causes: list[Cause] = []
        kind = spec.get("type")
        causes += _enum("spec.type", kind, SERVICE_TYPES)
        headless = spec.get("clusterIP") == "None"
        ports = dicts(spec.get("ports"))
        if not ports and not headless and kind != "ExternalName":
            causes.append(f.required("spec.ports"))
        names: set[str] = set()
        seen: set[tuple[Any, Any]] = set()
        for i, port in enumerate(ports):
            at = f.index("spec.ports", i)
            name = port.get("name")
            if len(ports) > 1 and not name:
                causes.append(f.required(f.child(at, "name")))
            elif name:
                causes += f.each(f.child(at, "name"), name, is_dns1123_label(str(name)))
                if name in names:
                    causes.append(f.duplicate(f.child(at, "name"), name))
                names.add(str(name))
            number = port.get("port")
            causes += f.each(
                f.child(at, "port"),
                number,
                is_valid_port_num(number if isinstance(number, int) else 0),
            )
            causes += _enum(f.child(at, "protocol"), port.get("protocol"), PROTOCOLS)
            causes += _port_num_or_name(f.child(at, "targetPort"), port.get("targetPort"))
            if port.get("appProtocol"):
                causes += f.each(
                    f.child(at, "appProtocol"),
                    port["appProtocol"],
                    is_qualified_name(str(port["appProtocol"])),
                )
            if kind == "ClusterIP" and port.get("nodePort"):
                causes.append(
                    f.forbidden(
                        f.child(at, "nodePort"), "may not be used when `type` is 'ClusterIP'"
                    )
                )
            if (number, port.get("protocol")) in seen:
                # Upstream prints the (protocol, port) key as a Go struct literal.
                key = f.Raw(
                    f'core.ServicePort{{Name:"", Protocol:"{port.get("protocol")}", '
                    f"AppProtocol:(*string)(nil), Port:{number}, TargetPort:intstr.IntOrString"
                    '{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
                )
                causes.append(f.duplicate(at, key))
            seen.add((number, port.get("protocol")))
        causes += validate_labels(spec.get("selector"), "spec.selector")
        causes += _enum("spec.sessionAffinity", spec.get("sessionAffinity"), SESSION_AFFINITIES)
        if kind == "ExternalName":
            if spec.get("clusterIP"):
                causes.append(
                    f.forbidden("spec.clusterIPs", "may not be set for ExternalName services")
                )
            name = spec.get("externalName")
            if not name:
                causes.append(f.required("spec.externalName"))
            else:
                causes += f.each(
                    "spec.externalName", name, is_dns1123_subdomain(str(name).rstrip("."))
                )
        else:
            for i, ip in enumerate(spec.get("clusterIPs") or []):
                if not (ip == "None" and i == 0):
                    causes += f.each(f.index("spec.clusterIPs", i), ip, is_valid_ip(str(ip)))
        for name, supported in (
            ("internalTrafficPolicy", TRAFFIC_POLICIES),
            ("externalTrafficPolicy", TRAFFIC_POLICIES),
            ("ipFamilyPolicy", IP_FAMILY_POLICIES),
        ):
            value = spec.get(name)
            if value and value not in supported:
                causes.append(f.not_supported(f.child("spec", name), value, supported))
        for i, family in enumerate(spec.get("ipFamilies") or []):
            if family not in IP_FAMILIES:
                causes.append(f.not_supported(f.index("spec.ipFamilies", i), family, IP_FAMILIES))
        for i, ip in enumerate(spec.get("externalIPs") or []):
            causes += f.each(f.index("spec.externalIPs", i), ip, is_valid_ip(str(ip)))
        return causes

    def _field_labels(self, obj: Mapping[str, Any]) -> dict[str, str]:
        spec = as_dict(obj.get("spec"))
        return {
            "spec.clusterIP": str(spec.get("clusterIP") or ""),
            "spec.type": str(spec.get("type") or ""),
        }

    def _validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        if "ExternalName" in (spec.get("type"), old_spec.get("type")):
            return []
        if spec.get("clusterIP") == "None" and old_spec.get("clusterIP") == "None":
            return []
        old_ips, new_ips = old_spec.get("clusterIPs") or [], spec.get("clusterIPs") or []
        if old_ips and old_ips[:1] != new_ips[:1]:
            return [f.invalid("spec.clusterIPs[0]", new_ips, "may not change once set")]
        return []


class EndpointsStrategy(Strategy):
    schema: ClassVar[Schema] = ENDPOINTS

    def _default(self, obj: Obj) -> None:
        for subset in dicts(obj.get("subsets")):
            for port in dicts(subset.get("ports")):
                port.setdefault("protocol", "TCP")

    def _validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        for i, subset in enumerate(dicts(obj.get("subsets"))):
            at = f.index("subsets", i)
            addresses, not_ready = (
                dicts(subset.get("addresses")),
                dicts(subset.get("notReadyAddresses")),
            )
            if not addresses and not not_ready:
                causes.append(f.required(at, "must specify `addresses` or `notReadyAddresses`"))
            for part, items in (("addresses", addresses), ("notReadyAddresses", not_ready)):
                for j, address in enumerate(items):
                    ip_path = f.child(f.index(f.child(at, part), j), "ip")
                    ip = address.get("ip")
                    causes += f.each(ip_path, ip or "", is_valid_ip(str(ip)))
            ports = dicts(subset.get("ports"))
            for j, port in enumerate(ports):
                port_path = f.index(f.child(at, "ports"), j)
                if len(ports) > 1 and not port.get("name"):
                    causes.append(f.required(f.child(port_path, "name")))
                number = port.get("port")
                causes += f.each(
                    f.child(port_path, "port"),
                    number,
                    is_valid_port_num(number if isinstance(number, int) else 0),
                )
                causes += _enum(f.child(port_path, "protocol"), port.get("protocol"), PROTOCOLS)
        return causes
