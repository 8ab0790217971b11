"""The API server's own compaction of the store (kube-apiserver's ``--etcd-compaction-interval``).

Upstream's ``k8s.io/apiserver/pkg/storage/etcd3/compact.go``, step for step. Every API server
runs one compactor; the store key ``compact_rev_key`` coordinates them, its *version* acting as
a logical clock ("compact time") and its value as the last revision compacted. Every
``interval`` of the server's own clock (the first one ``interval`` after start) the compactor
sends one transaction:

    if version(compact_rev_key) == the version it last saw
    then put compact_rev_key = the revision it recorded one interval ago
    else get compact_rev_key

- If the put won, the compactor now owns this interval: it compacts the store at the revision
  it recorded an interval ago (nothing on its first win, when it has none), and records the
  store's current revision (the transaction's header) for the next one. History is therefore
  always kept for at least one interval: a watch or a paged list at most one interval old can
  still be served.
- If it lost, another server compacted this interval: the compactor takes the key's version
  (and the revision compacted, its value) and tries again next interval. With several API
  servers one compacts per interval between them; if that one dies, another's next transaction
  succeeds, so compaction goes on within two intervals.

A restarted server starts from scratch (version 0, no recorded revision), as upstream's does:
its first transaction loses against a key that exists, teaching it the version, and the one
after may win. A store that cannot be reached is logged and tried again next interval; a failed
compaction after a won put still moves the version on, since the put happened.

Its effects are what etcd's compaction has on kube-apiserver: a list at a compacted
resourceVersion (``resourceVersionMatch=Exact``, a continue token) is 410 Expired; a watch
cache whose store watch breaks and must resume from a compacted revision lists again, ending
its watchers, and a watcher coming back with a resourceVersion older than that list gets 410
"too old resource version", after which informers list again.

Simplification: upstream logs the successful compaction at verbosity 4; this server has no
verbosity levels and logs it at INFO (one line per interval).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Final

import attrs
import trio

from raftkube.client import Client
from raftkube.client.client import ClientError
from raftkube.client.connection import BrokenError
from raftkube.clock import Clock, sleep_for
from raftkube_spec.kv.requests import (
    Compare,
    CompareResult,
    CompareTarget,
    PutRequest,
    RangeRequest,
    TxnRequest,
)
from raftkube_spec.kv.responses import RangeResponse

logger = logging.getLogger("raftkube.apiserver")

COMPACT_REV_KEY: Final = b"compact_rev_key"
"""Upstream's ``compactRevKey``, at the root of the keyspace (outside ``/registry/``)."""

DEFAULT_INTERVAL: Final = 300.0
"""``--etcd-compaction-interval``'s default (upstream's ``DefaultCompactInterval``, 5 min)."""

STORE_ERRORS = (ClientError, BrokenError, OSError, trio.TooSlowError)
"""What a store request raises when the store cannot answer it (or refuses it)."""


@attrs.define
class Compactor:
    """One API server's compactor; :meth:`run` is its loop, :meth:`compact_once` one interval.

    ``compact_time`` is the version of ``compact_rev_key`` this compactor last saw (upstream's
    ``compactTime``), ``revision`` the store revision it recorded at its last transaction, to
    compact at next time it wins, and ``compact_revision`` the last revision it knows was
    compacted (by itself or, read from the key, by another server; upstream's
    ``CompactRevision()``)."""

    client: Client
    clock: Clock
    interval: float = DEFAULT_INTERVAL
    endpoints: tuple[str, ...] = ()
    """For the log lines, as upstream names ``client.Endpoints()``."""
    compact_time: int = 0
    revision: int = 0
    compact_revision: int = 0
    compactions: int = 0
    """How many compactions this compactor made (tests, metrics)."""

    async def run(self) -> None:
        """Compact every ``interval`` until cancelled; an interval of 0 disables it."""
        if self.interval <= 0:
            return
        while True:
            await sleep_for(self.clock, self.interval)
            try:
                await self.compact_once()
            except STORE_ERRORS as exc:
                logger.error("etcd: endpoint (%s) compact failed: %s", self._named(), exc)

    async def compact_once(self) -> None:
        """One interval's transaction and, if it won with a recorded revision, the compaction.
        Raises what the store raised; the state is as upstream leaves it then (a failed
        transaction changes nothing, a failed compaction after a won put keeps the new
        version and revision)."""
        same = Compare(COMPACT_REV_KEY, CompareTarget.VERSION, CompareResult.EQUAL,
                       self.compact_time)  # fmt: skip
        put = PutRequest(COMPACT_REV_KEY, str(self.revision).encode())
        resp = await self.client.txn(TxnRequest((same,), (put,), (RangeRequest(COMPACT_REV_KEY),)))
        current = resp.header.revision
        if not resp.succeeded:
            self._learn(resp.responses[0] if resp.responses else None, current)
            return
        previous = self.revision
        self.compact_time += 1
        self.revision = current
        if previous == 0:
            return  # the first win only records a revision: nothing to compact yet
        await self.client.compact(previous)
        self.compact_revision = previous
        self.compactions += 1
        logger.info("etcd: compacted rev (%d), endpoints (%s)", previous, self._named())

    def _named(self) -> str:
        """The endpoints as Go prints a string slice: ``[a b c]``."""
        return "[" + " ".join(self.endpoints) + "]"

    def _learn(self, answer: object, current: int) -> None:
        """Another server compacted this interval: take its version and the revision it
        compacted at; this compactor's own recording restarts from ``current``."""
        self.revision = current
        if not isinstance(answer, RangeResponse) or not answer.kvs:
            # The key vanished (someone deleted it): start over from version 0, as upstream
            # would after failing to read it.
            self.compact_time = 0
            return
        kv = answer.kvs[0]
        self.compact_time = kv.version
        with contextlib.suppress(ValueError):  # not a revision: upstream ignores it too
            self.compact_revision = max(self.compact_revision, int(kv.value))
