"""Outbox: a connection's queued frames go out whole and in order, sent by the run's one
flusher task when the socket takes them at once and by the connection's writer otherwise."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from raftkube.net.outbox import Outbox
from raftkube.net.rawstream import RawSocketStream


async def _pair() -> tuple[RawSocketStream, RawSocketStream]:
    a, b = trio.socket.socketpair()
    return RawSocketStream(trio.SocketStream(a)), RawSocketStream(trio.SocketStream(b))


async def _read_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    got = bytearray()
    while len(got) < size:
        data = await stream.receive_some(65536)
        assert data, "the stream ended early"
        got.extend(data)
    return bytes(got)


def _count_writer_sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = RawSocketStream.send_all

    async def counted(self: RawSocketStream, data: bytes | bytearray | memoryview) -> None:
        calls.append(len(data))
        await original(self, data)

    monkeypatch.setattr(RawSocketStream, "send_all", counted)
    return calls


@pytest.mark.trio
async def test_small_frames_of_several_connections_need_no_writer_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writer_sends = _count_writer_sends(monkeypatch)
    pairs = [await _pair() for _ in range(3)]
    boxes = [Outbox() for _ in pairs]
    async with trio.open_nursery() as nursery:
        for box, (a, _) in zip(boxes, pairs, strict=True):
            nursery.start_soon(box.run, a)
        await trio.testing.wait_all_tasks_blocked()
        flushed = [box.flushed for box in boxes]
        for n, box in enumerate(boxes):
            box.put(b"one-%d " % n)
            box.put(b"two-%d" % n)
        for n, (_, b) in enumerate(pairs):
            expected = b"one-%d two-%d" % (n, n)
            assert await _read_exactly(b, len(expected)) == expected
        for event in flushed:
            assert event.is_set()
        nursery.cancel_scope.cancel()
    assert writer_sends == []


@pytest.mark.trio
async def test_what_the_socket_does_not_take_at_once_the_writer_finishes_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writer_sends = _count_writer_sends(monkeypatch)
    a, b = await _pair()
    box = Outbox()
    big = bytes(range(256)) * 16384  # 4 MiB: far over the socket buffer
    async with trio.open_nursery() as nursery:
        nursery.start_soon(box.run, a)
        await trio.testing.wait_all_tasks_blocked()
        box.put(big)
        await trio.testing.wait_all_tasks_blocked()
        box.put(b"after")  # queued while the writer still owns the socket
        received = await _read_exactly(b, len(big) + 5)
        nursery.cancel_scope.cancel()
    assert received == big + b"after"
    assert writer_sends, "the writer never took over the part the socket refused"


@pytest.mark.trio
async def test_frames_queued_before_the_writer_starts_are_written() -> None:
    a, b = await _pair()
    box = Outbox()
    box.put(b"early")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(box.run, a)
        assert await _read_exactly(b, 5) == b"early"
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_stream_without_a_direct_send_is_written_by_its_writer() -> None:
    a, b = trio.testing.memory_stream_pair()
    box = Outbox()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(box.run, a)
        box.put(b"x")
        box.put(b"y")
        assert await _read_exactly(b, 2) == b"xy"
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_a_broken_connection_is_reported_by_its_writer() -> None:
    a, b = await _pair()
    box = Outbox()
    await b.aclose()
    failures: list[BaseException] = []

    async def write() -> None:
        try:
            await box.run(a)
        except trio.BrokenResourceError as exc:
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(write)
        await trio.testing.wait_all_tasks_blocked()
        box.put(b"to nobody")  # the direct send fails: the writer must meet it and raise
    assert failures
    await a.aclose()


@pytest.mark.trio
async def test_an_attached_outbox_starts_a_writer_only_while_the_socket_is_full() -> None:
    a, b = await _pair()
    box = Outbox()
    big = bytes(range(256)) * 16384  # 4 MiB: far over the socket buffer
    drains: list[int] = []
    async with trio.open_nursery() as nursery:

        def start_writer() -> None:
            drains.append(len(box))
            nursery.start_soon(box.drain)

        box.attach(a, start_writer)
        box.put(b"small")
        assert await _read_exactly(b, 5) == b"small"
        assert drains == []  # the flusher's direct send took it all
        box.put(big)
        await trio.testing.wait_all_tasks_blocked()
        box.put(b"after")  # queued while the drain still owns the socket
        received = await _read_exactly(b, len(big) + 5)
        assert received == big + b"after"
        await trio.testing.wait_all_tasks_blocked()
        assert len(drains) == 1  # one writer, for the part the socket refused
        box.put(b"direct again")
        assert await _read_exactly(b, 12) == b"direct again"
        assert len(drains) == 1
    await a.aclose()
    await b.aclose()


@pytest.mark.trio
async def test_an_attached_outbox_on_a_broken_connection_hands_the_failure_to_its_drain() -> None:
    a, b = await _pair()
    box = Outbox()
    await b.aclose()
    failures: list[BaseException] = []

    async def drain() -> None:
        try:
            await box.drain()
        except trio.BrokenResourceError as exc:
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        box.attach(a, lambda: nursery.start_soon(drain))
        box.put(b"to nobody")  # the direct send fails: the drain must meet it and raise
        await trio.testing.wait_all_tasks_blocked()
    assert failures
    await a.aclose()
    late = Outbox()
    late.attach(a, lambda: nursery.start_soon(drain))  # a nursery closed by now
    late.put(b"after its connection is gone")
    await trio.testing.wait_all_tasks_blocked()  # the flusher, the run's own task, carried on
