"""The client service's connection: answers are queued, never raised out of the sender."""

from __future__ import annotations

from typing import Any, cast

import trio

from raftkube.server import service
from raftkube.server.member import Member


def test_an_answer_too_large_to_frame_drops_its_connection_not_the_caller() -> None:
    """Write answers are sent from the member's apply path: a frame over the limit must cost
    the client its connection, not raise into the member."""
    conn = service._Connection(cast(Member, None), trio.CancelScope())
    conn.send({"id": 1, "ok": True, "body": {"v": b"x" * 8}})
    assert len(conn.outbox) == 1
    huge: dict[str, Any] = {"id": 2, "ok": True, "body": {"v": b"x" * (service.MAX_FRAME + 1)}}
    conn.send(huge)
    assert conn.closed and conn.scope.cancel_called
    assert len(conn.outbox) == 1
    conn.send({"id": 3, "ok": True, "body": {}})  # Closed: dropped quietly.
    assert len(conn.outbox) == 1
