"""A watch: one long response of line-delimited JSON events, read as ``(type, object)``.

The server writes each event as one JSON document followed by a newline
(``{"type": "ADDED", "object": {...}}``), flushed as one chunk of a chunked response. The
iterator yields every event, ``ERROR`` ones included (their object is a ``Status``, such as the
410 that tells a reflector to relist), and stops when the server ends the response. A
connection that breaks mid-stream also just ends it, as client-go's ``StreamWatcher`` treats an
unexpected end of file: the caller re-watches from the last resourceVersion it saw either way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import trio

from raftkube.clock import fail_after
from raftkube.kubeclient.errors import KubeAPIError, KubeConnectionError
from raftkube.kubeclient.pool import Connection

if TYPE_CHECKING:
    from raftkube.kubeclient.client import KubeClient, QueryValue

MAX_EVENT_BYTES = 64 * 1024 * 1024
"""A line longer than this is not an event of any object the API server stores."""


class Watch:
    """An open watch; see the module docstring. Use ``async with`` so the connection is closed
    when the caller stops early; iterating to the end releases it too."""

    def __init__(self, client: KubeClient, path: str, query: Mapping[str, QueryValue]) -> None:
        self._client = client
        self._path = path
        self._query = query
        self._conn: Connection | None = None
        self._buffer = bytearray()
        self._done = False

    async def __aenter__(self) -> Watch:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Send the request; raises :class:`KubeAPIError` if the server refuses the watch."""
        if self._conn is not None or self._done:
            return
        client = self._client
        conn, status, headers = await client.open("GET", self._path, query=self._query)
        if 200 <= status < 300:
            self._conn = conn
            return
        self._done = True
        try:
            with fail_after(client.clock, client.timeout):
                body = await conn.receive_body()
        except (trio.TooSlowError, KubeConnectionError):
            body = b""
            await client.pool.release(conn, reusable=False)
        else:
            await client.pool.release(conn, reusable=True)
        raise KubeAPIError.from_response(status, body, headers.get("content-type", ""))

    async def aclose(self) -> None:
        """Stop watching; the connection is closed, since the server still streams on it."""
        self._done = True
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._client.pool.release(conn, reusable=False)

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> tuple[str, dict[str, Any]]:
        await self.start()
        while True:
            line = self._next_line()
            if line is not None:
                if line.strip():
                    return self._parse(line)
                continue
            if self._conn is None:
                raise StopAsyncIteration
            try:
                data = await self._conn.receive_data()
            except KubeConnectionError:
                # Whatever is buffered is a truncated event: drop it with the connection.
                self._buffer.clear()
                await self.aclose()
                raise StopAsyncIteration from None
            if data is None:
                conn, self._conn = self._conn, None
                await self._client.pool.release(conn, reusable=True)
                self._done = True
                if self._buffer.strip():
                    # A last event without its newline is still a whole JSON document.
                    line, self._buffer = bytes(self._buffer), bytearray()
                    return self._parse(line)
                raise StopAsyncIteration
            self._buffer += data
            if len(self._buffer) > MAX_EVENT_BYTES:
                await self.aclose()
                raise KubeConnectionError(f"a watch event over {MAX_EVENT_BYTES} bytes")

    def _next_line(self) -> bytes | None:
        end = self._buffer.find(b"\n")
        if end < 0:
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line

    @staticmethod
    def _parse(line: bytes) -> tuple[str, dict[str, Any]]:
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise KubeConnectionError(f"malformed watch event: {exc}") from None
        if (
            not isinstance(event, dict)
            or not isinstance(event.get("type"), str)
            or not isinstance(event.get("object"), dict)
        ):
            raise KubeConnectionError(f"malformed watch event: {line[:200]!r}")
        return event["type"], event["object"]
