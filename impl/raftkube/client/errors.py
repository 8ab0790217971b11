"""What the client raises, and what a watch hands out."""

from __future__ import annotations

from collections.abc import AsyncIterator

from raftkube_spec.kv.errors import KVError
from raftkube_spec.kv.types import Event


class ClientError(Exception):
    """The cluster refused a request; ``code`` is the protocol's error code."""

    def __init__(self, code: str, message: str, leader: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.leader = leader


class IndeterminateError(ClientError):
    """A write failed after an attempt that may have been applied: it may or may not have
    taken effect (etcd's "context deadline exceeded" on a put). ``code`` is the last
    failure's."""


class WatchCompactedError(ClientError):
    """A watch's start revision (or where it had to resume) was compacted away:
    ``compact_revision`` is the oldest revision it could watch from."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__("compacted", f"compacted at {compact_revision}")
        self.compact_revision = compact_revision


class WatchEvents:
    """The events of one watch, ``async for event in events``; ``start_revision`` is the first
    revision it covers (for a watch from "now", the revision after the member's at creation)."""

    def __init__(self, start_revision: int, events: AsyncIterator[Event]) -> None:
        self.start_revision = start_revision
        self._events = events

    def __aiter__(self) -> WatchEvents:
        return self

    async def __anext__(self) -> Event:
        return await self._events.__anext__()


class KVRequestError(ClientError):
    """The state machine rejected the request; ``error`` is the KV error value."""

    def __init__(self, error: KVError) -> None:
        super().__init__(error.code.name, error.message)
        self.error = error
