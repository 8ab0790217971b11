"""What the HTTP layer hands to the API handlers and what it takes back.

The HTTP layer (:mod:`raftkube.apiserver.http`) parses bytes into a :class:`Request` (body read
whole, within a size limit) and writes a :class:`Response` or a :class:`StreamingResponse` back;
it knows nothing of Kubernetes. The handlers know nothing of bytes on a socket. A watch or a
followed log is a :class:`StreamingResponse`: its chunks are sent with chunked transfer encoding
and flushed one by one, so a watcher sees each event as it happens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import attrs


@attrs.frozen
class Request:
    """One HTTP request. ``headers`` has lower-case names; repeated headers are joined with
    ``", "``. ``query`` maps each parameter to every value it was given, in order.
    ``peer_certificate`` is the DER of the client certificate the TLS handshake verified against
    the cluster CA, or None (plain HTTP, or no certificate offered)."""

    method: str
    path: str
    query: Mapping[str, tuple[str, ...]]
    headers: Mapping[str, str]
    body: bytes = b""
    peer_certificate: bytes | None = None
    remote: str = ""

    def param(self, name: str, default: str = "") -> str:
        """The last value of query parameter ``name`` (as Go's ``url.Values.Get`` gives the
        first; Kubernetes clients never repeat these), or ``default``."""
        values = self.query.get(name)
        return values[-1] if values else default


@attrs.frozen
class Response:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@attrs.frozen
class StreamingResponse:
    """A response sent as it is produced; the HTTP layer closes ``chunks`` (``aclose``) if the
    client goes away, so the producer's ``finally`` blocks run."""

    status: int
    headers: tuple[tuple[str, str], ...]
    chunks: AsyncIterator[bytes]


Handler = Callable[[Request], Awaitable[Response | StreamingResponse]]
