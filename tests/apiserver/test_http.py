"""The API server's HTTP layer with toy handlers: over memory streams where framing is all that
matters, over loopback TCP and TLS where connections, disconnects and certificates are the
point. Answers are parsed with h11 on the test's side too, never by hand."""

from __future__ import annotations

import json
import logging
import shutil
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import h11
import pytest
import trio
import trio.testing
import trustme

from raftkube.apiserver import errors
from raftkube.apiserver.http import HTTPServer, server_ssl_context
from raftkube.apiserver.http.target import BadTarget, split_target
from raftkube.apiserver.request import Request, Response, StreamingResponse

TIMEOUT = 10


# --- a small h11 client for the tests ------------------------------------------------------


@attrs.define
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@attrs.define
class RawClient:
    """One client connection; sends requests and reads replies through h11."""

    stream: trio.abc.Stream
    conn: h11.Connection = attrs.field(factory=lambda: h11.Connection(h11.CLIENT))

    async def send(self, event: Any) -> None:
        data = self.conn.send(event)
        if data:
            await self.stream.send_all(data)

    async def next_event(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.conn.receive_data(bytes(await self.stream.receive_some()))

    async def request(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
    ) -> Reply:
        fields = [("Host", "test"), *(headers or [])]
        if body or method in ("POST", "PUT"):
            fields.append(("Content-Length", str(len(body))))
        await self.send(h11.Request(method=method, target=target, headers=fields))
        if body:
            await self.send(h11.Data(data=body))
        await self.send(h11.EndOfMessage())
        return await self.reply()

    async def reply(self) -> Reply:
        head = await self.next_event()
        while isinstance(head, h11.InformationalResponse):
            head = await self.next_event()
        assert isinstance(head, h11.Response), head
        parts = []
        while isinstance(event := await self.next_event(), h11.Data):
            parts.append(bytes(event.data))
        assert isinstance(event, h11.EndOfMessage), event
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        headers = {n.decode(): v.decode() for n, v in head.headers}
        return Reply(head.status_code, headers, b"".join(parts))


async def read_until_eof(stream: trio.abc.ReceiveStream) -> bytes:
    data = b""
    while chunk := await stream.receive_some():
        data += chunk
    return data


def echo_response(req: Request) -> Response:
    seen = {
        "method": req.method,
        "path": req.path,
        "query": {k: list(v) for k, v in req.query.items()},
        "headers": dict(req.headers),
        "body": req.body.decode(),
        "remote": req.remote,
        "cert": req.peer_certificate.hex() if req.peer_certificate else None,
    }
    return Response(200, (("Content-Type", "application/json"),), json.dumps(seen).encode())


async def echo(req: Request) -> Response:
    return echo_response(req)


Handler = Callable[[Request], Awaitable[Response | StreamingResponse]]


async def over_memory(
    handler: Handler, fn: Callable[[RawClient], Awaitable[None]], **options: Any
) -> None:
    """Run ``fn`` against one connection served over an in-memory stream pair."""
    server = HTTPServer(handler, **options)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.serve_stream, server_stream, "memory")
        await fn(RawClient(client_stream))
        await client_stream.aclose()


# --- request parsing -----------------------------------------------------------------------


def test_split_target_decodes_the_path_and_keeps_every_query_value() -> None:
    path, query = split_target(b"/api/v1/namespaces/a%2Fb/pods?x=1&y=&x=2&sel=a+b%3Dc")
    assert path == "/api/v1/namespaces/a/b/pods"
    assert query == {"x": ("1", "2"), "y": ("",), "sel": ("a b=c",)}
    assert split_target(b"//double/slash") == ("//double/slash", {})
    assert split_target(b"https://host:6443/api?watch=1") == ("/api", {"watch": ("1",)})
    assert split_target(b"/a;b=c?k=v;w") == ("/a;b=c", {"k": ("v;w",)})
    with pytest.raises(BadTarget):
        split_target(b"/%ff")
    with pytest.raises(BadTarget):
        split_target(b"relative/path")


