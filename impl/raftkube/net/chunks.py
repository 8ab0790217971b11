"""A snapshot larger than one peer frame, sent as several chunk frames and joined on arrival.

A member's snapshot image grows with its store; past the peer frame limit (64 MiB) it could not
be sent at all, so a follower that fell behind a compacted log could never catch up. etcd
streams snapshots over their own connection; here the image's encoded message is cut into
pieces that each fit a frame, queued back to back on the peer's ordinary stream (so nothing
else interleaves with them: one sender task writes a link's frames in order), and the receiver
joins them before decoding the message as usual. Only an InstallSnapshot is ever chunked: any
other message over the limit is still a bug reported where it is sent.

A chunk frame's payload is the msgpack array ``[CHUNK_TAG, index, count, piece]``. Its tag is
not a message tag (the codec's tags are 1-6, and new ones are added upward from there), so a
receiver that does not know chunks skips each as an undecodable message. A receiver gathers one
sequence at a time per connection; a chunk out of sequence (a connection that broke in the
middle of a sequence resumes on a new one with its later chunks) drops what was gathered, and
the leader sends the snapshot again after its snapshot timeout.
"""

from __future__ import annotations

from typing import Any

import msgpack  # type: ignore[import-untyped]
import trio

from raftkube.net.codec import CodecError
from raftkube.net.framing import encode_frame
from raftkube_spec.raft.messages import InstallSnapshotRequest, Message

CHUNK_TAG = 100
_PREFIX = bytes((0x94, CHUNK_TAG))
"""How every chunk payload starts: a msgpack array of four, then the tag (a positive fixint)."""
OVERHEAD = 32
"""Bytes a chunk payload takes beyond its piece: the array, tag, two integers, a bin header."""
MAX_CHUNKS = 64
"""Chunks a sequence may have: with 64 MiB frames, a 4 GiB message (a bound on what a peer
may make this member buffer)."""


def split(payload: bytes, max_frame_size: int) -> list[bytes]:
    """``payload`` as framed chunks (headers included), in order, each within the limit."""
    room = max_frame_size - OVERHEAD
    if room <= 0:
        raise ValueError(f"max_frame_size {max_frame_size} leaves no room for a chunk")
    count = -(-len(payload) // room)
    if count > MAX_CHUNKS:
        raise CodecError(f"a message of {len(payload)} bytes needs more than {MAX_CHUNKS} chunks")
    view = memoryview(payload)
    frames = []
    for i in range(count):
        piece = view[i * room : (i + 1) * room]
        chunk = msgpack.packb([CHUNK_TAG, i, count, piece], use_bin_type=True)
        frames.append(encode_frame(chunk, max_frame_size))
    return frames


def frames_of(message: Message, payload: bytes, max_frame_size: int) -> list[bytes]:
    """The frames that carry ``message`` (encoded as ``payload``): one, or the chunks of an
    InstallSnapshot over the limit; :class:`FrameTooLargeError` for any other over it."""
    if len(payload) > max_frame_size and isinstance(message, InstallSnapshotRequest):
        return split(payload, max_frame_size)
    return [encode_frame(payload, max_frame_size)]


def enqueue(queue: trio.MemorySendChannel[bytes], frames: list[bytes]) -> bool:
    """Queue all of ``frames``, or none (False) if ``queue`` lacks room for them all: a part of
    a snapshot would only be dropped unread. ``trio.ClosedResourceError`` if it is closed."""
    stats = queue.statistics()
    if stats.current_buffer_used + len(frames) > stats.max_buffer_size:
        return False
    for frame in frames:
        queue.send_nowait(frame)
    return True


def is_chunk(payload: bytes) -> bool:
    return payload[:2] == _PREFIX


class Joiner:
    """Joins one connection's chunk sequences back into message payloads."""

    __slots__ = ("_count", "_pieces")

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._count = 0

    def whole(self, payload: bytes) -> bytes | None:
        """A message payload: ``payload`` itself unless it is a chunk, else :meth:`add`'s."""
        return self.add(payload) if is_chunk(payload) else payload

    def add(self, payload: bytes) -> bytes | None:
        """Take one chunk payload; the joined message payload once its last chunk arrived,
        else None. :class:`CodecError` for a malformed chunk (what was gathered is dropped)."""
        try:
            raw: Any = msgpack.unpackb(payload, raw=False, use_list=True)
        except Exception as exc:  # msgpack raises several unrelated types for bad input
            self._pieces = []
            raise CodecError(f"chunk: not valid msgpack: {type(exc).__name__}") from None
        if not (
            type(raw) is list
            and len(raw) == 4
            and type(raw[1]) is int
            and type(raw[2]) is int
            and type(raw[3]) is bytes
            and 0 <= raw[1] < raw[2] <= MAX_CHUNKS
        ):
            self._pieces = []
            raise CodecError("chunk: expected [tag, index < count <= 64, count, bytes]")
        _, index, count, piece = raw
        if index == 0:
            self._pieces, self._count = [piece], count
        elif index == len(self._pieces) and count == self._count:
            self._pieces.append(piece)
        else:
            self._pieces = []  # The rest of a sequence whose start this connection never saw.
            return None
        if len(self._pieces) < self._count:
            return None
        joined = b"".join(self._pieces)
        self._pieces = []
        return joined
