"""How Raft messages travel between members.

The Raft driver sees only :class:`Transport`: a non-blocking :meth:`~Transport.send` and a
stream of incoming messages, which :meth:`~Transport.serve` hands to a synchronous callback.
Raft is designed for a network that loses, delays and reorders messages, so the transport
promises none of that and in return never blocks the driver: a slow or dead peer costs a
bounded queue of memory, not a stalled leader. The deterministic simulator in ``fuzz/``
implements the same protocol over its virtual network.

:class:`TcpTransport` is the real implementation:

* **One outgoing connection per peer**, owned by its own task and fed by a bounded queue of
  already-encoded frames. When the queue is full, :meth:`~TcpTransport.send` drops the message
  and returns ``False`` (as etcd does), so one stuck peer never delays messages to the others.
  The task batches whatever is queued into one write (a large snapshot: :mod:`.chunks`).
* **Reconnect with capped exponential backoff and jitter.** Jitter comes from an injected
  :class:`RandomSource` and sleeping from an injected :class:`~raftkube.clock.Clock`, so tests
  and simulations can make reconnection deterministic. A connection that closes resets the
  backoff; only failed attempts grow it.
* **Connections are one-way.** The dialer only sends Raft messages and the acceptor only
  receives them; the dialer watches its side for EOF so it notices a dead peer at once.
* **A hello handshake.** The dialer's first frame names the protocol version, cluster id, its
  member id and the member it meant to reach; the acceptor answers *welcome* or *reject* with
  a reason. Members of different clusters (a mis-pointed address, a reused host) refuse each
  other instead of corrupting each other's logs. Messages on an accepted connection must then
  come from the member that said hello and be addressed to us.
* **Any stream network.** Connections are dialled and accepted through a
  :class:`~raftkube.net.streams.Network` (TCP by default), like every other component's.
* **Optional TLS** for every peer connection, with client-certificate verification if the
  server context requires it (``verify_mode = ssl.CERT_REQUIRED``).
* **Structured concurrency.** Everything runs inside :meth:`TcpTransport.run` (for a nursery
  the caller owns) or :func:`open_tcp_transport` (``async with``); :meth:`TcpTransport.close`
  cancels every task and closes every connection.

Bad input from a peer (garbage frames, undecodable messages, failed handshakes) is logged and
costs at most that connection; it never propagates into the member.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

import attrs
import trio

from raftkube.clock import Clock, TrioClock, fail_after, sleep_for
from raftkube.net import chunks
from raftkube.net.codec import CodecError, decode, encode
from raftkube.net.framing import FrameReader, send_frame
from raftkube.net.handshake import (
    HELLO,
    HELLO_MAX_FRAME_SIZE,
    PROTOCOL_VERSION,
    REJECT,
    WELCOME,
    Hello,
    decode_hello,
    expect,
    pack,
    unpack_handshake,
)
from raftkube.net.streams import Listener, Network, TcpNetwork, TlsListener, bound_address
from raftkube.net.transport_api import (
    BackoffPolicy,
    HandshakeError,
    PeerAddress,
    ProtocolError,
    TlsConfig,
    Transport,
    TransportClosedError,
    TransportConfig,
    TransportStats,
    UnknownPeerError,
)
from raftkube.randomness import RandomSource
from raftkube_spec.raft.messages import Message
from raftkube_spec.raft.types import ServerId

__all__ = [
    "BackoffPolicy",
    "HandshakeError",
    "PeerAddress",
    "ProtocolError",
    "RandomSource",
    "TcpTransport",
    "TlsConfig",
    "Transport",
    "TransportClosedError",
    "TransportConfig",
    "TransportStats",
    "UnknownPeerError",
    "open_tcp_transport",
]

logger = logging.getLogger(__name__)


def _explain(exc: BaseException) -> str:
    """A one-line account of ``exc``, looking through the exception groups nurseries raise."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


@attrs.define(eq=False)
class _PeerLink:
    """One peer's outgoing queue and the cancel scope of the task that drains it."""

    peer_id: ServerId
    address: PeerAddress
    queue_in: trio.MemorySendChannel[bytes]
    queue_out: trio.MemoryReceiveChannel[bytes]
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    started: bool = False
    connected: bool = False


class _PeerDisconnected(Exception):
    """The far end of an outgoing connection closed it (or sent data it never should)."""


