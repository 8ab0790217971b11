"""Durable storage for a Raft member: write-ahead log, snapshots, and the Raft store on top.

Modules, one job each:

* :mod:`~raftkube.storage.records` - byte layout of one WAL record (pure, no I/O).
* :mod:`~raftkube.storage.wal` - segmented write-ahead log with group commit and recovery.
* :mod:`~raftkube.storage.snapshot` - atomic, checksummed snapshot files.
* :mod:`~raftkube.storage.state` - value types (hard state, entries, snapshot metadata).
* :mod:`~raftkube.storage.interface` - the :class:`Storage` protocol the Raft driver uses.
* :mod:`~raftkube.storage.raft_log_store` - file-backed :class:`Storage` on the modules above.
* :mod:`~raftkube.storage.fsutil` - fsync/rename/lock primitives.
* :mod:`~raftkube.storage.errors` - exceptions.
"""

from raftkube.storage.errors import (
    SnapshotCorruptError,
    StorageCorruptError,
    StorageError,
    WalCorruptError,
    WalFailedError,
    WalLockedError,
)
from raftkube.storage.interface import Storage
from raftkube.storage.raft_log_store import RaftLogStore
from raftkube.storage.snapshot import SnapshotStore
from raftkube.storage.state import HardState, LogEntry, RecoveredState, Snapshot, SnapshotMeta
from raftkube.storage.wal import TornTail, WalPosition, WalRecord, WalRecovery, WriteAheadLog

__all__ = [
    "HardState",
    "LogEntry",
    "RaftLogStore",
    "RecoveredState",
    "Snapshot",
    "SnapshotCorruptError",
    "SnapshotMeta",
    "SnapshotStore",
    "Storage",
    "StorageCorruptError",
    "StorageError",
    "TornTail",
    "WalCorruptError",
    "WalFailedError",
    "WalLockedError",
    "WalPosition",
    "WalRecord",
    "WalRecovery",
    "WriteAheadLog",
]
