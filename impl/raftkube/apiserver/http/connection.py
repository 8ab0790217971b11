"""One HTTP/1.1 connection of :class:`~raftkube.apiserver.http.server.HTTPServer`: its
request loop (read a head and a whole body, call the handler, send the response, repeat while
h11 says the connection is reusable), the framing of responses, and the watch for a client
that went away during a stream. The timeouts and limits it applies, and why, are described in
:mod:`raftkube.apiserver.http.server`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import attrs
import h11
import trio

from raftkube.apiserver import errors
from raftkube.apiserver.errors import APIError
from raftkube.apiserver.http.target import BadTarget, join_headers, split_target
from raftkube.apiserver.request import Request, Response, StreamingResponse
from raftkube.clock import Clock, move_on_after

if TYPE_CHECKING:
    from raftkube.apiserver.http.server import HTTPServer

logger = logging.getLogger(__name__)

MAX_HEADER_BYTES = 1 << 20
"""Upper bound on a request head, as kube-apiserver's ``MaxHeaderBytes``."""

RECEIVE_SIZE = 64 * 1024

CLOSE_GRACE = 5.0
"""How long a stream producer's cleanup, or a TLS close_notify, may take once cancelled."""

_DROPPED_RESPONSE_HEADERS = frozenset({"content-length", "transfer-encoding"})
"""Framing is this module's job; a handler's own framing headers are replaced."""


_UNSENDABLE = errors.internal("the response could not be encoded; the server's log has details")


class _ClientGone(Exception):
    """The connection broke under a read or write: nothing more can be said on it."""


def _json_status(error: APIError) -> bytes:
    return json.dumps(error.status(), separators=(",", ":")).encode() + b"\n"


def _error_response(error: APIError) -> Response:
    """The ``Status`` answer for ``error``, with any headers it carries (``Retry-After``...)."""
    return Response(
        error.code, (("Content-Type", "application/json"), *error.headers), _json_status(error)
    )


def _encode_headers(
    headers: Sequence[tuple[str, str]], extra: Sequence[tuple[str, str]]
) -> list[tuple[bytes, bytes]]:
    encoded = [
        (name.encode("ascii"), value.encode("utf-8"))
        for name, value in headers
        if name.lower() not in _DROPPED_RESPONSE_HEADERS
    ]
    encoded.extend((name.encode("ascii"), value.encode("ascii")) for name, value in extra)
    return encoded


_REASONS: dict[int, bytes] = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}


def _reason(status: int) -> bytes:
    return _REASONS.get(status, b"")


