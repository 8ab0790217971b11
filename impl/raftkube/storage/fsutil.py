"""Small file-system primitives with explicit durability.

Everything that must survive power loss goes through these helpers, for two reasons:

* The rules are easy to get subtly wrong (a new file is not durable until its *directory* is
  fsynced; ``write`` may write fewer bytes than asked), so they are written once.
* Tests and fault-injection harnesses can monkeypatch :func:`sync_file` / :func:`sync_dir` on
  this module to count fsyncs or make them fail; callers therefore call them through the module
  (``fsutil.sync_file(fd)``) rather than importing the functions by name.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from raftkube.storage.errors import WalLockedError


def sync_file(fd: int) -> None:
    """Make a file's data (and the metadata needed to read it back, e.g. its size) durable.

    ``fdatasync`` is enough for append-only files because it still flushes a changed file size,
    and it skips the timestamp update that plain ``fsync`` would also force to disk.
    """
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # pragma: no cover - non-Linux fallback
        os.fsync(fd)


def sync_dir(path: Path) -> None:
    """Make directory entries (creations, renames, removals) in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte of ``data``; ``os.write`` alone may stop short on a full disk."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def ensure_dir(path: Path) -> None:
    """Create ``path`` (and parents) if missing, and make the new entry durable."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    sync_dir(path.parent)


def create_file(path: Path) -> int:
    """Create a new, empty file that will still exist after a crash; return a write fd.

    ``O_EXCL`` makes an accidental reuse of a name (which would clobber data) an error instead.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
    try:
        sync_file(fd)
        sync_dir(path.parent)
    except BaseException:
        os.close(fd)
        raise
    return fd


def remove_file(path: Path) -> None:
    """Unlink ``path`` and make the removal durable before returning.

    Syncing after every removal keeps multi-file deletions ordered across a crash: if files
    are removed oldest-first, a crash can never leave a hole in the middle of a sequence.
    """
    path.unlink()
    sync_dir(path.parent)


class DirectoryLock:
    """An exclusive ``flock`` on ``<directory>/LOCK`` held for the life of a storage handle.

    Two writers appending to the same log would interleave records and destroy it; the lock
    turns that operator mistake into an immediate :class:`WalLockedError`. ``flock`` locks belong
    to the open file description, so a second handle in the *same* process is refused too.
    """

    def __init__(self, directory: Path) -> None:
        self._path = directory / "LOCK"
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise WalLockedError(f"{directory} is already open by another handle") from None
        self._fd: int | None = fd

    def release(self) -> None:
        """Drop the lock; idempotent so that close paths can call it unconditionally."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DirectoryLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