@pytest.mark.trio
async def test_the_handler_gets_decoded_path_query_lowercase_headers_and_body() -> None:
    async def fn(client: RawClient) -> None:
        reply = await client.request(
            "POST",
            "/api/v1/names%20paced?labelSelector=a%3Db&x=1&x=2",
            body=b'{"kind":"Pod"}',
            headers=[("X-Thing", "one"), ("x-thing", "two"), ("Content-Type", "text/x")],
        )
        assert reply.status == 200
        seen = reply.json()
        assert seen["method"] == "POST"
        assert seen["path"] == "/api/v1/names paced"
        assert seen["query"] == {"labelSelector": ["a=b"], "x": ["1", "2"]}
        assert seen["headers"]["x-thing"] == "one, two"
        assert seen["headers"]["content-type"] == "text/x"
        assert seen["body"] == '{"kind":"Pod"}'
        assert seen["remote"] == "memory"
        assert seen["cert"] is None

    with trio.fail_after(TIMEOUT):
        await over_memory(echo, fn)


@pytest.mark.trio
async def test_head_gets_the_headers_of_get_without_a_body() -> None:
    async def handler(req: Request) -> Response:
        return Response(200, (("Content-Type", "text/plain"),), b"the same body for both")

    async def fn(client: RawClient) -> None:
        get = await client.request("GET", "/x")
        head = await client.request("HEAD", "/x")
        assert (get.status, head.status) == (200, 200)
        assert get.body == b"the same body for both"
        assert head.body == b""
        assert head.headers["content-length"] == str(len(get.body))

    with trio.fail_after(TIMEOUT):
        await over_memory(handler, fn)


@pytest.mark.trio
async def test_expect_100_continue_is_answered_before_the_body_is_sent() -> None:
    async def fn(client: RawClient) -> None:
        headers = [("Host", "t"), ("Content-Length", "4"), ("Expect", "100-continue")]
        await client.send(h11.Request(method="PUT", target="/x", headers=headers))
        interim = await client.next_event()
        assert isinstance(interim, h11.InformationalResponse)
        assert interim.status_code == 100
        await client.send(h11.Data(data=b"body"))
        await client.send(h11.EndOfMessage())
        reply = await client.reply()
        assert reply.status == 200
        assert reply.json()["body"] == "body"

    with trio.fail_after(TIMEOUT):
        await over_memory(echo, fn)


# --- errors --------------------------------------------------------------------------------


@pytest.mark.trio
async def test_an_api_error_becomes_its_status_as_json_with_its_code() -> None:
    async def handler(req: Request) -> Response:
        raise errors.not_found("pods", "web")

    async def fn(client: RawClient) -> None:
        reply = await client.request("GET", "/api/v1/namespaces/default/pods/web")
        assert reply.status == 404
        assert reply.headers["content-type"] == "application/json"
        assert reply.json() == errors.not_found("pods", "web").status()
        # The connection survives an error answer.
        again = await client.request("GET", "/other")
        assert again.status == 404

    with trio.fail_after(TIMEOUT):
        await over_memory(handler, fn)


@pytest.mark.trio
async def test_an_unexpected_exception_is_a_500_status_and_is_logged_without_the_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(req: Request) -> Response:
        raise RuntimeError("handler bug")

    async def fn(client: RawClient) -> None:
        reply = await client.request("POST", "/api/v1/secrets", body=b"top-secret-value")
        assert reply.status == 500
        status = reply.json()
        assert (status["kind"], status["reason"], status["code"]) == (
            "Status",
            "InternalError",
            500,
        )

    with caplog.at_level(logging.ERROR), trio.fail_after(TIMEOUT):
        await over_memory(handler, fn)
    assert "handler bug" in caplog.text
    assert "POST /api/v1/secrets" in caplog.text
    assert "top-secret-value" not in caplog.text


@pytest.mark.trio
async def test_a_response_head_that_cannot_be_sent_becomes_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(req: Request) -> Response | StreamingResponse:
        bad = (("X-Injected", "a\r\nSet-Cookie: evil"),)
        if req.path == "/stream":
            return StreamingResponse(200, bad, Producer.new().chunks())
        return Response(200, bad, b"body")

    async def fn(client: RawClient) -> None:
        for path in ("/plain", "/stream"):
            reply = await client.request("GET", path)
            assert reply.status == 500
            assert "set-cookie" not in reply.headers
            assert reply.json()["reason"] == "InternalError"

    with caplog.at_level(logging.ERROR), trio.fail_after(TIMEOUT):
        await over_memory(handler, fn)
    assert "unsendable response head" in caplog.text


