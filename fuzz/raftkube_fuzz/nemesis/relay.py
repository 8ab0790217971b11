"""TCP relays between members: the nemesis's network, which it can cut and heal without root.

Every Raft connection between two members is one-way (the dialer only sends, see
:mod:`raftkube.net.transport`), so the nemesis gives each member its own view of ``--peers``:
its own real address, and for every other member ``j`` the port of a relay that forwards to
``j``. The relay for the ordered pair (``i``, ``j``) then carries exactly the messages ``i``
sends ``j``, and cutting it is a one-way partition; cutting both relays of a pair separates
the two members.

A cut *stalls* the relay rather than dropping or resetting anything: bytes already read wait,
nothing more is read, and a connection made during the cut is accepted but not forwarded
until the heal. That is what a packet-dropping firewall does to TCP (the peers see silence,
the kernels' buffers fill, the sender's bounded queue drops, and whatever was in flight
arrives late after the heal), and it keeps each byte stream intact: dropping bytes out of the
middle of a stream would test the framing, not Raft.

Clients reach the members through relays too (one per member, never cut), so that the
nemesis can reset every client connection of a member at once (:meth:`Relay.reset`): the
fault that makes a client retry a write whose answer it lost.
"""

from __future__ import annotations

import attrs
import trio


@attrs.define(eq=False)
class Relay:
    """Forwards connections made to ``listen_port`` to ``target_port``, both on ``host``;
    :meth:`cut` stalls them, :meth:`heal` lets them go on."""

    source: int
    """The member that dials through this relay (-1: the clients)."""
    dest: int
    """The member it reaches."""
    listen_port: int
    target_port: int
    host: str = "127.0.0.1"
    _flowing: trio.Event = attrs.Factory(trio.Event)
    _open: set[trio.CancelScope] = attrs.Factory(set)
    connections: int = 0
    """Connections accepted so far (a relay nobody dialled would test nothing)."""

    def __attrs_post_init__(self) -> None:
        self._flowing.set()

    @property
    def is_cut(self) -> bool:
        return not self._flowing.is_set()

    def cut(self) -> None:
        if not self.is_cut:
            self._flowing = trio.Event()

    def heal(self) -> None:
        self._flowing.set()

    def reset(self) -> int:
        """Close every connection through the relay at both ends, as a middlebox's RST would
        (new connections are forwarded as usual); returns how many were closed."""
        scopes = list(self._open)
        for scope in scopes:
            scope.cancel()
        return len(scopes)

    async def _wait_flowing(self) -> None:
        # A cut after a heal replaces the event, so wait on whichever is current.
        while self.is_cut:
            await self._flowing.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and forward until cancelled; reports started once it is listening."""
        listeners = await trio.open_tcp_listeners(self.listen_port, host=self.host)
        task_status.started()
        await trio.serve_listeners(self._forward, listeners)

    async def _forward(self, inbound: trio.SocketStream) -> None:
        self.connections += 1
        with trio.CancelScope() as scope:
            self._open.add(scope)
            try:
                await self._connect(inbound)
            finally:
                self._open.discard(scope)

    async def _connect(self, inbound: trio.SocketStream) -> None:
        async with inbound:
            await self._wait_flowing()
            try:
                outbound = await trio.open_tcp_stream(self.host, self.target_port)
            except OSError:
                # The member behind the relay is down: close, so the dialer sees the
                # connection fail as it would have without the relay.
                return
            async with outbound, trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, inbound, outbound, nursery.cancel_scope)
                nursery.start_soon(self._pump, outbound, inbound, nursery.cancel_scope)

    async def _pump(
        self, src: trio.SocketStream, dst: trio.SocketStream, both: trio.CancelScope
    ) -> None:
        """Copy ``src`` to ``dst`` while the relay flows; when either end closes, close both
        (the transport watches for end of file to notice a dead peer)."""
        try:
            while True:
                await self._wait_flowing()
                data = await src.receive_some(65536)
                if not data:
                    break
                await self._wait_flowing()
                await dst.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        both.cancel()
