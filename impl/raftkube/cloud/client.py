"""The cloud controllers' client of the simulated cloud (what upstream's ``cloudprovider``
interfaces ``InstancesV2``, ``Routes`` and ``LoadBalancer`` are to a real provider).

It speaks the JSON API of :mod:`raftkube.cloud.server` over the project's keep-alive HTTP
client. Every failure is a :class:`CloudError`: the cloud's refusal with its status, or
``status`` 0 when no answer came (connection refused, timeout on the client's clock).
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import trio

from raftkube.clock import Clock, TrioClock
from raftkube.kubeclient import Dial, KubeClient, KubeConnectionError, RequestTracer

Obj = dict[str, Any]


class CloudError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"cloud: {status or 'no answer'}: {message}")
        self.status = status
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404


@attrs.define(eq=False)
class CloudClient:
    """A client of the cloud at ``url`` (``http://host:port``); close it with :meth:`aclose`."""

    url: str
    clock: Clock = attrs.field(factory=TrioClock, kw_only=True)
    timeout: float = attrs.field(default=10.0, kw_only=True)
    dial: Dial = attrs.field(default=trio.open_tcp_stream, kw_only=True)
    """How connections are opened (the simulated network in the fuzzer)."""
    tracer: RequestTracer | None = attrs.field(default=None, kw_only=True)
    """Told each cloud request and its answer, as the Kubernetes client's tracer is (a checker
    judging the cloud calls; production gives none)."""
    _http: KubeClient = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._http = KubeClient(
            self.url,
            clock=self.clock,
            timeout=self.timeout,
            user_agent="raftkube-cloud-client",
            dial=self.dial,
            tracer=self.tracer,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> CloudClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, body: Obj | None = None) -> Obj:
        try:
            status, _, data = await self._http.request(method, path, body=body)
        except KubeConnectionError as exc:
            raise CloudError(0, str(exc)) from None
        try:
            decoded = json.loads(data) if data else {}
        except ValueError:
            raise CloudError(status, "the answer is not JSON") from None
        if not 200 <= status < 300:
            raise CloudError(status, str(decoded.get("error", "")))
        if not isinstance(decoded, dict):
            raise CloudError(status, "the answer is not a JSON object")
        return decoded

    async def _items(self, path: str) -> list[Obj]:
        return list((await self._call("GET", path)).get("items") or [])

    async def _get_or_none(self, path: str) -> Obj | None:
        """The object at ``path``; None when the cloud has none (404)."""
        try:
            return await self._call("GET", path)
        except CloudError as exc:
            if exc.not_found:
                return None
            raise

    async def _delete_if_present(self, path: str) -> None:
        """Delete the object at ``path``; one that is gone already (404) is fine."""
        try:
            await self._call("DELETE", path)
        except CloudError as exc:
            if not exc.not_found:
                raise

    # --- instances -------------------------------------------------------------------------

    async def instances(self) -> list[Obj]:
        return await self._items("/v1/instances")

    async def instance(self, name: str) -> Obj | None:
        """The instance of node ``name``; None if the cloud has none (upstream's
        ``InstanceNotFound``)."""
        return await self._get_or_none(f"/v1/instances/{name}")

    async def put_instance(self, name: str, spec: Obj) -> Obj:
        return await self._call("PUT", f"/v1/instances/{name}", spec)

    async def delete_instance(self, name: str) -> None:
        await self._call("DELETE", f"/v1/instances/{name}")

    # --- routes ----------------------------------------------------------------------------

    async def routes(self, cluster: str) -> list[Obj]:
        """``ListRoutes``: the routes of ``cluster``."""
        return [r for r in await self._items("/v1/routes") if r.get("cluster") == cluster]

    async def create_route(self, cluster: str, name_hint: str, node: str, cidr: str) -> Obj:
        """``CreateRoute``, named ``{cluster}-{name_hint}`` as GCE names them."""
        body = {"cluster": cluster, "targetNode": node, "destinationCIDR": cidr}
        return await self._call("PUT", f"/v1/routes/{cluster}-{name_hint}", body)

    async def delete_route(self, name: str) -> None:
        await self._delete_if_present(f"/v1/routes/{name}")

    # --- load balancers --------------------------------------------------------------------

    async def load_balancer(self, name: str) -> Obj | None:
        """``GetLoadBalancer``: None when it does not exist."""
        return await self._get_or_none(f"/v1/loadbalancers/{name}")

    async def ensure_load_balancer(
        self, cluster: str, name: str, service: str, nodes: list[str], ports: list[Obj]
    ) -> Obj:
        """``EnsureLoadBalancer`` (and ``UpdateLoadBalancer``): create or update; the answer
        carries the address."""
        body = {"cluster": cluster, "service": service, "nodes": nodes, "ports": ports}
        return await self._call("PUT", f"/v1/loadbalancers/{name}", body)

    async def delete_load_balancer(self, name: str) -> None:
        """``EnsureLoadBalancerDeleted``: gone already is fine."""
        await self._delete_if_present(f"/v1/loadbalancers/{name}")

    # --- faults ----------------------------------------------------------------------------

    async def set_faults(
        self,
        *,
        delay: float = 0.0,
        fail_next: int = 0,
        fail_rate: float = 0.0,
        path_prefix: str = "/v1/",
    ) -> Obj:
        body = {
            "delay": delay,
            "failNext": fail_next,
            "failRate": fail_rate,
            "pathPrefix": path_prefix,
        }
        return await self._call("PUT", "/v1/faults", body)
