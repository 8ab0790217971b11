"""RawSocketStream: a plain TCP stream read and written without Trio's pass per call, which
must still behave as a Trio stream: whole sends, EOF, closing, fairness."""

from __future__ import annotations

from collections.abc import Awaitable

import pytest
import trio
import trio.testing

from raftkube.net.rawstream import CALLS_PER_CHECKPOINT, RawSocketStream, fast_stream


async def _pair() -> tuple[RawSocketStream, RawSocketStream]:
    a, b = trio.socket.socketpair()
    return RawSocketStream(trio.SocketStream(a)), RawSocketStream(trio.SocketStream(b))


@pytest.mark.trio
async def test_a_large_send_arrives_whole_while_the_peer_reads() -> None:
    a, b = await _pair()
    payload = bytes(range(256)) * 16384  # 4 MiB: far over the socket buffer, so sends wait
    received = bytearray()

    async def read() -> None:
        while len(received) < len(payload):
            received.extend(await b.receive_some(65536))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await a.send_all(payload)
    assert bytes(received) == payload
    await a.aclose()
    assert await b.receive_some(100) == b""  # EOF once the other side closed
    await b.aclose()


@pytest.mark.trio
async def test_closing_wakes_a_blocked_reader_and_frees_the_descriptor() -> None:
    a, b = await _pair()
    fd = b._stream.socket.fileno()
    failure: list[BaseException] = []

    async def read() -> None:
        try:
            await b.receive_some(100)
        except (trio.ClosedResourceError, trio.BrokenResourceError) as exc:
            failure.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await trio.testing.wait_all_tasks_blocked()
        await b.aclose()
    assert failure, "the reader was not woken by the close"
    assert b._stream.socket.fileno() == -1 and fd >= 0
    await a.aclose()


@pytest.mark.trio
async def test_a_reader_with_data_always_ready_still_yields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = await _pair()
    await a.send_all(b"x" * (4 * CALLS_PER_CHECKPOINT))
    yields = 0
    checkpoint = trio.lowlevel.checkpoint

    async def counted() -> None:
        nonlocal yields
        yields += 1
        await checkpoint()

    # Which task runs first after a yield is Trio's random choice; count the yields instead.
    monkeypatch.setattr(trio.lowlevel, "checkpoint", counted)
    for _ in range(2 * CALLS_PER_CHECKPOINT):
        assert await b.receive_some(1) == b"x"
    assert yields == 2
    await a.aclose()
    await b.aclose()


def test_only_plain_socket_streams_are_wrapped() -> None:
    left, _right = trio.testing.memory_stream_pair()
    assert fast_stream(left) is left


class _CountingSocket:
    """The stream's socket, counting ``recv`` calls."""

    def __init__(self, sock: object) -> None:
        self._inner = sock
        self.recvs = 0

    def recv(self, size: int) -> bytes:
        self.recvs += 1
        return self._inner.recv(size)  # type: ignore[attr-defined, no-any-return]

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


@pytest.mark.trio
async def test_after_a_read_that_emptied_the_buffer_the_next_waits_before_reading() -> None:
    """A request-answer connection's next read would fail with EAGAIN: it is not tried."""
    a, b = await _pair()
    counting = _CountingSocket(b._sock)
    b._sock = counting  # type: ignore[assignment]
    await a.send_all(b"12345")
    assert await b.receive_some(100) == b"12345"  # short: the kernel had no more
    assert counting.recvs == 1
    got: list[bytes] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: _append(got, b.receive_some(100)))
        await trio.testing.wait_all_tasks_blocked()
        assert counting.recvs == 1, "a read was tried on a buffer known to be empty"
        await a.send_all(b"678")
    assert got == [b"678"] and counting.recvs == 2
    # A read that filled its request may have left bytes behind: the next one reads first.
    await a.send_all(b"abcdef")
    assert await b.receive_some(3) == b"abc"
    assert await b.receive_some(3) == b"def"
    assert counting.recvs == 4
    b._sock = counting._inner  # type: ignore[assignment]
    await a.aclose()
    await b.aclose()


async def _append(into: list[bytes], receiving: Awaitable[bytes]) -> None:
    into.append(await receiving)
