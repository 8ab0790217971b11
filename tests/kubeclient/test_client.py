"""The REST client against the real HTTP layer with a toy API behind it: over loopback TCP, and
over in-memory streams through the ``dial`` seam where connections must be counted or time must
be virtual."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from raftkube.apiserver import errors
from raftkube.apiserver.http import HTTPServer
from raftkube.apiserver.request import Request, Response, StreamingResponse
from raftkube.apiserver.resources import ResourceInfo, lookup
from raftkube.kubeclient import (
    KubeAPIError,
    KubeClient,
    KubeConnectionError,
    resource_path,
)

TIMEOUT = 10


def _resource(group: str, resource: str) -> ResourceInfo:
    info = lookup(group, "v1", resource)
    assert info is not None
    return info


CONFIGMAPS = _resource("", "configmaps")
DEPLOYMENTS = _resource("apps", "deployments")
NODES = _resource("", "nodes")


def _json(status: int, obj: Any) -> Response:
    return Response(status, (("Content-Type", "application/json"),), json.dumps(obj).encode())


@attrs.define
class ToyAPI:
    """ConfigMaps under ``/api/v1/namespaces/{ns}/configmaps``, enough to exercise every verb;
    records each request it gets. Patches are applied as a shallow merge whatever their type
    (the type is only recorded): the client is under test, not patch semantics."""

    objects: dict[tuple[str, str], dict[str, Any]] = attrs.field(factory=dict)
    seen: list[Request] = attrs.field(factory=list)
    stream_pieces: list[bytes] = attrs.field(factory=list)
    gate: trio.Event | None = None

    async def handler(self, req: Request) -> Response | StreamingResponse:
        self.seen.append(req)
        if self.gate is not None:
            await self.gate.wait()
        if req.param("watch") == "true":
            return StreamingResponse(200, (), self._pieces())
        if req.path == "/text-error":
            return Response(502, (("Content-Type", "text/plain"),), b"bad gateway, sorry\n")
        if req.path == "/hang":
            await trio.sleep_forever()
        parts = req.path.strip("/").split("/")
        if parts[:3] != ["api", "v1", "namespaces"] or parts[4:5] != ["configmaps"]:
            raise errors.not_found("paths", req.path)
        ns, name = parts[3], (parts[5] if len(parts) > 5 else "")
        if req.method == "GET" and not name:
            items = [o for (n, _), o in sorted(self.objects.items()) if n == ns]
            return _json(200, {"kind": "ConfigMapList", "items": items})
        if req.method == "POST":
            obj = json.loads(req.body)
            key = (ns, obj["metadata"]["name"])
            if key in self.objects:
                raise errors.already_exists("configmaps", key[1])
            obj["metadata"]["namespace"] = ns
            self.objects[key] = obj
            return _json(201, obj)
        key = (ns, name)
        if key not in self.objects:
            raise errors.not_found("configmaps", name)
        if req.method == "GET":
            return _json(200, self.objects[key])
        if req.method == "PUT":
            self.objects[key] = json.loads(req.body)
            return _json(200, self.objects[key])
        if req.method == "PATCH":
            patch = json.loads(req.body)
            if isinstance(patch, dict):
                self.objects[key].setdefault("data", {}).update(patch.get("data", {}))
            return _json(200, self.objects[key])
        if req.method == "DELETE":
            del self.objects[key]
            return _json(200, {"kind": "Status", "status": "Success"})
        raise errors.method_not_supported("configmaps", req.method)

    async def _pieces(self) -> AsyncIterator[bytes]:
        for piece in self.stream_pieces:
            yield piece


@attrs.define
class MemoryNetwork:
    """The ``dial`` seam: every dial is a fresh in-memory connection served by ``server``."""

    server: HTTPServer
    nursery: trio.Nursery
    dials: int = 0

    async def dial(self, host: str, port: int) -> trio.abc.Stream:
        client, server = trio.testing.memory_stream_pair()
        self.dials += 1
        self.nursery.start_soon(self.server.serve_stream, server, f"memory-{self.dials}")
        return client


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


# --- paths ---------------------------------------------------------------------------------


def test_resource_paths_are_built_as_client_go_builds_them() -> None:
    assert resource_path(CONFIGMAPS) == "/api/v1/configmaps"
    assert resource_path(CONFIGMAPS, namespace="ns") == "/api/v1/namespaces/ns/configmaps"
    assert (
        resource_path(DEPLOYMENTS, namespace="ns", name="web", subresource="scale")
        == "/apis/apps/v1/namespaces/ns/deployments/web/scale"
    )
    assert resource_path(NODES, name="a b") == "/api/v1/nodes/a%20b"
    assert resource_path("/api/v1/pods/", name="p") == "/api/v1/pods/p"
    with pytest.raises(ValueError, match="not namespaced"):
        resource_path(NODES, namespace="ns")
    with pytest.raises(ValueError, match="subresource"):
        resource_path(NODES, subresource="status")


# --- requests over TCP ---------------------------------------------------------------------


@pytest.mark.trio
async def test_every_verb_round_trips_on_one_kept_alive_connection() -> None:
    api = ToyAPI()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(HTTPServer(api.handler).serve_tcp, "127.0.0.1", 0)
            async with KubeClient(f"http://127.0.0.1:{port}", token="s3cret") as client:
                created = await client.create(
                    CONFIGMAPS,
                    {**configmap("a", k="1"), "metadata": {"name": "a", "namespace": "ns"}},
                )
                assert created["metadata"] == {"name": "a", "namespace": "ns"}
                got = await client.get(CONFIGMAPS, "a", namespace="ns")
                assert got["data"] == {"k": "1"}
                got["data"]["k"] = "2"
                updated = await client.update(CONFIGMAPS, got)
                assert updated["data"] == {"k": "2"}
                patched = await client.patch(CONFIGMAPS, "a", {"data": {"j": "3"}}, namespace="ns")
                assert patched["data"] == {"k": "2", "j": "3"}
                listed = await client.list(
                    CONFIGMAPS, namespace="ns", label_selector="app=web", limit=5
                )
                assert [o["metadata"]["name"] for o in listed["items"]] == ["a"]
                await client.delete(CONFIGMAPS, "a", namespace="ns")
                with pytest.raises(KubeAPIError) as missing:
                    await client.get(CONFIGMAPS, "a", namespace="ns")
                assert client.pool.opened == 1
            nursery.cancel_scope.cancel()

    error = missing.value
    assert (error.code, error.reason) == (404, "NotFound")
    assert error.message == 'configmaps "a" not found'
    assert error.status == errors.not_found("configmaps", "a").status()
    assert len({req.remote for req in api.seen}) == 1
    assert [req.method for req in api.seen] == [
        "POST", "GET", "PUT", "PATCH", "GET", "DELETE", "GET"
    ]  # fmt: skip
    post, _, put, patch, listing, *_ = api.seen
    assert post.path == put.path.rsplit("/", 1)[0] == "/api/v1/namespaces/ns/configmaps"
    assert post.headers["content-type"] == "application/json"
    assert patch.headers["content-type"] == "application/strategic-merge-patch+json"
    assert dict(listing.query) == {"labelSelector": ("app=web",), "limit": ("5",)}
    assert all(req.headers["authorization"] == "Bearer s3cret" for req in api.seen)
    assert all(req.headers["accept"] == "application/json" for req in api.seen)


@pytest.mark.trio
async def test_patch_bodies_get_the_content_type_of_their_kind() -> None:
    api = ToyAPI(objects={("ns", "a"): configmap("a")})
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            network = MemoryNetwork(HTTPServer(api.handler), nursery)
            async with KubeClient("http://api:80", dial=network.dial) as client:
                ops = [{"op": "add", "path": "/data/x", "value": "1"}]
                await client.patch(CONFIGMAPS, "a", ops, namespace="ns")
                await client.patch(
                    CONFIGMAPS, "a", {"data": {}}, namespace="ns", patch_type="merge"
                )
                await client.patch(CONFIGMAPS, "a", ops, namespace="ns", patch_type="json")
            nursery.cancel_scope.cancel()
    assert [req.headers["content-type"] for req in api.seen] == [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/json-patch+json",
    ]
    assert json.loads(api.seen[0].body) == [{"op": "add", "path": "/data/x", "value": "1"}]
    assert api.seen[0].headers["host"] == "api:80"


@pytest.mark.trio
async def test_an_answer_that_is_not_a_status_becomes_one_as_client_go_makes_it() -> None:
    api = ToyAPI()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            network = MemoryNetwork(HTTPServer(api.handler), nursery)
            async with KubeClient("http://api", dial=network.dial) as client:
                status, headers, body = await client.request("GET", "/text-error")
                assert (status, body) == (502, b"bad gateway, sorry\n")
                assert headers["content-type"] == "text/plain"
                with pytest.raises(KubeAPIError) as failure:
                    await client.call("GET", "/text-error")
            nursery.cancel_scope.cancel()
    assert (failure.value.code, failure.value.reason) == (502, "")
    assert failure.value.message == "bad gateway, sorry"


# --- the connection pool -------------------------------------------------------------------


@pytest.mark.trio
async def test_max_connections_bounds_the_requests_in_flight() -> None:
    api = ToyAPI(objects={("ns", "a"): configmap("a")}, gate=trio.Event())
    results: list[dict[str, Any]] = []
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            network = MemoryNetwork(HTTPServer(api.handler), nursery)
            async with KubeClient("http://api", dial=network.dial, max_connections=2) as client:

                async def get() -> None:
                    results.append(await client.get(CONFIGMAPS, "a", namespace="ns"))

                async with trio.open_nursery() as requests:
                    for _ in range(5):
                        requests.start_soon(get)
                    await trio.testing.wait_all_tasks_blocked()
                    assert len(api.seen) == 2
                    assert api.gate is not None
                    api.gate.set()
                assert client.pool.opened == network.dials == 2
            nursery.cancel_scope.cancel()
    assert len(results) == len(api.seen) == 5


@pytest.mark.trio
async def test_a_get_on_a_connection_the_server_closed_while_idle_is_replayed_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = ToyAPI(objects={("ns", "a"): configmap("a")})
    server = HTTPServer(api.handler, idle_timeout=5.0)
    async with trio.open_nursery() as nursery:
        network = MemoryNetwork(server, nursery)
        async with KubeClient("http://api", dial=network.dial) as client:
            await client.get(CONFIGMAPS, "a", namespace="ns")
            await trio.sleep(10)  # virtual: the server drops the idle connection meanwhile
            assert (await client.get(CONFIGMAPS, "a", namespace="ns"))["metadata"]["name"] == "a"
            assert network.dials == 2
            await trio.sleep(10)
            # A POST is not replayed: the server may have acted on it before the connection broke.
            with pytest.raises(KubeConnectionError):
                await client.create(CONFIGMAPS, configmap("b"), namespace="ns")
            assert "b" not in {name for _, name in api.objects}
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_request_without_an_answer_times_out_on_the_clients_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = ToyAPI()
    async with trio.open_nursery() as nursery:
        network = MemoryNetwork(HTTPServer(api.handler), nursery)
        async with KubeClient("http://api", dial=network.dial, timeout=7.0) as client:
            start = trio.current_time()
            with pytest.raises(KubeConnectionError, match=r"no answer within 7\.0 s"):
                await client.request("GET", "/hang")
            assert trio.current_time() - start == pytest.approx(7.0)
            # The abandoned connection is not reused.
            await client.request("GET", "/text-error")
            assert network.dials == 2
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_failed_dial_is_a_connection_error() -> None:
    async def refuse(host: str, port: int) -> trio.abc.Stream:
        raise ConnectionRefusedError(111, "Connection refused")

    async with KubeClient("https://api.example:6443", dial=refuse) as client:
        with pytest.raises(KubeConnectionError, match=r"api\.example:6443") as failure:
            await client.get(NODES)
    assert failure.value.sent is False  # nothing of the request left the client


def test_the_server_url_must_be_http_or_https() -> None:
    with pytest.raises(ValueError, match="http"):
        KubeClient("api:6443")


# --- watches -------------------------------------------------------------------------------


@pytest.mark.trio
async def test_a_watch_yields_each_event_across_chunk_boundaries_until_the_server_ends_it() -> None:
    api = ToyAPI(objects={("ns", "a"): configmap("a")})
    api.stream_pieces = [
        b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n{"type":"MOD',
        b'IFIED","object":{"metadata":{"name":"a","resourceVersion":"7"}}}\n',
        b"\n",
        b'{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}\n',
    ]
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(HTTPServer(api.handler).serve_tcp, "127.0.0.1", 0)
            async with KubeClient(f"http://127.0.0.1:{port}") as client:
                async with client.watch(
                    CONFIGMAPS,
                    namespace="ns",
                    resource_version="5",
                    allow_watch_bookmarks=True,
                    timeout_seconds=30,
                ) as events:
                    seen = [(kind, obj) async for kind, obj in events]
                # The stream ended cleanly, so its connection serves the next request.
                await client.get(CONFIGMAPS, "a", namespace="ns")
                assert client.pool.opened == 1
            nursery.cancel_scope.cancel()
    assert seen == [
        ("ADDED", {"metadata": {"name": "a"}}),
        ("MODIFIED", {"metadata": {"name": "a", "resourceVersion": "7"}}),
        ("ERROR", {"kind": "Status", "code": 410, "reason": "Expired"}),
    ]
    assert dict(api.seen[0].query) == {
        "watch": ("true",),
        "resourceVersion": ("5",),
        "allowWatchBookmarks": ("true",),
        "timeoutSeconds": ("30",),
    }


@pytest.mark.trio
async def test_leaving_a_watch_early_closes_the_servers_stream() -> None:
    closed = trio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b'{"type":"ADDED","object":{"n":1}}\n'
            await trio.sleep_forever()
        finally:
            closed.set()

    async def handler(req: Request) -> StreamingResponse:
        return StreamingResponse(200, (), chunks())

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(HTTPServer(handler).serve_tcp, "127.0.0.1", 0)
            async with KubeClient(f"http://127.0.0.1:{port}") as client:
                async with client.watch("/api/v1/pods") as events:
                    async for kind, obj in events:
                        assert (kind, obj) == ("ADDED", {"n": 1})
                        break
                await closed.wait()
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_refused_watch_raises_the_servers_status() -> None:
    async def handler(req: Request) -> Response:
        raise errors.gone("too old resource version: 1 (50)")

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            network = MemoryNetwork(HTTPServer(handler), nursery)
            async with KubeClient("http://api", dial=network.dial) as client:
                with pytest.raises(KubeAPIError) as failure:
                    async with client.watch(CONFIGMAPS, resource_version="1"):
                        pass
                # The refusal was read whole, so the connection went back to the pool.
                with pytest.raises(KubeAPIError):
                    await client.get(CONFIGMAPS)
                assert network.dials == 1
            nursery.cancel_scope.cancel()
    assert (failure.value.code, failure.value.reason) == (410, "Expired")
    assert failure.value.message == "too old resource version: 1 (50)"


@pytest.mark.trio
async def test_the_observer_is_told_each_requests_outcome_before_the_caller(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = ToyAPI()
    told: list[tuple[str, str, Any, int | str]] = []

    def observe(method: str, path: str, body: Any, outcome: int | BaseException) -> None:
        shown = outcome if isinstance(outcome, int) else type(outcome).__name__
        told.append((method, path, body, shown))

    async with trio.open_nursery() as nursery:
        network = MemoryNetwork(HTTPServer(api.handler), nursery)
        async with KubeClient(
            "http://api", dial=network.dial, timeout=7.0, observer=observe
        ) as client:
            await client.create(CONFIGMAPS, configmap("a"), namespace="ns")
            with pytest.raises(KubeAPIError):
                await client.create(CONFIGMAPS, configmap("a"), namespace="ns")
            assert len(told) == 2  # told before the error reached the caller
            with pytest.raises(KubeAPIError):
                await client.call("GET", "/text-error")
            with pytest.raises(KubeConnectionError) as failure:
                await client.request("POST", "/hang", body={"x": 1})
            assert failure.value.sent is True  # sent, no answer: its outcome is unknown
        nursery.cancel_scope.cancel()
    path = "/api/v1/namespaces/ns/configmaps"
    assert told == [
        ("POST", path, configmap("a"), 201),
        ("POST", path, configmap("a"), 409),
        ("GET", "/text-error", None, 502),
        ("POST", "/hang", {"x": 1}, "KubeConnectionError"),
    ]


@pytest.mark.trio
async def test_the_tracer_sees_each_request_start_and_its_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = ToyAPI()
    told: list[tuple[Any, ...]] = []

    def trace(method: str, path: str, query: Any, body: Any) -> Any:
        told.append(("start", method, path, query, trio.current_time()))

        def done(outcome: int | BaseException, data: bytes) -> None:
            shown = outcome if isinstance(outcome, int) else type(outcome).__name__
            answer = json.loads(data)["metadata"].get("name") if data else None
            told.append(("done", shown, answer, trio.current_time()))

        return done

    async with trio.open_nursery() as nursery:
        network = MemoryNetwork(HTTPServer(api.handler), nursery)
        async with KubeClient("http://api", dial=network.dial, timeout=7.0, tracer=trace) as c:
            await c.create(CONFIGMAPS, configmap("a"), namespace="ns")
            await c.get(CONFIGMAPS, "a", namespace="ns", query={"resourceVersion": "0"})
            with pytest.raises(KubeConnectionError):
                await c.request("POST", "/hang", body={"x": 1})
        nursery.cancel_scope.cancel()
    assert [t[:4] for t in told] == [
        ("start", "POST", "/api/v1/namespaces/ns/configmaps", None),
        ("done", 201, "a", told[1][3]),
        ("start", "GET", "/api/v1/namespaces/ns/configmaps/a", {"resourceVersion": "0"}),
        ("done", 200, "a", told[3][3]),
        ("start", "POST", "/hang", None),
        ("done", "KubeConnectionError", None, told[5][3]),
    ]
    assert told[5][3] - told[4][4] == 7.0  # the hang's start and give-up, 7 s apart