def remote_of(stream: trio.abc.Stream) -> str:
    """``host:port`` of a TCP peer, ``[v6]:port`` for IPv6; empty for other streams."""
    if not isinstance(stream, trio.SocketStream):
        return ""
    try:
        address = stream.socket.getpeername()
    except OSError:
        return ""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _aclose_chunks(chunks: AsyncIterator[bytes], clock: Clock) -> None:
    """Close a stream's producer, shielded (the connection's scope is usually cancelled by now)
    but bounded, so its ``finally`` blocks run without being able to hold the task forever."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is None:
        return
    with move_on_after(clock, CLOSE_GRACE) as scope:
        scope.shield = True
        try:
            await aclose()
        except Exception:
            logger.exception("closing a response stream failed")


@attrs.define
class Connection:
    """One connection's request loop; its state is h11's, plus whether the client left."""

    server: HTTPServer
    stream: trio.abc.Stream
    remote: str
    peer_certificate: bytes | None
    protocol: h11.Connection = attrs.field(
        factory=lambda: h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
    )
    client_gone: bool = False
    buffered: int = 0

    @property
    def must_linger(self) -> bool:
        """The client may still be sending what this side will never read."""
        return not self.client_gone and self.protocol.their_state in (h11.SEND_BODY, h11.ERROR)

    async def run(self) -> None:
        first = True
        while True:
            try:
                head = await self._read_head(first)
                if head is None:
                    return
                first = False
                body = await self._read_body(head)
            except h11.RemoteProtocolError as exc:
                await self._refuse_malformed(exc)
                return
            except _ClientGone:
                self.client_gone = True
                return
            if body is None:
                return
            try:
                keep = await self._answer(head, body)
            except _ClientGone:
                self.client_gone = True
                return
            if not keep or self.protocol.our_state is not h11.DONE:
                return
            if self.protocol.their_state is not h11.DONE:
                return
            self.protocol.start_next_cycle()
            self.buffered = 0

    # --- reading ---------------------------------------------------------------------------

    async def _receive(self) -> None:
        try:
            data = await self.stream.receive_some(RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _ClientGone from exc
        self.protocol.receive_data(bytes(data))

    async def _next_event(self) -> Any:
        while True:
            event = self.protocol.next_event()
            if event is not h11.NEED_DATA:
                return event
            await self._receive()

    async def _read_head(self, first: bool) -> h11.Request | None:
        """The next request's head, or None when the connection should end quietly (the
        client closed it, or it idled out, or the head came too slowly).

        The header timeout starts once the first bytes of a request are in (on a new
        connection: at once). A client almost always sends a head in one write, so the first
        read usually completes it and the header timeout's cancel scope is only entered for a
        head that arrives in pieces."""
        clock = self.server.clock
        event = self.protocol.next_event()
        if event is h11.NEED_DATA:
            if not first:
                with move_on_after(clock, self.server.idle_timeout) as idle:
                    await self._receive()
                if idle.cancelled_caught:
                    return None
                event = self.protocol.next_event()
            if event is h11.NEED_DATA:
                with move_on_after(clock, self.server.header_timeout) as slow:
                    event = await self._next_event()
                if slow.cancelled_caught:
                    logger.debug("request head from %s timed out", self.remote)
                    return None
        if isinstance(event, h11.ConnectionClosed):
            self.client_gone = True
            return None
        assert isinstance(event, h11.Request), event
        return event

    async def _read_body(self, head: h11.Request) -> bytes | APIError | None:
        """The whole body, a 413 error when it is too large, or None if the client stalled."""
        limit = self.server.max_body
        for name, value in head.headers:
            if name == b"content-length" and int(value) > limit:
                return errors.too_large(limit)
        parts: list[bytes] = []
        size = 0
        while True:
            event = self.protocol.next_event()
            if event is h11.NEED_DATA:
                if self.protocol.they_are_waiting_for_100_continue:
                    await self._send(h11.InformationalResponse(status_code=100, headers=[]))
                with move_on_after(self.server.clock, self.server.idle_timeout) as stalled:
                    await self._receive()
                if stalled.cancelled_caught:
                    logger.debug("request body from %s stalled", self.remote)
                    return None
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > limit:
                    return errors.too_large(limit)
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(parts)

    # --- answering -------------------------------------------------------------------------

    async def _answer(self, head: h11.Request, body: bytes | APIError) -> bool:
        """Produce and send the response; whether the connection may carry another request."""
        head_only = head.method == b"HEAD"
        if isinstance(body, APIError):
            # Part of the body is unread: the connection cannot be reused.
            await self._send_response(_error_response(body), head_only, close=True)
            return False
        try:
            path, query = split_target(head.target)
        except BadTarget as exc:
            await self._send_response(_error_response(errors.bad_request(str(exc))), head_only)
            return True
        request = Request(
            method=head.method.decode("ascii"),
            path=path,
            query=query,
            headers=join_headers(head.headers),
            body=body,
            peer_certificate=self.peer_certificate,
            remote=self.remote,
        )
        response = await self._call(request)
        if isinstance(response, StreamingResponse):
            return await self._send_streaming(response, head_only)
        await self._send_response(response, head_only)
        return True

    async def _call(self, request: Request) -> Response | StreamingResponse:
        try:
            return await self.server.handler(request)
        except APIError as exc:
            return _error_response(exc)
        except Exception:
            # The body is not logged: it may hold a Secret or a token.
            logger.exception(
                "handler failed on %s %s from %s", request.method, request.path, self.remote
            )
            return _error_response(
                errors.internal("the request failed on the server; its log has the details")
            )

    async def _send(self, *events: Any) -> None:
        data = b"".join(self.protocol.send(event) or b"" for event in events)
        if data:
            try:
                await self.stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise _ClientGone from exc

    def _head(
        self, status: int, headers: Sequence[tuple[str, str]], extra: Sequence[tuple[str, str]]
    ) -> h11.Response | None:
        """The response head, or None (logged) if the handler's status or headers cannot be
        sent: h11 refuses them before anything reaches the wire, so a 500 can still go out."""
        try:
            return h11.Response(
                status_code=status, headers=_encode_headers(headers, extra), reason=_reason(status)
            )
        except (h11.LocalProtocolError, UnicodeEncodeError):
            logger.exception("unsendable response head (status %s) for %s", status, self.remote)
            return None

    async def _send_response(
        self, response: Response, head_only: bool, close: bool = False
    ) -> None:
        extra = [("Content-Length", str(len(response.body)))]
        if close:
            extra.append(("Connection", "close"))
        head = self._head(response.status, response.headers, extra)
        if head is None:
            response = _error_response(_UNSENDABLE)
            extra[0] = ("Content-Length", str(len(response.body)))
            head = self._head(response.status, response.headers, extra)
            assert head is not None
        # One write for the whole response: one system call (one TLS record) instead of three.
        body = (h11.Data(data=response.body),) if response.body and not head_only else ()
        await self._send(head, *body, h11.EndOfMessage())

    async def _send_streaming(self, response: StreamingResponse, head_only: bool) -> bool:
        chunks = response.chunks
        try:
            head = self._head(response.status, response.headers, [("Transfer-Encoding", "chunked")])
            if head is None:
                await self._send_response(_error_response(_UNSENDABLE), head_only)
                return True
            await self._send(head)
            if head_only:
                await self._send(h11.EndOfMessage())
                return True
            finished = False
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_for_disconnect, nursery.cancel_scope)
                finished = await self._pump(chunks)
                nursery.cancel_scope.cancel()
            if not finished:
                return False
            await self._send(h11.EndOfMessage())
            return True
        finally:
            await _aclose_chunks(chunks, self.server.clock)

    async def _pump(self, chunks: AsyncIterator[bytes]) -> bool:
        """Send every chunk as it comes; False if the stream ended abnormally (the producer
        failed, or the client went away), in which case the connection must close without the
        terminating chunk, so the client sees a truncated stream rather than a complete one."""
        try:
            async for chunk in chunks:
                if chunk:
                    await self._send(h11.Data(data=chunk))
        except _ClientGone:
            self.client_gone = True
            return False
        except Exception:
            logger.exception("response stream to %s failed", self.remote)
            return False
        return True

    async def _watch_for_disconnect(self, stream_scope: trio.CancelScope) -> None:
        """Read while a stream is sent: end of file (or a broken connection) cancels it. Bytes
        that arrive meanwhile (a pipelined request) are kept for h11, up to one head's worth."""
        while self.buffered <= MAX_HEADER_BYTES:
            try:
                data = await self.stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self.client_gone = True
                stream_scope.cancel()
                return
            self.buffered += len(data)
            self.protocol.receive_data(bytes(data))
        await trio.sleep_forever()

    async def _refuse_malformed(self, exc: h11.RemoteProtocolError) -> None:
        """Answer a request h11 could not parse (400, or 431 for an oversized head) if no
        response has begun, and let the connection close."""
        if self.protocol.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        status = exc.error_status_hint
        message = f"malformed HTTP request: {exc}"
        error = (
            errors.bad_request(message)
            if status == 400
            else APIError(status, HTTPStatus(status).phrase.replace(" ", ""), message)
        )
        try:
            await self._send_response(_error_response(error), head_only=False, close=True)
        except (_ClientGone, h11.LocalProtocolError):
            self.client_gone = True
