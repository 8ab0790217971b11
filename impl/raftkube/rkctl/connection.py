"""Global flags turned into a connected client: endpoints, timeouts and TLS.

Kept apart from the commands so every command dials the cluster the same way, and so the
full response header (cluster id, member id, raft term), which etcdctl's JSON output shows
but the typed client methods drop, is available to all of them.
"""

from __future__ import annotations

import math
import os
import re
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs

from raftkube.api import wire
from raftkube.client import Client
from raftkube.rkctl.errors import CommandError, UsageError
from raftkube_spec.kv.requests import Request
from raftkube_spec.kv.responses import Response

DEFAULT_ENDPOINT = "127.0.0.1:2379"
ENDPOINTS_ENV = "RKCTL_ENDPOINTS"
RETRY_DELAY = 0.1
"""Seconds between the client's attempts; with ``--dial-timeout`` it bounds the attempts."""

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration (``2s``, ``500ms``, ``1m30s``) or a bare number of seconds.

    etcdctl's ``--dial-timeout``/``--command-timeout`` take Go durations, so existing scripts
    pass values like ``5s``; a bare number is accepted too because it is unambiguous."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pos, total = 0, 0.0
        for match in _DURATION.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise UsageError(f"invalid duration {text!r}") from None
        value = total
    if value <= 0:
        raise UsageError(f"invalid duration {text!r}: must be positive")
    return value


def split_endpoints(text: str) -> list[str]:
    """``host:port`` endpoints from a comma-separated list; URL schemes are dropped.

    etcdctl users habitually write ``http://127.0.0.1:2379``; the raftkube client wants
    ``host:port``, so the scheme and any trailing slash are stripped."""
    out = []
    for raw in text.split(","):
        ep = raw.strip()
        for scheme in ("http://", "https://", "unix://", "unixs://"):
            if ep.startswith(scheme):
                ep = ep[len(scheme) :]
        ep = ep.rstrip("/")
        if ep:
            out.append(ep)
    if not out:
        raise UsageError("no endpoints given")
    return out


def default_endpoints() -> str:
    """``$RKCTL_ENDPOINTS`` or the local default, as etcdctl reads ``$ETCDCTL_ENDPOINTS``."""
    return os.environ.get(ENDPOINTS_ENV) or DEFAULT_ENDPOINT


def build_ssl_context(
    cert: str | None,
    key: str | None,
    cacert: str | None,
    insecure_skip_verify: bool = False,
) -> ssl.SSLContext | None:
    """A client TLS context from etcdctl's ``--cert --key --cacert``; ``None`` for plain TCP.

    Any one of the flags turns TLS on (like etcdctl); ``--cacert`` replaces the system trust
    store rather than adding to it, because a cluster CA is normally private."""
    if not (cert or key or cacert or insecure_skip_verify):
        return None
    if bool(cert) != bool(key):
        raise UsageError("--cert and --key must be given together")
    try:
        ctx = ssl.create_default_context(cafile=cacert) if cacert else ssl.create_default_context()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert and key:
            ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise CommandError(f"cannot load TLS files: {exc}") from None
    if insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


@attrs.frozen
class Settings:
    """The global flags every command shares."""

    endpoints: tuple[str, ...]
    dial_timeout: float = 2.0
    command_timeout: float = 5.0
    write_out: str = "simple"
    hex: bool = False
    ssl_context: ssl.SSLContext | None = None

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`Client`.

        The attempts are bounded by ``--dial-timeout`` so an unreachable cluster fails in
        about that long; ``ssl_context`` is only passed when TLS is on, so plain TCP works
        with clients that predate the TLS option."""
        kwargs: dict[str, Any] = {
            "attempts": max(3, math.ceil(self.dial_timeout / RETRY_DELAY)),
            "retry_delay": RETRY_DELAY,
            "request_timeout": self.command_timeout,
        }
        if self.ssl_context is not None:
            kwargs["ssl_context"] = self.ssl_context
        return kwargs

    @asynccontextmanager
    async def client(self, endpoints: Sequence[str] | None = None) -> AsyncIterator[Client]:
        """A client of ``endpoints`` (default: ``--endpoints``)."""
        async with Client(list(endpoints or self.endpoints), **self.client_kwargs()) as client:
            yield client


async def request(
    client: Client,
    req: Request,
    *,
    serializable: bool = False,
    on_part: Callable[[], None] | None = None,
) -> tuple[wire.WireHeader, Response]:
    """Send ``req`` and keep the full header, which ``Client.request`` reduces to a revision.
    ``on_part`` hears of each part of an answer split over several frames."""
    op = wire.request_op(req)
    body = wire.encode_request(req)
    if serializable:
        body["serializable"] = True
    msg = await client.call(op, body, on_part=on_part)
    header = wire.decode_header(msg["header"])
    return header, wire.decode_response(op, msg["body"], header.revision)
