"""Length-prefixed frames over a byte stream.

TCP (and TLS over it) delivers a byte stream, not messages: one ``receive_some`` may return
half a message or three and a half. Every frame on a peer connection is therefore a 4-byte
big-endian unsigned payload length followed by exactly that many payload bytes.

The length is checked against a maximum *before* anything is buffered, so a corrupt or hostile
peer announcing a 4 GiB frame costs us four bytes, not four gigabytes. The sender checks the same
limit, so an oversized message is reported where it was produced rather than as a dropped
connection at the receiver.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import trio

HEADER = struct.Struct(">I")
HEADER_SIZE = HEADER.size
DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024
"""Large enough for a big snapshot chunk or append batch; small enough to bound memory."""

_ABSOLUTE_MAX = 0xFFFF_FFFF  # what a 4-byte length can express
_RECEIVE_CHUNK = 64 * 1024


class FrameError(Exception):
    """The byte stream does not hold well-formed frames (e.g. it ended inside one)."""


class FrameTooLargeError(FrameError):
    """A frame longer than the configured maximum, on either the sending or receiving side."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the maximum frame size of {limit} bytes")
        self.size = size
        self.limit = limit


def _check_limit(limit: int) -> None:
    if not 0 < limit <= _ABSOLUTE_MAX:
        raise ValueError(f"max_frame_size must be in 1..{_ABSOLUTE_MAX}, got {limit}")


def encode_frame(payload: bytes, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """``payload`` with its length header, ready for ``send_all``.

    Exposed separately from :func:`send_frame` so a sender can join several frames into one
    write (one syscall, one TLS record) when it has a backlog.
    """
    _check_limit(max_frame_size)
    if len(payload) > max_frame_size:
        raise FrameTooLargeError(len(payload), max_frame_size)
    return HEADER.pack(len(payload)) + payload


def encode_frames(payloads: Iterable[bytes], max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> bytes:
    """Several frames back to back, as one buffer."""
    return b"".join(encode_frame(p, max_frame_size) for p in payloads)


async def send_frame(
    stream: trio.abc.SendStream, payload: bytes, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
) -> None:
    """Write one frame to ``stream``; raises :class:`FrameTooLargeError` before writing anything
    if ``payload`` is over the limit."""
    await stream.send_all(encode_frame(payload, max_frame_size))


class FrameSplitter:
    """Whole frames out of bytes fed as they arrive, without a stream: for a reader that does
    its own non-blocking reads (:mod:`raftkube.net.poller`). Same limits as
    :class:`FrameReader`."""

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        _check_limit(max_frame_size)
        self._max = max_frame_size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The frames ``data`` completes, in order; raises :class:`FrameTooLargeError` as soon
        as a header announces an oversized frame."""
        buf = self._buffer
        buf += data
        frames: list[bytes] = []
        offset = 0
        while len(buf) - offset >= HEADER_SIZE:
            (size,) = HEADER.unpack_from(buf, offset)
            if size > self._max:
                raise FrameTooLargeError(size, self._max)
            end = offset + HEADER_SIZE + size
            if len(buf) < end:
                break
            frames.append(bytes(buf[offset + HEADER_SIZE : end]))
            offset = end
        if offset:
            del buf[:offset]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of a frame not yet complete."""
        return len(self._buffer)


class FrameReader:
    """Reads whole frames from a stream, however the bytes happen to arrive.

    Bytes received beyond the current frame stay buffered for the next call. The buffer is
    consumed by moving an offset and compacted only before the next read, so draining many
    small frames from one large read stays linear.
    """

    def __init__(
        self,
        stream: trio.abc.ReceiveStream,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        receive_chunk: int = _RECEIVE_CHUNK,
    ) -> None:
        _check_limit(max_frame_size)
        if receive_chunk < 1:
            raise ValueError(f"receive_chunk must be positive, got {receive_chunk}")
        self._stream = stream
        self._max = max_frame_size
        self._chunk = receive_chunk
        self._buffer = bytearray()
        self._offset = 0

    @property
    def max_frame_size(self) -> int:
        """The largest payload this reader accepts.

        Settable so a connection can read its handshake under a small limit and then raise it
        for the authenticated peer, without losing bytes already buffered.
        """
        return self._max

    @max_frame_size.setter
    def max_frame_size(self, limit: int) -> None:
        _check_limit(limit)
        self._max = limit

    def _available(self) -> int:
        return len(self._buffer) - self._offset

    async def _fill(self, needed: int) -> bool:
        """Read until ``needed`` unconsumed bytes are buffered; False if the stream ended first."""
        if self._offset:
            del self._buffer[: self._offset]
            self._offset = 0
        while len(self._buffer) < needed:
            data = await self._stream.receive_some(max(self._chunk, needed - len(self._buffer)))
            if not data:
                return False
            self._buffer += data
        return True

    async def receive_frame(self) -> bytes | None:
        """The next frame's payload, or ``None`` if the stream ended cleanly between frames.

        Raises :class:`FrameTooLargeError` as soon as a header announces an oversized frame and
        :class:`FrameError` if the stream ends inside a frame. After either error the stream's
        position is unknown, so the connection must be closed.
        """
        if self._available() < HEADER_SIZE and not await self._fill(HEADER_SIZE):
            if self._available():
                raise FrameError(
                    f"stream ended inside a frame header ({self._available()} of "
                    f"{HEADER_SIZE} bytes)"
                )
            return None
        (size,) = HEADER.unpack_from(self._buffer, self._offset)
        if size > self._max:
            raise FrameTooLargeError(size, self._max)
        total = HEADER_SIZE + size
        if self._available() < total and not await self._fill(total):
            raise FrameError(
                f"stream ended inside a frame: {self._available() - HEADER_SIZE} of {size} "
                "payload bytes received"
            )
        start = self._offset + HEADER_SIZE
        payload = bytes(self._buffer[start : start + size])
        self._offset = start + size
        return payload

    def __aiter__(self) -> FrameReader:
        return self

    async def __anext__(self) -> bytes:
        frame = await self.receive_frame()
        if frame is None:
            raise StopAsyncIteration
        return frame
