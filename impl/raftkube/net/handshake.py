"""The hello exchange that opens every peer connection, and its wire format.

The dialer's first frame names the protocol version, cluster id, its member id and the member
it meant to reach; the acceptor answers *welcome* (with its own cluster id and member id) or
*reject* with a reason. Frames are msgpack arrays tagged by their first element, limited to
:data:`HELLO_MAX_FRAME_SIZE` so an unauthenticated client cannot make a member buffer much.
Anything malformed is a :class:`~raftkube.net.transport_api.HandshakeError` naming what was
wrong.
"""

from __future__ import annotations

from typing import Any, Final

import attrs
import msgpack  # type: ignore[import-untyped]

from raftkube.net.transport_api import HandshakeError
from raftkube_spec.raft.types import ServerId

PROTOCOL_VERSION: Final = 1
"""Bumped on any incompatible change of the handshake or the message codec."""

HELLO_MAX_FRAME_SIZE: Final = 4096
"""Limit for handshake frames, so an unauthenticated client cannot make us buffer much."""

HELLO: Final = "raftkube-hello"
WELCOME: Final = "raftkube-welcome"
REJECT: Final = "raftkube-reject"


@attrs.frozen
class Hello:
    """The dialer's first frame, decoded."""

    version: int
    cluster_id: str
    member_id: ServerId
    target_id: ServerId


def expect(value: object, kind: type, what: str) -> Any:
    if type(value) is not kind:
        raise HandshakeError(f"{what}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def unpack_handshake(frame: bytes | None, what: str) -> list[Any]:
    if frame is None:
        raise HandshakeError(f"connection closed before the {what}")
    try:
        raw = msgpack.unpackb(frame, raw=False, use_list=True)
    except Exception as exc:
        raise HandshakeError(f"{what} is not valid msgpack: {type(exc).__name__}") from None
    if type(raw) is not list or not raw or type(raw[0]) is not str:
        raise HandshakeError(f"{what} is not a tagged array")
    return raw


def decode_hello(frame: bytes | None) -> Hello:
    raw = unpack_handshake(frame, "hello")
    if raw[0] != HELLO or len(raw) != 5:
        raise HandshakeError(f"expected a 5-field {HELLO!r} frame, got {raw[0]!r}/{len(raw)}")
    return Hello(
        version=expect(raw[1], int, "hello version"),
        cluster_id=expect(raw[2], str, "hello cluster id"),
        member_id=expect(raw[3], int, "hello member id"),
        target_id=expect(raw[4], int, "hello target id"),
    )


def pack(obj: list[Any]) -> bytes:
    """A handshake frame's payload."""
    return bytes(msgpack.packb(obj, use_bin_type=True))