class TcpTransport:
    """The :class:`Transport` over TCP (optionally TLS) between cluster members.

    Construct it, then run it with ``await nursery.start(transport.run)`` or use
    :func:`open_tcp_transport`. Peers can be given up front or added and removed at any time
    (membership changes); messages sent to a peer before the transport runs wait in its queue.
    """

    def __init__(
        self,
        config: TransportConfig,
        *,
        peers: Mapping[ServerId, PeerAddress] | None = None,
        clock: Clock | None = None,
        rng: RandomSource | None = None,
        network: Network | None = None,
    ) -> None:
        self.config = config
        self.stats = TransportStats()
        self._network: Network = network if network is not None else TcpNetwork()
        """Where peer connections come from (TCP unless a caller brings its own)."""
        self._clock: Clock = clock if clock is not None else TrioClock()
        self._rng: RandomSource = rng if rng is not None else random.Random()
        self._links: dict[ServerId, _PeerLink] = {}
        self._inbound_in, self._inbound_out = trio.open_memory_channel[Message](
            config.inbound_capacity
        )
        self._nursery: trio.Nursery | None = None
        self._listen_address: PeerAddress | None = None
        self._ran = False
        self._closed = False
        for peer_id, address in (peers or {}).items():
            self.add_peer(peer_id, address)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def member_id(self) -> ServerId:
        """This member's id, as announced in every hello."""
        return self.config.member_id

    @property
    def listen_address(self) -> PeerAddress:
        """The address actually bound (with the real port when ``listen_port`` was 0)."""
        if self._listen_address is None:
            raise RuntimeError("the transport is not listening yet")
        return self._listen_address

    async def run(
        self, *, task_status: trio.TaskStatus[PeerAddress] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen and run every peer connection until :meth:`close` (or cancellation).

        Reports the bound address through ``task_status`` once accepting connections, so
        ``await nursery.start(transport.run)`` returns it. Can run only once.
        """
        if self._ran or self._closed:
            raise RuntimeError("a TcpTransport can run only once")
        self._ran = True
        try:
            async with trio.open_nursery() as nursery:
                listeners = await self._network.open_listeners(
                    self.config.listen_host, self.config.listen_port
                )
                host, port = bound_address(listeners[0])
                self._listen_address = PeerAddress(host, port)
                served: list[Listener] = list(listeners)
                if self.config.tls is not None:
                    # The handshake runs in the connection's task, under its timeout.
                    ctx = self.config.tls.server_context
                    served = [TlsListener(li, ctx) for li in listeners]
                self._nursery = nursery
                await nursery.start(trio.serve_listeners, self._handle_inbound, served)
                for link in self._links.values():
                    self._start_link(link)
                logger.info("member %d listening on %s:%d", self.member_id, host, port)
                task_status.started(self._listen_address)
        finally:
            self._nursery = None
            self._shutdown_channels()

    def close(self) -> None:
        """Stop everything: cancels all tasks and connections; :meth:`receive` then raises
        :class:`TransportClosedError` once queued messages are drained. Idempotent."""
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
        else:
            self._shutdown_channels()

    def _shutdown_channels(self) -> None:
        self._closed = True
        self._inbound_in.close()
        for link in self._links.values():
            link.queue_in.close()
            link.scope.cancel()

    # -- peers ----------------------------------------------------------------------------

    def add_peer(self, peer_id: ServerId, address: PeerAddress) -> None:
        """Start sending to ``peer_id`` at ``address``; replaces (and drops the queue of) an
        existing peer of that id if the address differs."""
        if peer_id == self.member_id:
            raise ValueError(f"member {peer_id} cannot be its own peer")
        existing = self._links.get(peer_id)
        if existing is not None:
            if existing.address == address:
                return
            self.remove_peer(peer_id)
        queue_in, queue_out = trio.open_memory_channel[bytes](self.config.queue_capacity)
        link = _PeerLink(peer_id, address, queue_in, queue_out)
        if self._closed:
            queue_in.close()
        self._links[peer_id] = link
        self._start_link(link)

    def remove_peer(self, peer_id: ServerId) -> None:
        """Stop sending to ``peer_id``: its connection is closed and its queue discarded.
        Incoming connections from it are unaffected (Raft may still hear from a removed peer)."""
        link = self._links.pop(peer_id, None)
        if link is None:
            raise UnknownPeerError(f"member {peer_id} is not a peer of member {self.member_id}")
        link.queue_in.close()
        link.scope.cancel()

    def peer_ids(self) -> frozenset[ServerId]:
        """The members this transport can send to."""
        return frozenset(self._links)

    def is_connected(self, peer_id: ServerId) -> bool:
        """Whether the outgoing connection to ``peer_id`` is currently up (for monitoring)."""
        link = self._links.get(peer_id)
        return link is not None and link.connected

    def _start_link(self, link: _PeerLink) -> None:
        if self._nursery is not None and not link.started:
            link.started = True
            self._nursery.start_soon(self._run_link, link, name=f"raft-peer-{link.peer_id}")

    # -- sending --------------------------------------------------------------------------

    def send(self, peer_id: ServerId, message: Message) -> bool:
        """Encode ``message`` and queue it for ``peer_id``; never blocks.

        Raises :class:`ValueError` if ``peer_id`` is not ``message.dest``,
        :class:`UnknownPeerError` for a peer never added, and
        :class:`~raftkube.net.codec.CodecError` or
        :class:`~raftkube.net.framing.FrameTooLargeError` if the message cannot be sent at
        all: those are bugs in the caller, reported where they happen. Returns ``False`` when
        the message is dropped (queue full, or the transport is closed).
        """
        if message.dest != peer_id:
            raise ValueError(f"message for member {message.dest} sent to peer {peer_id}")
        link = self._links.get(peer_id)
        if link is None:
            raise UnknownPeerError(f"member {peer_id} is not a peer of member {self.member_id}")
        frames = chunks.frames_of(message, encode(message), self.config.max_frame_size)
        try:
            if not chunks.enqueue(link.queue_in, frames):  # all of a snapshot, or none
                self.stats.dropped_overflow += 1
                return False
        except trio.ClosedResourceError:
            return False
        return True

    async def _run_link(self, link: _PeerLink) -> None:
        """Keep a connection to one peer up and drain its queue into it, until cancelled."""
        attempt = 0
        with link.scope:
            while True:
                try:
                    stream = await self._dial(link)
                except Exception as exc:
                    self.stats.connect_failures += 1
                    level = logging.WARNING if isinstance(exc, HandshakeError) else logging.DEBUG
                    logger.log(
                        level,
                        "member %d: cannot reach peer %d at %s:%d: %s",
                        self.member_id,
                        link.peer_id,
                        link.address.host,
                        link.address.port,
                        _explain(exc),
                    )
                else:
                    attempt = 0
                    self.stats.connections_established += 1
                    link.connected = True
                    try:
                        await self._pump(link, stream)
                    except Exception as exc:
                        logger.info(
                            "member %d: connection to peer %d lost: %s",
                            self.member_id,
                            link.peer_id,
                            _explain(exc),
                        )
                    finally:
                        link.connected = False
                        await trio.aclose_forcefully(stream)
                await sleep_for(self._clock, self.config.backoff.delay(attempt, self._rng))
                attempt += 1

    async def _dial(self, link: _PeerLink) -> trio.abc.Stream:
        """Connect, (TLS-)handshake and exchange hellos, all under the configured timeouts."""
        address = link.address
        with fail_after(self._clock, self.config.connect_timeout):
            tcp = await self._network.open_stream(address.host, address.port)
        stream: trio.abc.Stream = tcp
        try:
            with fail_after(self._clock, self.config.handshake_timeout):
                tls = self.config.tls
                if tls is not None:
                    ssl_stream = trio.SSLStream(
                        tcp,
                        tls.client_context,
                        server_hostname=address.tls_server_name or address.host,
                    )
                    stream = ssl_stream
                    await ssl_stream.do_handshake()
                hello = [
                    HELLO,
                    PROTOCOL_VERSION,
                    self.config.cluster_id,
                    self.member_id,
                    link.peer_id,
                ]
                await send_frame(stream, pack(hello), HELLO_MAX_FRAME_SIZE)
                reader = FrameReader(stream, HELLO_MAX_FRAME_SIZE)
                reply = unpack_handshake(await reader.receive_frame(), "hello reply")
            if reply[0] == REJECT and len(reply) == 2:
                raise HandshakeError(f"peer {link.peer_id} refused us: {reply[1]}")
            if reply[0] != WELCOME or len(reply) != 4:
                raise HandshakeError(f"unexpected hello reply {reply[0]!r}")
            cluster = expect(reply[2], str, "welcome cluster id")
            member = expect(reply[3], int, "welcome member id")
            if cluster != self.config.cluster_id or member != link.peer_id:
                raise HandshakeError(
                    f"expected member {link.peer_id} of cluster {self.config.cluster_id!r}, "
                    f"reached member {member} of cluster {cluster!r}"
                )
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        return stream

    async def _pump(self, link: _PeerLink, stream: trio.abc.Stream) -> None:
        """Write queued frames to ``stream``, batching backlog into single writes, until the
        connection fails or the far end closes it."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_for_close, stream)
            limit = self.config.max_batch_bytes
            while True:
                try:
                    frame = await link.queue_out.receive()
                except trio.EndOfChannel:
                    nursery.cancel_scope.cancel()  # peer removed or transport closing
                    return
                batch = [frame]
                size = len(frame)
                while size < limit:
                    try:
                        frame = link.queue_out.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    batch.append(frame)
                    size += len(frame)
                await stream.send_all(batch[0] if len(batch) == 1 else b"".join(batch))
                self.stats.sent += len(batch)

    async def _watch_for_close(self, stream: trio.abc.Stream) -> None:
        """The acceptor never writes after its welcome, so any read completing means the
        connection is over; raising tears down the pump so the link redials promptly."""
        data = await stream.receive_some(4096)
        if data:
            raise _PeerDisconnected("peer sent unexpected data on a send-only connection")
        raise _PeerDisconnected("peer closed the connection")

    # -- receiving ------------------------------------------------------------------------

    async def _handle_inbound(self, stream: trio.abc.Stream) -> None:
        """Serve one accepted connection; contains every failure to that connection."""
        try:
            await self._serve_inbound(stream)
        except Exception as exc:
            logger.info("member %d: incoming connection dropped: %s", self.member_id, _explain(exc))
        finally:
            await trio.aclose_forcefully(stream)

    def _check_hello(self, hello: Hello) -> str | None:
        """Why ``hello`` must be refused, or ``None`` to accept it."""
        if hello.version != PROTOCOL_VERSION:
            return f"protocol version {hello.version} is not {PROTOCOL_VERSION}"
        if hello.cluster_id != self.config.cluster_id:
            return (
                f"cluster id {hello.cluster_id!r} does not match this member's "
                f"{self.config.cluster_id!r}"
            )
        if hello.target_id != self.member_id:
            return f"this is member {self.member_id}, not {hello.target_id}"
        if hello.member_id == self.member_id:
            return f"a peer claims this member's own id {self.member_id}"
        return None

    async def _serve_inbound(self, stream: trio.abc.Stream) -> None:
        reader = FrameReader(stream, HELLO_MAX_FRAME_SIZE)
        try:
            with fail_after(self._clock, self.config.handshake_timeout):
                if isinstance(stream, trio.SSLStream):
                    await stream.do_handshake()
                hello = decode_hello(await reader.receive_frame())
                refusal = self._check_hello(hello)
                if refusal is not None:
                    await send_frame(stream, pack([REJECT, refusal]), HELLO_MAX_FRAME_SIZE)
                    raise HandshakeError(f"refused member {hello.member_id}: {refusal}")
                welcome = [WELCOME, PROTOCOL_VERSION, self.config.cluster_id, self.member_id]
                await send_frame(stream, pack(welcome), HELLO_MAX_FRAME_SIZE)
        except Exception:
            self.stats.connections_refused += 1
            raise
        self.stats.connections_accepted += 1
        reader.max_frame_size = self.config.max_frame_size
        joiner = chunks.Joiner()
        async for frame in reader:
            try:
                if (payload := joiner.whole(frame)) is None:
                    continue
                message = decode(payload)
            except CodecError as exc:
                # Framing is intact, so skip just this message: a newer peer may speak a
                # message type we do not know yet.
                self.stats.decode_errors += 1
                logger.warning(
                    "member %d: undecodable message from member %d: %s",
                    self.member_id,
                    hello.member_id,
                    exc,
                )
                continue
            if message.source != hello.member_id or message.dest != self.member_id:
                raise ProtocolError(
                    f"member {hello.member_id} sent a message from {message.source} "
                    f"to {message.dest}"
                )
            try:
                self._inbound_in.send_nowait(message)
            except trio.WouldBlock:
                self.stats.dropped_inbound += 1
            except trio.ClosedResourceError:
                return
            else:
                self.stats.received += 1

    async def receive(self) -> Message:
        """The next incoming message (from any peer)."""
        try:
            return await self._inbound_out.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise TransportClosedError("the transport is closed") from None

    def __aiter__(self) -> TcpTransport:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.receive()
        except TransportClosedError:
            raise StopAsyncIteration from None

    async def serve(self, deliver: Callable[[Message], None]) -> None:
        """Deliver from the calling task. Messages arrive on one task per inbound
        connection; the inbound channel between those tasks and this one is what makes an
        exception in ``deliver`` end this call, as the protocol says, rather than a
        connection's task."""
        async for message in self:
            deliver(message)


@asynccontextmanager
async def open_tcp_transport(
    config: TransportConfig,
    *,
    peers: Mapping[ServerId, PeerAddress] | None = None,
    clock: Clock | None = None,
    rng: RandomSource | None = None,
    network: Network | None = None,
) -> AsyncIterator[TcpTransport]:
    """Run a :class:`TcpTransport` for the body of an ``async with``; it is listening on entry
    and fully stopped (no tasks, no sockets) on exit."""
    transport = TcpTransport(config, peers=peers, clock=clock, rng=rng, network=network)
    async with trio.open_nursery() as nursery:
        await nursery.start(transport.run)
        try:
            yield transport
        finally:
            transport.close()
