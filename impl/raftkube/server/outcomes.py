"""What a request to a member ends with, and the object that carries it there.

A write or a read handed to a :class:`~raftkube.server.member.Member` ends with the state
machine's answer or a :class:`MemberError`; a :class:`Waiter` carries that outcome from the
part of the member that produces it (the apply step, the read queue, a timeout, a fence) to
the client waiting for it. Kept apart from the member so the proposal queue, the read queue
and the ready pipeline share these types without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import trio

from raftkube.clock import Clock, move_on_after
from raftkube.server.entries import DecodedEntry
from raftkube_spec.kv.responses import Result


class MemberError(Exception):
    """A request the member could not serve; ``code`` is the protocol's error code."""

    def __init__(self, code: str, message: str, leader: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.leader = leader


def not_leader(leader: int | None) -> MemberError:
    """The refusal of a request only the leader serves; names the leader if one is known."""
    return MemberError("not_leader", "etcdserver: not leader", leader=leader)


WriteOutcome = Result | MemberError
"""What :meth:`Member.submit` reports: the state machine's answer or why there is none."""


@attrs.define(eq=False)
class Waiter:
    """One request's outcome. A task awaits it (:meth:`wait`), or ``on_done`` is called
    with it: the client service answers writes from that callback, which spares a Trio task,
    a cancel scope and an event per request; such a waiter times out on the tick loop at
    ``deadline`` instead."""

    result: Result | None = None
    index: int = 0
    error: MemberError | None = None
    registered: int | None = None
    on_done: Callable[[Waiter], None] | None = None
    deadline: float = 0.0
    proposed: tuple[bytes, DecodedEntry] | None = None
    """The entry value this member proposed and what it decodes to, so that applying it
    here skips decoding the value again (when the committed value is that same object)."""
    finished: bool = False
    _event: trio.Event | None = None

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if self._event is not None:
            self._event.set()
        if self.on_done is not None:
            self.on_done(self)

    async def wait(self) -> None:
        """Return once finished; a checkpoint either way, as ``trio.Event.wait`` is."""
        if self.finished:
            await trio.lowlevel.checkpoint()
            return
        self._event = trio.Event()
        await self._event.wait()


async def wait_for(w: Waiter, clock: Clock, timeout: float, cleanup: Callable[[], Any]) -> None:
    """Wait (at most ``timeout`` on ``clock``) for ``w``; raise its error, or ``timeout``
    after calling ``cleanup`` (which forgets the waiter wherever it was registered)."""
    with move_on_after(clock, timeout) as scope:
        await w.wait()
    if scope.cancelled_caught:
        cleanup()
        raise MemberError("timeout", "etcdserver: request timed out")
    if w.error is not None:
        raise w.error


def result_of(w: Waiter) -> Result:
    assert w.result is not None
    return w.result
