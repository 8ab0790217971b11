"""One task reading many connections: FrameSplitter cuts frames out of any split of the
bytes, and ReadPoller calls each readable connection's handler, once per turn, until it is
unregistered."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from raftkube.net.framing import FrameSplitter, FrameTooLargeError, encode_frame
from raftkube.net.poller import ReadPoller


@given(
    st.lists(st.binary(max_size=40), max_size=6),
    st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=10),
)
@settings(max_examples=60)
def test_frames_come_out_whole_and_in_order_however_the_bytes_are_split(
    payloads: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(encode_frame(p) for p in payloads)
    splitter = FrameSplitter()
    out: list[bytes] = []
    at = 0
    for n in cuts * (len(data) + 1):
        if at >= len(data):
            break
        out.extend(splitter.feed(data[at : at + n]))
        at += n
    assert out == payloads and splitter.pending == 0


def test_an_oversized_frame_is_refused_by_its_header() -> None:
    splitter = FrameSplitter(max_frame_size=10)
    assert splitter.feed(encode_frame(b"ok")) == [b"ok"]
    with pytest.raises(FrameTooLargeError):
        splitter.feed(encode_frame(b"x" * 11)[:4])


@pytest.mark.trio
async def test_each_readable_connection_is_read_by_the_one_task_until_unregistered() -> None:
    poller = ReadPoller()
    pairs = [socket.socketpair() for _ in range(3)]
    for a, b in pairs:
        a.setblocking(False)
        b.setblocking(False)
    got: dict[int, list[bytes]] = {n: [] for n in range(3)}

    def reader(n: int, sock: socket.socket) -> Callable[[], None]:
        def on_readable() -> None:
            got[n].append(sock.recv(4))  # at most 4 bytes a turn: the rest stays ready

        return on_readable

    async with trio.open_nursery() as nursery:
        nursery.start_soon(poller.run)
        for n, (_, b) in enumerate(pairs):
            poller.register(b.fileno(), reader(n, b))
        pairs[0][0].send(b"abcdefgh")
        pairs[2][0].send(b"xy")
        await trio.testing.wait_all_tasks_blocked()
        assert got == {0: [b"abcd", b"efgh"], 1: [], 2: [b"xy"]}
        poller.unregister(pairs[2][1].fileno())
        pairs[2][0].send(b"late")
        pairs[1][0].send(b"1")
        await trio.testing.wait_all_tasks_blocked()
        assert got == {0: [b"abcd", b"efgh"], 1: [b"1"], 2: [b"xy"]}
        nursery.cancel_scope.cancel()
    for a, b in pairs:
        a.close()
        b.close()