@pytest.mark.trio
async def test_a_declared_body_over_the_limit_is_refused_with_413_unread() -> None:
    calls: list[Request] = []

    async def handler(req: Request) -> Response:
        calls.append(req)
        return echo_response(req)

    async def fn(client: RawClient) -> None:
        ok = await client.request("POST", "/x", body=b"a" * 100)
        assert ok.status == 200
        headers = [("Host", "t"), ("Content-Length", "101")]
        await client.send(h11.Request(method="POST", target="/x", headers=headers))
        reply = await client.reply()
        assert reply.status == 413
        assert reply.json() == errors.too_large(100).status()
        assert reply.headers["connection"] == "close"
        assert await read_until_eof(client.stream) == b""

    with trio.fail_after(TIMEOUT):
        await over_memory(handler, fn, max_body=100)
    assert len(calls) == 1


@pytest.mark.trio
async def test_a_chunked_body_is_refused_with_413_once_it_passes_the_limit() -> None:
    async def handler(req: Request) -> Response:
        raise AssertionError("the handler must not see an oversized body")

    async def fn(client: RawClient) -> None:
        headers = [("Host", "t"), ("Transfer-Encoding", "chunked")]
        await client.send(h11.Request(method="POST", target="/x", headers=headers))
        await client.send(h11.Data(data=b"a" * 60))
        await client.send(h11.Data(data=b"a" * 60))
        reply = await client.reply()
        assert reply.status == 413
        assert reply.json()["reason"] == "RequestEntityTooLarge"

    with trio.fail_after(TIMEOUT):
        await over_memory(handler, fn, max_body=100)


@pytest.mark.trio
async def test_malformed_http_gets_400_and_the_connection_is_closed() -> None:
    async def fn(client: RawClient) -> None:
        await client.stream.send_all(b"this is not http\r\n\r\n")
        received = await read_until_eof(client.stream)
        parser = h11.Connection(h11.CLIENT)
        parser.send(h11.Request(method="GET", target="/", headers=[("Host", "t")]))
        parser.send(h11.EndOfMessage())
        parser.receive_data(received)
        parser.receive_data(b"")
        head = parser.next_event()
        assert isinstance(head, h11.Response)
        assert head.status_code == 400
        body = parser.next_event()
        assert isinstance(body, h11.Data)
        status = json.loads(body.data)
        assert (status["reason"], status["code"]) == ("BadRequest", 400)

    with trio.fail_after(TIMEOUT):
        await over_memory(echo, fn)


@pytest.mark.trio
async def test_an_undecodable_path_is_a_400_and_the_connection_goes_on() -> None:
    async def fn(client: RawClient) -> None:
        bad = await client.request("GET", "/%ff%fe")
        assert bad.status == 400
        assert bad.json()["reason"] == "BadRequest"
        assert (await client.request("GET", "/fine")).status == 200

    with trio.fail_after(TIMEOUT):
        await over_memory(echo, fn)


# --- connection lifetime -------------------------------------------------------------------


@pytest.mark.trio
async def test_connection_close_is_honoured() -> None:
    async def fn(client: RawClient) -> None:
        reply = await client.request("GET", "/x", headers=[("Connection", "close")])
        assert reply.status == 200
        assert reply.headers["connection"] == "close"
        assert await read_until_eof(client.stream) == b""

    with trio.fail_after(TIMEOUT):
        await over_memory(echo, fn)


@pytest.mark.trio
async def test_an_idle_connection_is_closed_after_the_idle_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fn(client: RawClient) -> None:
        await client.request("GET", "/x")
        start = trio.current_time()
        assert await read_until_eof(client.stream) == b""
        assert 30 <= trio.current_time() - start < 31

    with trio.fail_after(100):
        await over_memory(echo, fn, idle_timeout=30.0)


@pytest.mark.trio
async def test_a_request_head_that_trickles_in_is_dropped_after_the_header_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def fn(client: RawClient) -> None:
        start = trio.current_time()
        await client.stream.send_all(b"GET / HTTP/1.1\r\nHost: t\r\n")
        assert await read_until_eof(client.stream) == b""
        assert 5 <= trio.current_time() - start < 6

    with trio.fail_after(100):
        await over_memory(echo, fn, header_timeout=5.0)


# --- streaming -----------------------------------------------------------------------------


