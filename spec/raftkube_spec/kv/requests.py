"""What a client can ask of the KV and lease services.

Field names and defaults follow etcd's ``etcdserverpb`` messages so a checker
can translate real client calls one-to-one. Options the model does not cover
(sort order, min/max revision filters, serializable reads, ``physical``
compaction) are left out rather than silently ignored.
"""

from __future__ import annotations

import enum

import attrs


@attrs.frozen
class RangeRequest:
    """Read ``[key, range_end)`` at ``revision`` (``<= 0``: the current revision)."""

    key: bytes
    range_end: bytes = b""
    limit: int = 0
    revision: int = 0
    keys_only: bool = False
    count_only: bool = False


@attrs.frozen
class PutRequest:
    key: bytes
    value: bytes = b""
    lease: int = 0
    prev_kv: bool = False
    ignore_value: bool = False
    ignore_lease: bool = False


@attrs.frozen
class DeleteRangeRequest:
    key: bytes
    range_end: bytes = b""
    prev_kv: bool = False


class CompareTarget(enum.Enum):
    VERSION = "VERSION"
    CREATE = "CREATE"
    MOD = "MOD"
    VALUE = "VALUE"
    LEASE = "LEASE"


class CompareResult(enum.Enum):
    EQUAL = "EQUAL"
    GREATER = "GREATER"
    LESS = "LESS"
    NOT_EQUAL = "NOT_EQUAL"


@attrs.frozen
class Compare:
    """A guard of a Txn: ``<target of every key in range> <result> value``.

    ``value`` is bytes for a VALUE target and an int otherwise; a value of the
    wrong kind behaves like etcd's unset oneof, i.e. as ``b""`` or ``0``.
    """

    key: bytes
    target: CompareTarget
    result: CompareResult
    value: int | bytes
    range_end: bytes = b""


@attrs.frozen
class TxnRequest:
    compare: tuple[Compare, ...] = ()
    success: tuple[RequestOp, ...] = ()
    failure: tuple[RequestOp, ...] = ()


@attrs.frozen
class CompactionRequest:
    revision: int


@attrs.frozen
class LeaseGrantRequest:
    """Create lease ``id``; the leader picked the id and the clock reading before logging."""

    id: int
    ttl: int
    now_ms: int


@attrs.frozen
class LeaseRevokeRequest:
    id: int


@attrs.frozen
class LeaseKeepAliveRequest:
    id: int
    now_ms: int


@attrs.frozen
class LeaseTimeToLiveRequest:
    id: int
    now_ms: int
    keys: bool = False


RequestOp = RangeRequest | PutRequest | DeleteRangeRequest | TxnRequest
"""What may appear in a Txn branch."""

Request = (
    RangeRequest
    | PutRequest
    | DeleteRangeRequest
    | TxnRequest
    | CompactionRequest
    | LeaseGrantRequest
    | LeaseRevokeRequest
    | LeaseKeepAliveRequest
    | LeaseTimeToLiveRequest
)
"""Everything :func:`raftkube_spec.kv.apply` accepts."""
