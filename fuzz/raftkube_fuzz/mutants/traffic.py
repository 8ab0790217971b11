"""The ``cluster`` suite's traffic mutants: bugs in what tells clients where a Service's
pods are (the endpoints controller's Endpoints and what kube-proxy makes of them)."""

from __future__ import annotations

from raftkube.controllers.controller_utils import (
    NAMESPACE_TERMINATING_CAUSE,
    error_text,
    has_status_cause,
)
from raftkube.controllers.endpoints import (
    ENDPOINTS,
    EndpointsController,
    desired_endpoints,
    desired_subsets,
)
from raftkube.controllers.events import WARNING
from raftkube.controllers.store import split_meta_namespace_key
from raftkube.kubeclient import KubeAPIError
from raftkube.proxy.roundrobin import LoadBalancerRR, _Ring
from raftkube.proxy.servicemap import HostPort, ServicePortName
from raftkube_fuzz.mutants.base import CONTROL_PLANE, Mutant, patch

# --- endpoints-skip-write-on-stale-cache ---------------------------------------------------------


async def _sync_against_cached_endpoints(self: EndpointsController, key: str) -> None:
    namespace, name = split_meta_namespace_key(key)
    service = self.services.get(name, namespace)
    if service is None:
        await self._delete_orphaned(namespace, name)
        return
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName" or not isinstance(spec.get("selector"), dict):
        return
    subsets = desired_subsets(service, self.pods.list(namespace))
    # MUTANT: the desired subsets are compared with the informer's cached Endpoints, which
    # may not show this controller's own last write yet: when the cache still holds what is
    # desired again, the write is skipped and the API keeps the stale list (kubernetes #125638).
    current = self.endpoints.get(name, namespace)
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


# --- proxy-keeps-removed-endpoint ----------------------------------------------------------------


def _merge_endpoints_update(
    self: LoadBalancerRR, endpoints: dict[ServicePortName, list[HostPort]]
) -> None:
    # MUTANT: the update is merged into the table instead of replacing it: a port absent
    # from it (its Endpoints gone or listing no ready address) keeps its ring...
    for spn, pairs in endpoints.items():
        members = frozenset(pairs)
        ring = self._rings.get(spn)
        # MUTANT: ...and a port's ring keeps the addresses its Endpoints no longer list (a pod
        # gone or not Ready), so they keep getting new connections.
        members |= ring.members if ring is not None else frozenset()
        if ring is None or ring.members != members:
            order = sorted(members)
            self.rng.shuffle(order)
            self._rings[spn] = _Ring(members, order)


MUTANTS = (
    Mutant(
        "endpoints-skip-write-on-stale-cache",
        "the endpoints controller skips a needed write when its cache lags its own last write",
        "cluster",
        "EventualStableReconciliation",
        False,
        patch(EndpointsController, "sync_service", _sync_against_cached_endpoints),
        {**CONTROL_PLANE, "slow": "endpoints-watches", "services": "all"},
    ),
    Mutant(
        "proxy-keeps-removed-endpoint",
        "kube-proxy merges each Endpoints update into its balancer, keeping removed endpoints",
        "cluster",
        "EventualStableReconciliation",
        False,
        patch(LoadBalancerRR, "on_endpoints_update", _merge_endpoints_update),
        {**CONTROL_PLANE, "services": "all"},
    ),
)
