"""Cluster IPs and node ports for Services, reserved as the Service is written.

Upstream does this in the Service registry (``pkg/registry/core/service/storage/alloc.go``), not
in an admission plugin; here it is the last step of admission, after every plugin that could
still refuse the request, so a refused request reserves nothing. What it does, as upstream:

- a Service that needs a cluster IP (any type but ExternalName, and not headless) gets the
  ``spec.clusterIP`` it asks for (422 if it is outside the range or already held, with
  upstream's ``failed to allocate IP ...`` messages) or a free one; ``clusterIPs`` mirrors it,
  and ``ipFamilies``/``ipFamilyPolicy`` default to ``[IPv4]``/``SingleStack`` (this server's
  Service range is IPv4 only). ``clusterIP: None`` is headless: ``clusterIPs: [None]``;
- NodePort and LoadBalancer Services (unless ``allocateLoadBalancerNodePorts: false``) get a
  node port for every port that has none (two ports with the same ``port``, say TCP and UDP,
  share one), and a LoadBalancer with ``externalTrafficPolicy: Local`` a
  ``healthCheckNodePort``; requested ports are checked and reserved the same way;
- on update, values the new version leaves empty are carried over from the old one while it
  still needs them (upstream's ``patchAllocatedValues``), and values that only the old type
  needed are dropped when the type changes (``dropTypeDependentFields``); only values the old
  version did not hold are reserved.

Every value is held under the Service's uid. The API server calls :meth:`release` with the old
and new versions once a write is committed (an update frees what only the old held; a deletion
frees all), and with the attempted and stored versions when a write admission passed fails
(a conflict, an existing name), so nothing leaks. A dry run reserves nothing but is refused
exactly as the real request would be at that moment.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import attrs

from raftkube.apiserver import errors
from raftkube.apiserver.admission.allocators import (
    NotInRange,
    PortRange,
    RangeFull,
    ServiceIPRange,
    Taken,
)
from raftkube.apiserver.admission.interfaces import (
    CREATE,
    UPDATE,
    AdmissionContext,
    Attributes,
    Reservations,
)

HEADLESS = "None"


def _spec(svc: dict[str, Any] | None) -> dict[str, Any]:
    return (svc or {}).get("spec") or {}


def _type(svc: dict[str, Any] | None) -> str:
    return str(_spec(svc).get("type") or "ClusterIP")


def _requested_ip(svc: dict[str, Any] | None) -> str:
    spec = _spec(svc)
    ips = spec.get("clusterIPs") or []
    return str(spec.get("clusterIP") or (ips[0] if ips else "") or "")


def needs_cluster_ip(svc: dict[str, Any] | None) -> bool:
    return _type(svc) != "ExternalName" and _requested_ip(svc) != HEADLESS


def needs_node_ports(svc: dict[str, Any] | None) -> bool:
    kind = _type(svc)
    if kind == "NodePort":
        return True
    return kind == "LoadBalancer" and _spec(svc).get("allocateLoadBalancerNodePorts") is not False


def needs_health_check_port(svc: dict[str, Any] | None) -> bool:
    spec = _spec(svc)
    return _type(svc) == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def owner_of(svc: dict[str, Any]) -> str:
    meta = svc.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}")


def _ports(svc: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [p for p in _spec(svc).get("ports") or [] if isinstance(p, dict)]


def _invalid(svc: dict[str, Any], field: str, shown: str, message: str) -> errors.APIError:
    name = str((svc.get("metadata") or {}).get("name", ""))
    cause = errors.Cause(field, "FieldValueInvalid", f"Invalid value: {shown}: {message}")
    return errors.invalid("Service", name, [cause])


@attrs.define
class ServiceAllocation:
    """The allocation step; ``ip_range`` and ``node_ports`` are the server's configured
    ``--service-cluster-ip-range`` and ``--service-node-port-range``."""

    ip_range: ServiceIPRange = attrs.field(factory=ServiceIPRange.parse)
    node_ports: PortRange = attrs.field(factory=PortRange.parse)
    rng: random.Random = attrs.field(factory=random.Random)
    name: str = "ServiceAllocation"

    def held(self, svc: dict[str, Any] | None) -> set[str]:
        """The reservation keys ``svc``'s values occupy (values outside the ranges hold none)."""
        keys: set[str] = set()
        spec = _spec(svc)
        for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
            if isinstance(ip, str) and self.ip_range.contains(ip):
                keys.add(self.ip_range.key(ip))
        for port in self._node_port_values(svc):
            if self.node_ports.contains(port):
                keys.add(self.node_ports.key(port))
        return keys

    @staticmethod
    def _node_port_values(svc: dict[str, Any] | None) -> Iterator[int]:
        for p in _ports(svc):
            if isinstance(p.get("nodePort"), int) and p["nodePort"]:
                yield p["nodePort"]
        check = _spec(svc).get("healthCheckNodePort")
        if isinstance(check, int) and check:
            yield check

    async def validate(self, a: Attributes, ctx: AdmissionContext) -> None:
        if a.operation not in (CREATE, UPDATE) or not a.is_main("", "services") or a.obj is None:
            return
        svc = a.obj
        old = a.old if a.operation == UPDATE else None
        _carry_over(svc, old)
        _drop_type_dependent(svc, old)
        step = _Step(self, svc, self.held(old), ctx, a.dry_run)
        try:
            await step.cluster_ip()
            await step.node_ports()
        except BaseException:
            await step.undo()
            raise

    async def release(
        self, ctx: Reservations, gone: dict[str, Any], kept: dict[str, Any] | None = None
    ) -> None:
        """Free what ``gone`` holds and ``kept`` does not."""
        owner = owner_of(gone)
        for key in sorted(self.held(gone) - self.held(kept)):
            await ctx.release(key, owner)


