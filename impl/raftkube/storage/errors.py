"""Exceptions raised by the durable storage layer.

They are separate from the modules that raise them so that callers (the Raft driver, the CLI,
tests) can catch storage failures without importing file-format code. Every corruption error
carries the file and byte offset it refers to, because an operator facing a refused start-up
needs to know exactly which bytes to look at.
"""

from __future__ import annotations

from pathlib import Path


class StorageError(Exception):
    """Base class for every error raised by :mod:`raftkube.storage`."""


class WalCorruptError(StorageError):
    """The write-ahead log holds damaged bytes that cannot be explained by a torn final write.

    Raised instead of silently dropping data: a damaged record that is followed by valid data,
    or that sits in a segment which was completely synced before the next one was created,
    may have been acknowledged to a client, so recovery must stop and ask for a human.
    """

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(f"corrupt write-ahead log {path} at byte offset {offset}: {reason}")


class WalFailedError(StorageError):
    """A previous write or fsync failed, so the log's on-disk state is unknown.

    After a failed fsync the kernel may have dropped dirty pages while reporting success on a
    later retry, so the only safe continuation is to stop using this handle and re-run
    recovery from what is actually on disk.
    """


class WalLockedError(StorageError):
    """Another open handle (in this or another process) already owns the directory."""


class SnapshotCorruptError(StorageError):
    """A snapshot file with a final (renamed) name failed validation.

    Final names are only given to files that were fully written and fsynced, so a bad one means
    media damage or tampering rather than a crash, and it is reported rather than skipped.
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"corrupt snapshot {path}: {reason}")


class StorageCorruptError(StorageError):
    """Individually valid records that together violate an invariant the writer enforces.

    Examples: a gap in the recovered log, a commit index beyond the last entry, or a log that
    says a snapshot is durable when no such snapshot file exists.
    """
