"""Clients of a raftkube cluster: :class:`Client` (Trio) and :class:`SyncClient`."""

from raftkube.client.client import (
    Client,
    ClientError,
    IndeterminateError,
    KVRequestError,
    WatchCompactedError,
    WatchEvents,
    open_client,
)
from raftkube.client.sync import SyncClient

__all__ = [
    "Client",
    "ClientError",
    "IndeterminateError",
    "KVRequestError",
    "SyncClient",
    "WatchCompactedError",
    "WatchEvents",
    "open_client",
]
