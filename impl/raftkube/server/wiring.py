"""Wiring a :class:`Member` to the real world: a data directory, TCP peers and a client port."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import attrs
import trio

from raftkube.clock import TrioClock
from raftkube.net.streams import Network
from raftkube.net.transport import PeerAddress, TcpTransport, TlsConfig, TransportConfig
from raftkube.server.cluster_members import MemberAttributes
from raftkube.server.member import Member, MemberConfig
from raftkube.server.service import serve_clients
from raftkube.server.sync_thread import SyncThread
from raftkube.storage import RaftLogStore


@attrs.define(eq=False)
class RunningMember:
    member: Member
    transport: TcpTransport
    peer_address: PeerAddress
    client_address: tuple[str, int]

    @property
    def client_endpoint(self) -> str:
        host, port = self.client_address
        return f"{host}:{port}"

    def add_peer(
        self,
        peer_id: int,
        peer_address: PeerAddress,
        client_endpoint: str | None,
        name: str = "",
    ) -> None:
        """Tell this member where ``peer_id`` listens for Raft traffic and for clients (what
        ``member list`` shows for it until the cluster's member table says otherwise)."""
        if peer_id != self.member.id:
            self.transport.add_peer(peer_id, peer_address)
        if client_endpoint is not None:
            self.member.client_endpoints[peer_id] = client_endpoint
        scheme = "http" if self.transport.config.tls is None else "https"
        peer_url = f"{scheme}://{peer_address.host}:{peer_address.port}"
        clients = () if client_endpoint is None else (client_endpoint,)
        self.member.reconfig.seed(MemberAttributes(peer_id, name, (peer_url,), clients))


@asynccontextmanager
async def open_member(
    config: MemberConfig,
    data_dir: Path | str,
    *,
    host: str = "127.0.0.1",
    peer_port: int = 0,
    client_port: int = 0,
    client_ssl_context: ssl.SSLContext | None = None,
    peer_tls: TlsConfig | None = None,
    network: Network | None = None,
) -> AsyncIterator[RunningMember]:
    """Recover ``data_dir`` and run the member (peer transport, Raft driver, client listener)
    for the body of the ``async with``. Leaving it stops every task and closes the storage.

    ``client_ssl_context`` makes the client listener TLS-only and ``peer_tls`` does the same for
    Raft traffic (see :mod:`raftkube.tls`); they are separate because clients and peers are
    usually trusted differently. ``network`` (TCP by default) is where the peer transport's
    and the client listener's connections come from."""
    storage = RaftLogStore(data_dir)
    clock = TrioClock()
    transport = TcpTransport(
        TransportConfig(
            member_id=config.member_id,
            cluster_id=config.cluster_id,
            listen_host=host,
            listen_port=peer_port,
            tls=peer_tls,
        ),
        clock=clock,
        network=network,
    )
    try:
        # The member's fsyncs run in this thread; it stops only after every task has (no sync
        # is then in flight), and before the storage closes.
        with SyncThread() as sync_thread:
            member = Member(
                config,
                storage=storage,
                transport=transport,
                clock=clock,
                run_sync=sync_thread.run_sync,
                # Encoding a snapshot image is pure computation on a detached view; if the
                # member stops meanwhile, the thread may finish on its own.
                run_encode=partial(trio.to_thread.run_sync, abandon_on_cancel=True),
            )
            async with trio.open_nursery() as nursery:
                peer_address = await nursery.start(transport.run)
                await nursery.start(member.run)
                client_address = await nursery.start(
                    partial(serve_clients, ssl_context=client_ssl_context, network=network),
                    member,
                    host,
                    client_port,
                )
                running = RunningMember(member, transport, peer_address, client_address)
                running.add_peer(config.member_id, peer_address, running.client_endpoint)
                try:
                    yield running
                finally:
                    nursery.cancel_scope.cancel()
    finally:
        storage.close()