@attrs.define
class Producer:
    """A streaming response fed by the test through a channel; records its own closing."""

    send: trio.MemorySendChannel[bytes]
    receive: trio.MemoryReceiveChannel[bytes]
    closed: trio.Event = attrs.field(factory=trio.Event)

    @classmethod
    def new(cls) -> Producer:
        send, receive = trio.open_memory_channel[bytes](0)
        return cls(send, receive)

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.receive:
                yield chunk
        finally:
            self.closed.set()

    async def handler(self, req: Request) -> StreamingResponse:
        return StreamingResponse(200, (("Content-Type", "application/json"),), self.chunks())


@attrs.define
class Served:
    """A server on a loopback port, and the client connections the test opened to it."""

    port: int
    streams: list[trio.abc.Stream] = attrs.field(factory=list)

    async def connect(self, ctx: ssl.SSLContext | None = None) -> RawClient:
        tcp = await trio.open_tcp_stream("127.0.0.1", self.port)
        self.streams.append(tcp)
        if ctx is None:
            return RawClient(tcp)
        tls = trio.SSLStream(tcp, ctx, server_hostname="127.0.0.1", https_compatible=True)
        await tls.do_handshake()
        return RawClient(tls)


@asynccontextmanager
async def served(server: HTTPServer) -> AsyncIterator[Served]:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(server.serve_tcp, "127.0.0.1", 0)
        connections = Served(port)
        try:
            yield connections
        finally:
            for stream in connections.streams:
                await trio.aclose_forcefully(stream)
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_keep_alive_serves_two_requests_on_one_tcp_connection() -> None:
    with trio.fail_after(TIMEOUT):
        async with served(HTTPServer(echo)) as srv:
            client = await srv.connect()
            first = (await client.request("GET", "/one")).json()
            second = (await client.request("GET", "/two")).json()
            assert (first["path"], second["path"]) == ("/one", "/two")
            assert first["remote"] == second["remote"]
            assert first["remote"].startswith("127.0.0.1:")
            other = await srv.connect()
            assert (await other.request("GET", "/three")).json()["remote"] != first["remote"]


@pytest.mark.trio
async def test_a_streaming_response_is_seen_chunk_by_chunk_and_ends_cleanly() -> None:
    producer = Producer.new()
    with trio.fail_after(TIMEOUT):
        async with served(HTTPServer(producer.handler)) as srv:
            client = await srv.connect()
            await client.send(h11.Request(method="GET", target="/w", headers=[("Host", "t")]))
            await client.send(h11.EndOfMessage())
            head = await client.next_event()
            assert isinstance(head, h11.Response)
            assert (b"transfer-encoding", b"chunked") in head.headers
            for n in range(3):
                line = b'{"type":"ADDED","n":%d}\n' % n
                # The producer hands over one chunk at a time (unbuffered channel), so seeing
                # it here means it was flushed before the next one existed.
                await producer.send.send(line)
                event = await client.next_event()
                assert isinstance(event, h11.Data)
                assert bytes(event.data) == line
            await producer.send.aclose()
            assert isinstance(await client.next_event(), h11.EndOfMessage)
            await producer.closed.wait()
            client.conn.start_next_cycle()
            # The connection is reusable after a stream that ended (the producer's channel is
            # closed now, so this second stream is empty).
            reply = await client.request("GET", "/after")
            assert (reply.status, reply.body) == (200, b"")


@pytest.mark.trio
async def test_a_client_that_disconnects_closes_the_stream_iterator() -> None:
    producer = Producer.new()
    with trio.fail_after(TIMEOUT):
        async with served(HTTPServer(producer.handler)) as srv:
            client = await srv.connect()
            await client.send(h11.Request(method="GET", target="/w", headers=[("Host", "t")]))
            await client.send(h11.EndOfMessage())
            assert isinstance(await client.next_event(), h11.Response)
            await producer.send.send(b"first\n")
            assert isinstance(await client.next_event(), h11.Data)
            # Nothing is being sent when the client leaves: only the server's read notices.
            await client.stream.aclose()
            await producer.closed.wait()


@pytest.mark.trio
async def test_a_failing_producer_truncates_the_stream_and_closes_the_connection() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"one\n"
        raise RuntimeError("producer bug")

    async def handler(req: Request) -> StreamingResponse:
        return StreamingResponse(200, (), chunks())

    async def fn(client: RawClient) -> None:
        await client.send(h11.Request(method="GET", target="/w", headers=[("Host", "t")]))
        await client.send(h11.EndOfMessage())
        assert isinstance(await client.next_event(), h11.Response)
        assert bytes((await client.next_event()).data) == b"one\n"
        with pytest.raises(h11.RemoteProtocolError):
            await client.next_event()

    with trio.fail_after(TIMEOUT):
        await over_memory(handler, fn)


