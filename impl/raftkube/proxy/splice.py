"""Copy bytes both ways between two streams, passing on half-closes.

When one side finishes sending (end of file), the other side is told so with ``send_eof``
and the opposite direction keeps flowing, so a client that shuts down its writing half still
gets the whole answer. Upstream's userspace proxier closes both connections as soon as either
direction ends; passing the half-close on is what a TCP relay owes a request/response protocol
that signals the end of the request that way. A stream that cannot half-close ends the whole
connection at its end of file, as upstream does. A broken or reset side ends both directions at
once.
"""

from __future__ import annotations

import trio

BUFFER_SIZE = 64 * 1024


async def splice(a: trio.abc.Stream, b: trio.abc.Stream) -> None:
    """Relay between ``a`` and ``b`` until both directions have ended or either side broke.
    Closing the streams is the caller's job."""
    async with trio.open_nursery() as nursery:

        async def one_way(src: trio.abc.Stream, dst: trio.abc.Stream) -> None:
            try:
                while data := await src.receive_some(BUFFER_SIZE):
                    await dst.send_all(data)
                if isinstance(dst, trio.abc.HalfCloseableStream):
                    await dst.send_eof()
                    return
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
            nursery.cancel_scope.cancel()

        nursery.start_soon(one_way, a, b)
        nursery.start_soon(one_way, b, a)
