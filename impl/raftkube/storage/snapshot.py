"""Atomic, checksummed snapshot files.

Each snapshot is one file named ``<index>-<term>.snap`` (16-digit lower-case hex each, so
lexical order is index order). Byte layout, integers little-endian:

======  ====  ===========================================================================
Offset  Size  Field
======  ====  ===========================================================================
0       8     magic ``b"RKSNAP1\\n"``
8       4     crc32 (``zlib.crc32``) of every byte from offset 12 to the end of the file
12      4     meta length M, u32
16      8     data length D, u64
24      M     meta: msgpack ``[index, term]`` (must agree with the file name)
24+M    D     snapshot data, opaque bytes
======  ====  ===========================================================================

The file length must be exactly ``24 + M + D``.

Atomicity: a snapshot is written to ``<name>.tmp``, fsynced, renamed to its final name, and the
directory is fsynced. The write and its fsync may be done ahead, by :meth:`SnapshotStore.stage`
(in another thread: tens of megabytes take a loaded disk most of a second), leaving only the
rename and the directory's fsync to :meth:`SnapshotStore.save`. A crash therefore leaves
either no final file or a complete one; ``*.tmp`` leftovers are not snapshots yet (incomplete,
or staged and never recorded) and are deleted when the store is opened. Older snapshots are
only removed by :meth:`SnapshotStore.prune`, which the caller runs after the new snapshot is
durable (and, for Raft, after the log records that it is), so the previous snapshot always
survives until its successor is safe.

A final-named file that fails validation raises :class:`SnapshotCorruptError` instead of
falling back to an older snapshot. It was fsynced before being renamed, so damage means media
failure or tampering, not a crash; and falling back silently is unsafe, because the log
segments between the older and the newer snapshot may already have been released - the member
would restart missing entries it had acknowledged, which breaks Raft's durability promise. The
previous snapshot is kept on disk so an operator can choose to recover manually.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path

from raftkube.storage import fsutil
from raftkube.storage.errors import SnapshotCorruptError
from raftkube.storage.records import PayloadError, pack_payload, unpack_payload
from raftkube.storage.state import Snapshot, SnapshotMeta

MAGIC = b"RKSNAP1\n"
_HEAD = struct.Struct("<8sIIQ")  # magic, crc, meta length, data length
HEADER_SIZE = _HEAD.size  # 24
_CRC_FROM = 12
_NAME_RE = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.snap$")
SUFFIX = ".snap"
TEMP_SUFFIX = ".tmp"


def snapshot_name(meta: SnapshotMeta) -> str:
    """Final file name for a snapshot with this metadata."""
    return f"{meta.index:016x}-{meta.term:016x}{SUFFIX}"


def snapshot_header(snapshot: Snapshot) -> bytes:
    """Everything of the file's layout (documented above) before the data: the data follows
    it as it is, so a writer need not copy tens of megabytes into one buffer first."""
    meta = pack_payload([snapshot.meta.index, snapshot.meta.term])
    lengths = struct.pack("<IQ", len(meta), len(snapshot.data))
    crc = zlib.crc32(snapshot.data, zlib.crc32(lengths + meta))
    return MAGIC + struct.pack("<I", crc) + lengths + meta


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """Serialise ``snapshot`` to the byte layout documented above."""
    return snapshot_header(snapshot) + snapshot.data


def decode_snapshot(path: Path, blob: bytes) -> Snapshot:
    """Validate and parse a snapshot file's bytes; ``path`` is only used in error messages."""
    if len(blob) < HEADER_SIZE:
        return decode_snapshot_parts(path, blob, b"")
    meta_len = _HEAD.unpack_from(blob)[2]
    split = min(len(blob), HEADER_SIZE + meta_len)
    return decode_snapshot_parts(path, blob[:split], blob[split:])


def decode_snapshot_parts(path: Path, head: bytes, data: bytes) -> Snapshot:
    """:func:`decode_snapshot` of a file read as ``head`` (header and meta) and ``data`` (the
    rest): the data is checked in place and handed back without a copy when it is whole."""
    size = len(head) + len(data)
    if len(head) < HEADER_SIZE:
        raise SnapshotCorruptError(path, f"only {size} bytes, shorter than the header")
    magic, crc, meta_len, data_len = _HEAD.unpack_from(head)
    if magic != MAGIC:
        raise SnapshotCorruptError(path, "bad magic")
    if HEADER_SIZE + meta_len + data_len != size or len(head) != HEADER_SIZE + meta_len:
        raise SnapshotCorruptError(
            path, f"header says {HEADER_SIZE + meta_len + data_len} bytes, file has {size}"
        )
    if zlib.crc32(data, zlib.crc32(memoryview(head)[_CRC_FROM:])) != crc:
        raise SnapshotCorruptError(path, "checksum mismatch")
    try:
        fields = unpack_payload(head[HEADER_SIZE:])
        meta = SnapshotMeta(index=int(fields[0]), term=int(fields[1]))
    except (PayloadError, TypeError, ValueError, IndexError) as exc:
        raise SnapshotCorruptError(path, f"unreadable metadata: {exc}") from exc
    return Snapshot(meta, data)


