"""The simulated cloud's HTTP API, served by the API server's HTTP layer (plain HTTP on
loopback: a test double, with no authentication).

Resources, JSON in and out (errors are ``{"error": message}`` with the status)::

    GET    /v1/instances                 {"items": [instance...]}
    GET    /v1/instances/{name}          instance, or 404
    PUT    /v1/instances/{name}          {zone, region, instanceType, addresses, state}
    DELETE /v1/instances/{name}
    GET    /v1/routes                    {"items": [route...]}
    PUT    /v1/routes/{name}             {cluster, targetNode, destinationCIDR}
    DELETE /v1/routes/{name}
    GET    /v1/loadbalancers             {"items": [lb...]}
    GET    /v1/loadbalancers/{name}
    PUT    /v1/loadbalancers/{name}      {cluster, service, nodes, ports} -> lb with its ip
    DELETE /v1/loadbalancers/{name}
    GET    /v1/faults, PUT /v1/faults    {delay, failNext, failRate, pathPrefix}

The faults make the cloud slow or failing on demand, for the fuzzer and the tests: every
request under ``pathPrefix`` (all of ``/v1/`` but the faults themselves by default) waits
``delay`` seconds on the server's clock; the next ``failNext`` of them, and then each with
probability ``failRate`` (from a seeded generator), answer 503 without acting.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import attrs
import trio

from raftkube.apiserver.http import HTTPServer
from raftkube.apiserver.request import Request, Response
from raftkube.clock import Clock, TrioClock, sleep_for
from raftkube.cloud.provider import CloudAPIError, SimulatedCloud
from raftkube.net.streams import Network

Obj = dict[str, Any]


@attrs.define
class Faults:
    """What the cloud does wrong right now; see the module docstring."""

    delay: float = 0.0
    fail_next: int = 0
    fail_rate: float = 0.0
    path_prefix: str = "/v1/"

    def to_json(self) -> Obj:
        return {
            "delay": self.delay,
            "failNext": self.fail_next,
            "failRate": self.fail_rate,
            "pathPrefix": self.path_prefix,
        }

    @classmethod
    def from_json(cls, body: Obj) -> Faults:
        try:
            faults = cls(
                float(body.get("delay", 0.0)),
                int(body.get("failNext", 0)),
                float(body.get("failRate", 0.0)),
                str(body.get("pathPrefix", "/v1/")),
            )
        except (TypeError, ValueError) as exc:
            raise CloudAPIError(400, f"bad faults: {exc}") from None
        if faults.delay < 0 or faults.fail_next < 0 or not 0 <= faults.fail_rate <= 1:
            raise CloudAPIError(400, "delay and failNext must be >= 0, failRate in [0, 1]")
        return faults


def _json(status: int, body: Obj) -> Response:
    data = json.dumps(body, separators=(",", ":")).encode() + b"\n"
    return Response(status, (("Content-Type", "application/json"),), data)


def _body(request: Request) -> Obj:
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except ValueError:
        raise CloudAPIError(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise CloudAPIError(400, "the body must be a JSON object")
    return body


@attrs.define(eq=False)
class CloudService:
    """The cloud behind its HTTP API: :meth:`handle` is the server's handler."""

    cloud: SimulatedCloud = attrs.field(factory=SimulatedCloud)
    clock: Clock = attrs.field(factory=TrioClock)
    rng: random.Random = attrs.field(factory=random.Random)
    faults: Faults = attrs.field(factory=Faults)
    requests: int = attrs.field(default=0, init=False)
    """How many requests reached a resource (faulted ones included)."""

    async def handle(self, request: Request) -> Response:
        try:
            if request.path == "/v1/faults":
                return self._faults(request)
            if request.path.startswith(self.faults.path_prefix):
                self.requests += 1
                if self.faults.delay > 0:
                    await sleep_for(self.clock, self.faults.delay)
                if self._fails_now():
                    raise CloudAPIError(503, "injected failure")
            return self._route(request)
        except CloudAPIError as exc:
            return _json(exc.status, {"error": exc.message})

    def _fails_now(self) -> bool:
        if self.faults.fail_next > 0:
            self.faults.fail_next -= 1
            return True
        return self.faults.fail_rate > 0 and self.rng.random() < self.faults.fail_rate

    def _faults(self, request: Request) -> Response:
        if request.method == "PUT":
            self.faults = Faults.from_json(_body(request))
        elif request.method != "GET":
            raise CloudAPIError(405, f"{request.method} is not allowed on /v1/faults")
        return _json(200, self.faults.to_json())

    def _route(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        if len(parts) not in (2, 3) or parts[0] != "v1":
            raise CloudAPIError(404, f"no such path {request.path}")
        kind, name = parts[1], parts[2] if len(parts) == 3 else ""
        cloud = self.cloud
        collections: dict[str, tuple[Callable[[], list[Obj]], Any, Any, Any]] = {
            "instances": (
                lambda: list(cloud.instances.values()),
                cloud.instance,
                cloud.put_instance,
                cloud.delete_instance,
            ),
            "routes": (cloud.list_routes, None, cloud.put_route, cloud.delete_route),
            "loadbalancers": (
                lambda: list(cloud.load_balancers.values()),
                cloud.load_balancer,
                cloud.put_load_balancer,
                cloud.delete_load_balancer,
            ),
        }
        if kind not in collections:
            raise CloudAPIError(404, f"no such collection {kind}")
        list_fn, get_fn, put_fn, delete_fn = collections[kind]
        if not name:
            if request.method != "GET":
                raise CloudAPIError(405, f"{request.method} is not allowed on a collection")
            return _json(200, {"items": list_fn()})
        if request.method == "GET" and get_fn is not None:
            return _json(200, get_fn(name))
        if request.method == "PUT":
            return _json(200, put_fn(name, _body(request)))
        if request.method == "DELETE":
            return _json(200, delete_fn(name))
        raise CloudAPIError(405, f"{request.method} is not allowed on {kind}/{name}")


async def serve_cloud(
    service: CloudService,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    network: Network | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``service`` on ``host:port`` of ``network`` (Trio's TCP by default) until
    cancelled; reports the bound port."""
    server = HTTPServer(service.handle, clock=service.clock)
    if network is None:
        await server.serve_tcp(host, port, task_status=task_status)
    else:
        await server.serve_network(network, host, port, task_status=task_status)
