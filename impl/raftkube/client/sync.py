"""A blocking wrapper of :class:`Client`: each call is one ``trio.run`` with a fresh connection.

Simple and thread-agnostic, at the price of a connection per call; use the async client when
throughput matters. Must not be called from inside a running Trio loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import trio

from raftkube.client.client import Client
from raftkube_spec.kv.requests import TxnRequest
from raftkube_spec.kv.responses import (
    DeleteRangeResponse,
    LeaseGrantResponse,
    LeaseRevokeResponse,
    PutResponse,
    RangeResponse,
    TxnResponse,
)

T = TypeVar("T")


class SyncClient:
    def __init__(self, endpoints: Sequence[str], **kwargs: Any) -> None:
        self.endpoints = list(endpoints)
        self._kwargs = kwargs

    def _run(self, call: Callable[[Client], Awaitable[T]]) -> T:
        async def main() -> T:
            async with Client(self.endpoints, **self._kwargs) as client:
                return await call(client)

        return trio.run(main)

    def put(self, key: bytes, value: bytes, **kw: Any) -> PutResponse:
        return self._run(lambda c: c.put(key, value, **kw))

    def get(self, key: bytes, range_end: bytes = b"", **kw: Any) -> RangeResponse:
        return self._run(lambda c: c.get(key, range_end, **kw))

    def delete(self, key: bytes, range_end: bytes = b"", **kw: Any) -> DeleteRangeResponse:
        return self._run(lambda c: c.delete(key, range_end, **kw))

    def txn(self, txn: TxnRequest) -> TxnResponse:
        return self._run(lambda c: c.txn(txn))

    def lease_grant(self, ttl: int, lease_id: int = 0) -> LeaseGrantResponse:
        return self._run(lambda c: c.lease_grant(ttl, lease_id))

    def lease_revoke(self, lease_id: int) -> LeaseRevokeResponse:
        return self._run(lambda c: c.lease_revoke(lease_id))

    def status(self) -> dict[str, Any]:
        return self._run(lambda c: c.status())