def _carry_over(svc: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Upstream's ``patchAllocatedValues``: an update that leaves an allocated value out keeps
    the old one (``kubectl replace`` of a manifest without ``clusterIP``)."""
    if old is None:
        return
    spec = svc.setdefault("spec", {})
    old_spec = _spec(old)
    if needs_cluster_ip(old) and needs_cluster_ip(svc) and not _requested_ip(svc):
        for field in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if field in old_spec and not spec.get(field):
                spec[field] = old_spec[field]
    if needs_node_ports(old) and needs_node_ports(svc):
        for port in _ports(svc):
            if port.get("nodePort"):
                continue
            for before in _ports(old):
                same = before.get("port") == port.get("port")
                if same and before.get("protocol", "TCP") == port.get("protocol", "TCP"):
                    if before.get("nodePort"):
                        port["nodePort"] = before["nodePort"]
                    break
    keeps_check = needs_health_check_port(old) and needs_health_check_port(svc)
    if keeps_check and not spec.get("healthCheckNodePort"):
        spec["healthCheckNodePort"] = old_spec.get("healthCheckNodePort")


def _drop_type_dependent(svc: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Upstream's ``dropTypeDependentFields``: values the old type needed and the new one does
    not are cleared if the update left them as they were."""
    if old is None:
        return
    spec = svc.setdefault("spec", {})
    old_spec = _spec(old)
    to_external = _type(svc) == "ExternalName" and needs_cluster_ip(old)
    if to_external and _requested_ip(svc) == _requested_ip(old):
        for field in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            spec.pop(field, None)
    if needs_node_ports(old) and not needs_node_ports(svc):
        old_ports = {(p.get("port"), p.get("nodePort")) for p in _ports(old)}
        for port in _ports(svc):
            if (port.get("port"), port.get("nodePort")) in old_ports:
                port.pop("nodePort", None)
    drops_check = needs_health_check_port(old) and not needs_health_check_port(svc)
    if drops_check and spec.get("healthCheckNodePort") == old_spec.get("healthCheckNodePort"):
        spec.pop("healthCheckNodePort", None)


@attrs.define
class _Step:
    """One admission's reservations, so a failure part-way can give them back."""

    plan: ServiceAllocation
    svc: dict[str, Any]
    already: set[str]
    """What the stored version holds: reserved long ago, not to be reserved again."""
    ctx: AdmissionContext
    dry_run: bool
    taken: list[str] = attrs.field(factory=list)
    """Keys reserved by this step (in a dry run: the values it picked, none reserved)."""

    @property
    def owner(self) -> str:
        return owner_of(self.svc)

    async def undo(self) -> None:
        if self.dry_run:
            return
        for key in self.taken:
            await self.ctx.release(key, self.owner)

    async def cluster_ip(self) -> None:
        spec = self.svc.setdefault("spec", {})
        if _type(self.svc) == "ExternalName":
            return
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        ip = _requested_ip(self.svc)
        if ip == HEADLESS:
            spec["clusterIP"] = HEADLESS
            spec["clusterIPs"] = [HEADLESS]
            return
        r = self.plan.ip_range
        if not ip:
            try:
                if self.dry_run:
                    ip = await r.pick(self.ctx, self.plan.rng)
                else:
                    ip = await r.allocate_next(self.ctx, self.owner, self.plan.rng)
                self.taken.append(r.key(ip))
            except RangeFull as exc:
                raise errors.internal(f"failed to allocate a serviceIP: {exc}") from None
        elif r.key(ip) not in self.already:
            try:
                if self.dry_run:
                    await r.available(self.ctx, ip)
                else:
                    await r.allocate(self.ctx, ip, self.owner)
                self.taken.append(r.key(ip))
            except (NotInRange, Taken) as exc:
                raise _invalid(
                    self.svc,
                    "spec.clusterIPs",
                    f'[]string{{"{ip}"}}',
                    f"failed to allocate IP {ip}: {exc}",
                ) from None
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]

    async def node_ports(self) -> None:
        if needs_node_ports(self.svc):
            by_service_port: dict[Any, int] = {}
            for i, port in enumerate(_ports(self.svc)):
                wanted = port.get("nodePort")
                if not wanted and port.get("port") in by_service_port:
                    wanted = by_service_port[port.get("port")]
                    port["nodePort"] = wanted
                if wanted:
                    await self._requested(wanted, f"spec.ports[{i}].nodePort", "")
                else:
                    port["nodePort"] = await self._next()
                by_service_port.setdefault(port.get("port"), port["nodePort"])
        if needs_health_check_port(self.svc):
            spec = self.svc["spec"]
            wanted = spec.get("healthCheckNodePort")
            if wanted:
                prefix = f"failed to allocate requested HealthCheck NodePort {wanted}: "
                await self._requested(wanted, "spec.healthCheckNodePort", prefix)
            else:
                spec["healthCheckNodePort"] = await self._next()

    async def _requested(self, port: Any, field: str, prefix: str) -> None:
        r = self.plan.node_ports
        if not isinstance(port, int) or isinstance(port, bool):
            return  # the kind's validation refuses it
        key = r.key(port)
        if key in self.already or key in self.taken:
            return
        try:
            if self.dry_run:
                await r.available(self.ctx, port)
            else:
                await r.allocate(self.ctx, port, self.owner)
            self.taken.append(key)
        except (NotInRange, Taken) as exc:
            raise _invalid(self.svc, field, str(port), f"{prefix}{exc}") from None

    async def _next(self) -> int:
        r = self.plan.node_ports
        try:
            if self.dry_run:
                port = await r.pick(self.ctx, self.plan.rng, exclude=self.taken)
            else:
                port = await r.allocate_next(self.ctx, self.owner, self.plan.rng)
        except RangeFull as exc:
            raise errors.internal(f"failed to allocate a nodePort: {exc}") from None
        self.taken.append(r.key(port))
        return port