class SnapshotStore:
    """A directory of snapshot files, newest identified by the highest ``(index, term)``.

    The store does not lock its directory; its owner (the Raft store) holds the log's lock,
    which covers both.
    """

    def __init__(self, directory: Path | str, *, retain: int = 2) -> None:
        if retain < 1:
            raise ValueError("retain must be at least 1")
        self._directory = Path(directory)
        self._retain = retain
        self._staged: dict[str, bytes] = {}
        """Final names of snapshots written durably to their temporary file by :meth:`stage`,
        each with the data written (what :meth:`save` checks it is given again)."""
        fsutil.ensure_dir(self._directory)
        self._remove_temporaries()

    @property
    def directory(self) -> Path:
        """The directory holding the snapshot files."""
        return self._directory

    def _remove_temporaries(self) -> None:
        """Delete ``*.tmp`` files: they are saves that never reached their rename."""
        for entry in sorted(os.listdir(self._directory)):
            if entry.endswith(TEMP_SUFFIX):
                fsutil.remove_file(self._directory / entry)

    def stage(self, snapshot: Snapshot) -> None:
        """Write ``snapshot`` durably to its temporary file, not yet under its final name, so
        that a later :meth:`save` of the same snapshot only renames it. Touches nothing but
        that file, so it may run in another thread while the owner goes on writing its log (a
        crash leaves a ``*.tmp`` file, deleted at the next open)."""
        final = self._directory / snapshot_name(snapshot.meta)
        self._write_temp(final, snapshot)
        self._staged[final.name] = snapshot.data

    def save(self, snapshot: Snapshot) -> Path:
        """Write ``snapshot`` atomically and durably (or, if :meth:`stage` wrote this very
        snapshot, only move it to its final name); return its final path.

        Nothing older is touched: call :meth:`prune` once the caller has recorded the new
        snapshot wherever else it must (for Raft, in the write-ahead log).
        """
        final = self._directory / snapshot_name(snapshot.meta)
        temp = final.with_name(final.name + TEMP_SUFFIX)
        if self._staged.pop(final.name, None) is not snapshot.data:
            self._write_temp(final, snapshot)
        for name in sorted(self._staged):
            if name < final.name:  # staged but never saved (a newer snapshot came first)
                del self._staged[name]
                (self._directory / (name + TEMP_SUFFIX)).unlink(missing_ok=True)
        try:
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        fsutil.sync_dir(self._directory)
        return final

    def _write_temp(self, final: Path, snapshot: Snapshot) -> None:
        """Write and fsync ``<final>.tmp`` (removed again if that fails)."""
        temp = final.with_name(final.name + TEMP_SUFFIX)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            try:
                fsutil.write_all(fd, snapshot_header(snapshot))
                fsutil.write_all(fd, snapshot.data)
                fsutil.sync_file(fd)
            finally:
                os.close(fd)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def list_snapshots(self) -> list[tuple[SnapshotMeta, Path]]:
        """Every final-named snapshot file, newest first (by file name; contents unchecked)."""
        found: list[tuple[SnapshotMeta, Path]] = []
        for entry in os.listdir(self._directory):
            if not entry.endswith(SUFFIX):
                continue
            match = _NAME_RE.match(entry)
            if match is None:
                raise SnapshotCorruptError(
                    self._directory / entry, "unrecognised snapshot file name"
                )
            meta = SnapshotMeta(index=int(match.group(1), 16), term=int(match.group(2), 16))
            found.append((meta, self._directory / entry))
        found.sort(reverse=True)
        return found

    def load(self, path: Path) -> Snapshot:
        """Read and validate one snapshot file, checking its contents match its name. The data
        is read into its own buffer (not sliced out of the whole file's bytes, a second copy
        of a large image)."""
        with open(path, "rb") as f:
            head = f.read(HEADER_SIZE)
            if len(head) == HEADER_SIZE:
                meta_len, data_len = _HEAD.unpack_from(head)[2:]
                # Read one byte past the data, so a file longer than its header says is caught.
                head += f.read(meta_len)
                data = f.read(data_len + 1)
            else:
                data = b""
        snapshot = decode_snapshot_parts(path, head, data)
        if snapshot_name(snapshot.meta) != path.name:
            raise SnapshotCorruptError(
                path,
                f"contents describe index {snapshot.meta.index} term {snapshot.meta.term}, "
                "which does not match the file name",
            )
        return snapshot

    def load_latest(self) -> Snapshot | None:
        """The newest snapshot, or ``None`` if there is none.

        Raises :class:`SnapshotCorruptError` if the newest file is damaged (see module doc for
        why this does not fall back to an older one).
        """
        listed = self.list_snapshots()
        if not listed:
            return None
        return self.load(listed[0][1])

    def prune(self) -> list[Path]:
        """Delete all but the newest ``retain`` snapshots (oldest first); return the paths."""
        doomed = self.list_snapshots()[self._retain :]
        removed: list[Path] = []
        for _meta, path in reversed(doomed):
            fsutil.remove_file(path)
            removed.append(path)
        return removed
