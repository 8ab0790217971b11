"""Talking to a running example cluster from a test: a plain HTTP GET of a Service's page."""

from __future__ import annotations

import trio


async def http_get(host: str, port: int) -> bytes:
    """One plain HTTP/1.0 GET of ``/`` (the body and headers as one byte string)."""
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        await stream.send_all(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n")
        answer = b""
        while chunk := await stream.receive_some(65536):
            answer += chunk
    return answer
