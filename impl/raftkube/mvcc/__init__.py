"""The MVCC key/value state machine of a Raft member (etcd's role).

Committed log entries are applied to :class:`MvccStore`, which answers every
request exactly as the sequential specification ``raftkube_spec.kv`` does,
with mutable indexed structures instead of immutable values:

* :mod:`~raftkube.mvcc.index` — key -> revision history, ranges at any retained
  revision, compaction that touches only keys with droppable history;
* :mod:`~raftkube.mvcc.store` — :class:`MvccStore`, the request dispatcher
  (Range, Put, DeleteRange, Txn, Compaction and the lease requests);
* :mod:`~raftkube.mvcc.lease` — the lessor, with incrementally attached keys;
* :mod:`~raftkube.mvcc.watch` — :class:`WatchHub`, sans-I/O watch delivery;
* :mod:`~raftkube.mvcc.sessions` — at-most-once application of client requests;
* :mod:`~raftkube.mvcc.snapshot` — canonical msgpack snapshots for Raft.
"""

from raftkube.mvcc.sessions import SessionError, SessionRejection, SessionTable
from raftkube.mvcc.snapshot import SnapshotFormatError, dump_snapshot, load_snapshot
from raftkube.mvcc.store import MvccStore, WriteObserver
from raftkube.mvcc.watch import WatchHub

__all__ = [
    "MvccStore",
    "SessionError",
    "SessionRejection",
    "SessionTable",
    "SnapshotFormatError",
    "WatchHub",
    "WriteObserver",
    "dump_snapshot",
    "load_snapshot",
]
