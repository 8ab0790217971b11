"""The Raft transport as its callers see it: the :class:`Transport` protocol the Raft driver
uses, its errors, and the addresses, settings and counters of the real implementation
(:class:`~raftkube.net.transport.TcpTransport`, whose module re-exports everything here).

Raft is designed for a network that loses, delays and reorders messages, so a transport
promises none of that and in return never blocks the driver (see :class:`Transport`). The
deterministic simulator in ``fuzz/`` implements the same protocol over its virtual network.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Protocol, runtime_checkable

import attrs

from raftkube.net.framing import DEFAULT_MAX_FRAME_SIZE
from raftkube.randomness import RandomSource
from raftkube_spec.raft.messages import Message
from raftkube_spec.raft.types import ServerId


class TransportClosedError(Exception):
    """The transport was closed: no more messages will arrive."""


class UnknownPeerError(LookupError):
    """A message for a member the transport has no address for (see ``add_peer``)."""


class HandshakeError(Exception):
    """The hello exchange failed: malformed, for another cluster or member, or refused."""


class ProtocolError(Exception):
    """A handshaken peer broke the connection's rules (e.g. forged the message source)."""


@runtime_checkable
class Transport(Protocol):
    """The network as the Raft driver sees it: lossy, unordered across peers, never blocking.

    Implementations must not block or await in :meth:`send`; they may drop any message.
    """

    def send(self, peer_id: ServerId, message: Message) -> bool:
        """Queue ``message`` for ``peer_id`` (which must equal ``message.dest``).

        Returns ``True`` if queued, ``False`` if dropped (queue full, transport closed).
        Queued is not delivered: Raft's retries, not the transport, provide reliability.
        """
        ...

    async def receive(self) -> Message:
        """The next incoming message; raises :class:`TransportClosedError` once closed."""
        ...

    def __aiter__(self) -> AsyncIterator[Message]:
        """Incoming messages until the transport closes."""
        ...

    async def serve(self, deliver: Callable[[Message], None]) -> None:
        """Call ``deliver`` with each incoming message until the transport closes, then
        return. ``deliver`` must not block. A transport may call it from whichever task or
        callback received the message (the driver steps its node there, which is safe in a
        single-threaded event loop), so delivering costs no task switch of its own; an
        exception out of ``deliver`` ends :meth:`serve` with that exception."""
        ...


@attrs.frozen
class PeerAddress:
    """Where a peer listens. ``tls_server_name`` is the name its certificate must carry; by
    default ``host``."""

    host: str
    port: int = attrs.field()
    tls_server_name: str | None = None

    @port.validator
    def _check_port(self, _: attrs.Attribute[int], value: int) -> None:
        if not 0 < value < 65536:
            raise ValueError(f"peer port must be in 1..65535, got {value}")


@attrs.frozen
class TlsConfig:
    """TLS for peer traffic: both directions or neither, since every member both dials and
    accepts. To require client certificates, set ``server_context.verify_mode`` to
    ``ssl.CERT_REQUIRED`` and load the CA that signs the members' certificates into it."""

    server_context: ssl.SSLContext
    client_context: ssl.SSLContext


@attrs.frozen
class BackoffPolicy:
    """Delay before reconnect attempt ``n`` (0-based): ``min(maximum, initial * multiplier**n)``,
    reduced by a random fraction of up to ``jitter`` so that members that lost a peer together
    do not all redial it in lockstep."""

    initial: float = attrs.field(default=0.05, validator=attrs.validators.gt(0))
    maximum: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    multiplier: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))
    jitter: float = attrs.field(
        default=0.5, validator=[attrs.validators.ge(0), attrs.validators.le(1)]
    )

    def delay(self, attempt: int, rng: RandomSource) -> float:
        """Seconds to wait before attempt ``attempt``."""
        exponent = min(attempt, 1000)
        try:
            base = self.initial * self.multiplier**exponent
        except OverflowError:
            base = math.inf
        base = min(self.maximum, base)
        return base * (1.0 - self.jitter * rng.random())


@attrs.frozen
class TransportConfig:
    """Static settings of one member's :class:`~raftkube.net.transport.TcpTransport`.

    ``listen_host`` must be a concrete address: with port 0 every bound interface would get a
    different ephemeral port.
    """

    member_id: ServerId
    cluster_id: str
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    tls: TlsConfig | None = None
    queue_capacity: int = attrs.field(default=1024, validator=attrs.validators.gt(0))
    inbound_capacity: int = attrs.field(default=4096, validator=attrs.validators.gt(0))
    max_frame_size: int = attrs.field(
        default=DEFAULT_MAX_FRAME_SIZE, validator=attrs.validators.gt(0)
    )
    max_batch_bytes: int = attrs.field(default=1024 * 1024, validator=attrs.validators.gt(0))
    connect_timeout: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    handshake_timeout: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    backoff: BackoffPolicy = BackoffPolicy()


@attrs.define
class TransportStats:
    """Counters for monitoring and tests. Only the transport's own tasks write them."""

    sent: int = 0
    """Messages written to a peer connection (not necessarily received)."""
    dropped_overflow: int = 0
    """Messages refused by :meth:`~raftkube.net.transport.TcpTransport.send` because the
    peer's queue was full."""
    received: int = 0
    """Messages delivered to the incoming queue."""
    dropped_inbound: int = 0
    """Received messages discarded because the incoming queue was full."""
    decode_errors: int = 0
    """Frames from handshaken peers that did not decode (skipped, connection kept)."""
    connections_established: int = 0
    """Outgoing connections that completed the handshake."""
    connect_failures: int = 0
    """Outgoing attempts that failed before or during the handshake."""
    connections_accepted: int = 0
    """Incoming connections that completed the handshake."""
    connections_refused: int = 0
    """Incoming connections rejected or broken before the handshake completed."""
