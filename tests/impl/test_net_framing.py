"""Length-prefixed framing: frames survive any split of the byte stream; oversize is refused."""

from __future__ import annotations

import itertools
import re

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from raftkube.net.framing import (
    HEADER,
    FrameError,
    FrameReader,
    FrameTooLargeError,
    encode_frame,
    encode_frames,
    send_frame,
)


class ScriptedStream(trio.abc.ReceiveStream):
    """Returns exactly the given chunks, one per ``receive_some``, then EOF; records the
    ``max_bytes`` asked for so tests can see the reader never over-reads an oversized frame."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.asked: list[int | None] = []

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        self.asked.append(max_bytes)
        if not self.chunks:
            return b""
        chunk = self.chunks.pop(0)
        if max_bytes is not None and len(chunk) > max_bytes:
            self.chunks.insert(0, chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        return chunk

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


async def read_all(reader: FrameReader) -> list[bytes]:
    return [frame async for frame in reader]


@settings(max_examples=200)
@given(
    st.lists(st.binary(max_size=300), max_size=8),
    st.lists(st.integers(0, 10_000), max_size=30),
    st.integers(1, 64),
)
def test_frames_survive_any_split_of_the_stream(
    payloads: list[bytes], cuts: list[int], chunk: int
) -> None:
    stream = ScriptedStream(split(encode_frames(payloads), cuts))
    got = trio.run(read_all, FrameReader(stream, receive_chunk=chunk))
    assert got == payloads


@pytest.mark.trio
async def test_one_byte_at_a_time_over_a_memory_stream() -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    payloads = [b"", b"a", b"hello" * 100, bytes(range(256))]
    data = encode_frames(payloads)

    async def trickle() -> None:
        for i in range(len(data)):
            await send.send_all(data[i : i + 1])
            await trio.testing.wait_all_tasks_blocked()
        await send.aclose()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trickle)
            assert await read_all(FrameReader(receive)) == payloads


@pytest.mark.trio
async def test_send_frame_over_a_lockstep_stream() -> None:
    # A lockstep stream has no buffer at all: every send waits for a matching receive.
    left, right = trio.testing.lockstep_stream_pair()
    reader = FrameReader(right, receive_chunk=3)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:

            async def sender() -> None:
                await send_frame(left, b"first frame")
                await send_frame(left, b"")

            nursery.start_soon(sender)
            assert await reader.receive_frame() == b"first frame"
            assert await reader.receive_frame() == b""


@pytest.mark.trio
async def test_clean_end_of_stream_between_frames_is_none() -> None:
    reader = FrameReader(ScriptedStream([encode_frame(b"x")]))
    assert await reader.receive_frame() == b"x"
    assert await reader.receive_frame() is None


@pytest.mark.trio
@pytest.mark.parametrize(
    ("chunks", "complaint"),
    [
        ([b"\x00\x00"], "inside a frame header (2 of 4 bytes)"),
        ([HEADER.pack(10), b"abc"], "3 of 10 payload bytes"),
        ([encode_frame(b"ok") + HEADER.pack(1)], "0 of 1 payload bytes"),
    ],
)
async def test_end_of_stream_inside_a_frame_is_an_error(
    chunks: list[bytes], complaint: str
) -> None:
    reader = FrameReader(ScriptedStream(chunks))
    with pytest.raises(FrameError, match=re.escape(complaint)):
        while await reader.receive_frame() is not None:
            pass


@pytest.mark.trio
async def test_oversized_frame_is_refused_from_its_header_alone() -> None:
    stream = ScriptedStream([HEADER.pack(1001), b"x" * 1001])
    reader = FrameReader(stream, max_frame_size=1000, receive_chunk=4)
    with pytest.raises(FrameTooLargeError) as info:
        await reader.receive_frame()
    assert "frame of 1001 bytes exceeds the maximum frame size of 1000 bytes" in str(info.value)
    assert (info.value.size, info.value.limit) == (1001, 1000)
    assert stream.chunks == [b"x" * 1001], "the payload of a refused frame must not be read"
    assert stream.asked == [4]


@pytest.mark.trio
async def test_frame_at_the_limit_is_accepted() -> None:
    reader = FrameReader(ScriptedStream([encode_frame(b"y" * 1000)]), max_frame_size=1000)
    assert await reader.receive_frame() == b"y" * 1000


@pytest.mark.trio
async def test_sender_refuses_oversized_frames_without_writing() -> None:
    send = trio.testing.MemorySendStream()
    with pytest.raises(FrameTooLargeError):
        await send_frame(send, b"z" * 11, max_frame_size=10)
    with pytest.raises(FrameTooLargeError):
        encode_frame(b"z" * 11, max_frame_size=10)
    await send_frame(send, b"z" * 10, max_frame_size=10)
    assert send.get_data_nowait() == HEADER.pack(10) + b"z" * 10


@pytest.mark.trio
async def test_limit_can_be_raised_after_a_handshake_without_losing_buffered_bytes() -> None:
    data = encode_frame(b"hello") + encode_frame(b"big" * 100)
    reader = FrameReader(ScriptedStream([data]), max_frame_size=16)
    assert await reader.receive_frame() == b"hello"
    reader.max_frame_size = 1000
    assert await reader.receive_frame() == b"big" * 100


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_frame_size"):
        FrameReader(ScriptedStream([]), max_frame_size=0)
    with pytest.raises(ValueError, match="max_frame_size"):
        encode_frame(b"", max_frame_size=2**32)
    with pytest.raises(ValueError, match="receive_chunk"):
        FrameReader(ScriptedStream([]), receive_chunk=0)