# --- TLS -----------------------------------------------------------------------------------


@attrs.frozen
class Pki:
    ca: trustme.CA
    server_context: ssl.SSLContext


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = tmp_path / "server.crt", tmp_path / "server.key", tmp_path / "ca.crt"
    # ca.crt is also what the real-client tests point their clients at.
    for blob, path in ((leaf.cert_chain_pems[0], cert), (leaf.private_key_pem, key)):
        blob.write_to_path(str(path))
    ca.cert_pem.write_to_path(str(ca_file))
    return Pki(ca, server_ssl_context(cert, key, ca_file))


def client_context(
    ca: trustme.CA, identity: trustme.CA | None = None
) -> tuple[ssl.SSLContext, bytes]:
    """A context trusting ``ca``; with ``identity``, presenting a certificate it issues. Also
    returns that certificate's DER (empty without one)."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    if identity is None:
        return ctx, b""
    leaf = identity.issue_cert("alice@example.com")
    leaf.configure_cert(ctx)
    der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
    return ctx, der


@pytest.mark.trio
async def test_the_verified_client_certificate_reaches_the_handler_as_der(pki: Pki) -> None:
    ctx, der = client_context(pki.ca, identity=pki.ca)
    with trio.fail_after(TIMEOUT):
        async with served(HTTPServer(echo, ssl_context=pki.server_context)) as srv:
            client = await srv.connect(ctx)
            seen = (await client.request("GET", "/whoami")).json()
            assert bytes.fromhex(seen["cert"]) == der
            assert seen["path"] == "/whoami"


@pytest.mark.trio
async def test_a_tls_client_without_a_certificate_is_served_without_one(pki: Pki) -> None:
    ctx, _ = client_context(pki.ca)
    with trio.fail_after(TIMEOUT):
        async with served(HTTPServer(echo, ssl_context=pki.server_context)) as srv:
            client = await srv.connect(ctx)
            assert (await client.request("GET", "/x")).json()["cert"] is None
            assert (await client.request("GET", "/y")).json()["path"] == "/y"


@pytest.mark.trio
async def test_a_certificate_from_another_ca_is_rejected_in_the_tls12_handshake(pki: Pki) -> None:
    calls: list[Request] = []

    async def handler(req: Request) -> Response:
        calls.append(req)
        return echo_response(req)

    ctx, _ = client_context(pki.ca, identity=trustme.CA())
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with trio.fail_after(TIMEOUT):
        async with served(HTTPServer(handler, ssl_context=pki.server_context)) as srv:
            # The server drops the connection when its check fails (trio does not flush the
            # alert OpenSSL prepared), so the client's handshake ends in an early EOF.
            with pytest.raises(trio.BrokenResourceError):
                await srv.connect(ctx)
    assert calls == []


@pytest.mark.trio
async def test_a_certificate_from_another_ca_gets_no_answer_under_tls13(pki: Pki) -> None:
    calls: list[Request] = []

    async def handler(req: Request) -> Response:
        calls.append(req)
        return echo_response(req)

    ctx, _ = client_context(pki.ca, identity=trustme.CA())
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    with trio.fail_after(TIMEOUT):
        async with served(HTTPServer(handler, ssl_context=pki.server_context)) as srv:
            # TLS 1.3 completes the client's side of the handshake before the server has
            # checked the certificate: the server's refusal ends the connection unanswered.
            received = b"unset"
            try:
                client = await srv.connect(ctx)
                await client.send(h11.Request(method="GET", target="/", headers=[("Host", "t")]))
                await client.send(h11.EndOfMessage())
                received = await read_until_eof(client.stream)
            except trio.BrokenResourceError:
                received = b""
            assert received == b""
    assert calls == []


@pytest.mark.trio
async def test_serve_accepts_on_every_listener_it_is_given() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            listeners = [
                *(await trio.open_tcp_listeners(0, host="127.0.0.1")),
                *(await trio.open_tcp_listeners(0, host="127.0.0.1")),
            ]
            ports = [listener.socket.getsockname()[1] for listener in listeners]
            await nursery.start(HTTPServer(echo).serve, listeners)
            for port in ports:
                async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
                    reply = await RawClient(stream).request("GET", f"/{port}")
                    assert reply.json()["path"] == f"/{port}"
            nursery.cancel_scope.cancel()


# --- real clients ----------------------------------------------------------------------------


async def namespaces(req: Request) -> Response | StreamingResponse:
    """Just enough of ``/api/v1/namespaces`` for a list and a watch by real clients."""
    if req.path != "/api/v1/namespaces":
        raise errors.not_found("paths", req.path)
    if req.param("watch") in ("true", "1"):

        async def events() -> AsyncIterator[bytes]:
            for name, version in (("a", "2"), ("b", "3")):
                meta = {"name": name, "resourceVersion": version}
                event = {"type": "ADDED", "object": {"kind": "Namespace", "metadata": meta}}
                yield json.dumps(event).encode() + b"\n"

        return StreamingResponse(200, (("Content-Type", "application/json"),), events())
    listing = {
        "kind": "NamespaceList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "1"},
        "items": [{"kind": "Namespace", "metadata": {"name": "default"}}],
    }
    return Response(200, (("Content-Type", "application/json"),), json.dumps(listing).encode())


@attrs.frozen
class ClientFiles:
    ca: Path
    cert: Path
    key: Path


def client_files(pki: Pki, directory: Path) -> ClientFiles:
    leaf = pki.ca.issue_cert("admin@example.com")
    files = ClientFiles(directory / "ca.crt", directory / "client.crt", directory / "client.key")
    leaf.cert_chain_pems[0].write_to_path(str(files.cert))
    leaf.private_key_pem.write_to_path(str(files.key))
    return files


@pytest.mark.trio
async def test_the_official_python_client_lists_and_watches_over_tls(
    pki: Pki, tmp_path: Path
) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    files = client_files(pki, tmp_path)

    def use_client(port: int) -> tuple[list[str], list[tuple[str, str]]]:
        config = kubernetes.client.Configuration()
        config.host = f"https://127.0.0.1:{port}"
        config.ssl_ca_cert, config.cert_file, config.key_file = map(
            str, (files.ca, files.cert, files.key)
        )
        with kubernetes.client.ApiClient(config) as api_client:
            api = kubernetes.client.CoreV1Api(api_client)
            listed = [ns.metadata.name for ns in api.list_namespace().items]
            watched = [
                (event["type"], event["object"].metadata.name)
                for event in kubernetes.watch.Watch().stream(api.list_namespace, timeout_seconds=5)
            ]
        return listed, watched

    with trio.fail_after(30):
        async with served(HTTPServer(namespaces, ssl_context=pki.server_context)) as srv:
            listed, watched = await trio.to_thread.run_sync(use_client, srv.port)
    assert listed == ["default"]
    assert watched == [("ADDED", "a"), ("ADDED", "b")]


@pytest.mark.trio
async def test_kubectl_reaches_the_handler_with_its_client_certificate(
    pki: Pki, tmp_path: Path
) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on PATH")
    files = client_files(pki, tmp_path)
    seen: list[Request] = []

    async def handler(req: Request) -> Response | StreamingResponse:
        seen.append(req)
        return await namespaces(req)

    with trio.fail_after(60):
        async with served(HTTPServer(handler, ssl_context=pki.server_context)) as srv:
            kubeconfig = tmp_path / "kubeconfig"
            kubeconfig.write_text(
                json.dumps(
                    {
                        "apiVersion": "v1",
                        "kind": "Config",
                        "current-context": "t",
                        "clusters": [
                            {
                                "name": "t",
                                "cluster": {
                                    "server": f"https://127.0.0.1:{srv.port}",
                                    "certificate-authority": str(files.ca),
                                },
                            }
                        ],
                        "users": [
                            {
                                "name": "t",
                                "user": {
                                    "client-certificate": str(files.cert),
                                    "client-key": str(files.key),
                                },
                            }
                        ],
                        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
                    }
                )
            )
            result = await trio.run_process(
                [kubectl, "--kubeconfig", str(kubeconfig), "get", "--raw", "/api/v1/namespaces"],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["items"][0]["metadata"]["name"] == "default"
    assert seen[-1].peer_certificate is not None
    assert seen[-1].headers["user-agent"].startswith("kubectl")
