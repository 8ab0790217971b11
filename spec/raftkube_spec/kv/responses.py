"""What the KV and lease services answer, mirroring etcd's ``etcdserverpb`` responses."""

from __future__ import annotations

import attrs

from raftkube_spec.kv.errors import KVError
from raftkube_spec.kv.types import KeyValue, ResponseHeader


@attrs.frozen
class RangeResponse:
    """``count`` is every key in range at that revision; ``more`` means ``limit`` cut ``kvs``."""

    header: ResponseHeader
    kvs: tuple[KeyValue, ...] = ()
    more: bool = False
    count: int = 0


@attrs.frozen
class PutResponse:
    header: ResponseHeader
    prev_kv: KeyValue | None = None


@attrs.frozen
class DeleteRangeResponse:
    header: ResponseHeader
    deleted: int = 0
    prev_kvs: tuple[KeyValue, ...] = ()


@attrs.frozen
class TxnResponse:
    """``responses`` answer the ops of whichever branch ran, in order."""

    header: ResponseHeader
    succeeded: bool
    responses: tuple[ResponseOp, ...] = ()


@attrs.frozen
class CompactionResponse:
    header: ResponseHeader


@attrs.frozen
class LeaseGrantResponse:
    header: ResponseHeader
    id: int
    ttl: int


@attrs.frozen
class LeaseRevokeResponse:
    header: ResponseHeader


@attrs.frozen
class LeaseKeepAliveResponse:
    header: ResponseHeader
    id: int
    ttl: int


@attrs.frozen
class LeaseTimeToLiveResponse:
    """``ttl == -1`` (and ``granted_ttl == 0``) means the lease does not exist, as in etcd."""

    header: ResponseHeader
    id: int
    ttl: int
    granted_ttl: int = 0
    keys: tuple[bytes, ...] = ()


ResponseOp = RangeResponse | PutResponse | DeleteRangeResponse | TxnResponse
"""What may appear in ``TxnResponse.responses``."""

Response = (
    RangeResponse
    | PutResponse
    | DeleteRangeResponse
    | TxnResponse
    | CompactionResponse
    | LeaseGrantResponse
    | LeaseRevokeResponse
    | LeaseKeepAliveResponse
    | LeaseTimeToLiveResponse
)

Result = Response | KVError
"""Everything :func:`raftkube_spec.kv.apply` can answer."""
