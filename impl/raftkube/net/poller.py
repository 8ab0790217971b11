"""Many plain TCP connections read by one task.

Each client connection of a member had its own reading task. Over a connection with one
request in flight (``raftkube bench put --conns 64 --clients 64``) that task waited once per
request: Trio re-arms its one-shot epoll registration (an ``epoll_ctl``), parks the task, and
switches back to it when the request arrives, one wake per request per connection
(docs/performance.md, "Writes per connection").

A :class:`ReadPoller` keeps its own epoll set with a level-triggered registration per
connection, made once, and one task waits for that set to become readable (one Trio wait for
all of them) and calls each ready connection's handler, synchronously, in one turn: the
handler reads what is there without blocking and acts on it. A handler reads at most one
chunk per turn and readiness is level-triggered, so a connection that keeps its socket full
gets one read per turn like every other, and the task yields between turns.

Linux only (``select.epoll``) and plain sockets only: the member falls back to a reading task
per connection elsewhere, for TLS and for the simulator's streams.
"""

from __future__ import annotations

import contextlib
import select
from collections.abc import Callable

import trio

MAX_EVENTS = 256
"""Ready connections handled per turn; the rest stay ready for the next turn."""


class ReadPoller:
    """Registered descriptors' handlers, called when the descriptor is readable (or hung up);
    :meth:`run` must run for them to be called. Raises what a handler raises."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._handlers: dict[int, Callable[[], None]] = {}

    @staticmethod
    def available() -> bool:
        return hasattr(select, "epoll")

    def register(self, fd: int, handler: Callable[[], None]) -> None:
        self._epoll.register(fd, select.EPOLLIN | select.EPOLLRDHUP)
        self._handlers[fd] = handler

    def unregister(self, fd: int) -> None:
        """Forget ``fd``: call it before the descriptor is closed (a closed one may be reused
        by the next connection at once)."""
        if self._handlers.pop(fd, None) is not None:
            # Already closed (OSError, or ValueError for the closed set): nothing to drop.
            with contextlib.suppress(OSError, ValueError):
                self._epoll.unregister(fd)

    async def run(self) -> None:
        try:
            while True:
                await trio.lowlevel.wait_readable(self._epoll)
                for fd, _events in self._epoll.poll(0, MAX_EVENTS):
                    # A handler may have unregistered a later one in this same turn.
                    handler = self._handlers.get(fd)
                    if handler is not None:
                        handler()
        finally:
            self._handlers.clear()
            self._epoll.close()


_SHARED: trio.lowlevel.RunVar[ReadPoller] = trio.lowlevel.RunVar("raftkube_read_poller")


def shared_poller() -> ReadPoller:
    """The Trio run's own poller, for connections that belong to no common nursery (a
    client's): run by a system task started on first use, which ends with the run. A system
    task must never raise (that would crash the run), so its handlers must not either."""
    try:
        return _SHARED.get()
    except LookupError:
        poller = ReadPoller()
        _SHARED.set(poller)
        trio.lowlevel.spawn_system_task(poller.run, name="raftkube read poller")
        return poller
