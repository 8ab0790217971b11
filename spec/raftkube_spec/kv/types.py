"""The data a client sees: key-value records, watch events and response headers.

These mirror etcd's ``mvccpb.KeyValue``, ``mvccpb.Event`` and
``etcdserverpb.ResponseHeader`` field for field, minus cluster bookkeeping
(cluster id, member id, raft term) that the KV semantics never depend on.
"""

from __future__ import annotations

import enum

import attrs


@attrs.frozen
class KeyValue:
    """One revision of one key.

    A deletion is stored in the same shape, the way etcd stores and reports it:
    only ``key`` and ``mod_revision`` are set and ``version`` is 0, which no
    live record can have. That makes the stored tombstone and the ``kv`` of a
    DELETE watch event the very same value.
    """

    key: bytes
    create_revision: int = 0
    mod_revision: int = 0
    version: int = 0
    value: bytes = b""
    lease: int = 0

    @property
    def is_tombstone(self) -> bool:
        return self.version == 0


class EventType(enum.Enum):
    PUT = "PUT"
    DELETE = "DELETE"


@attrs.frozen
class Event:
    """One change a watcher is told about; ``prev_kv`` only when the watch asked for it."""

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None = None


@attrs.frozen
class ResponseHeader:
    """The store revision a response reflects; the only header field KV semantics fix."""

    revision: int
