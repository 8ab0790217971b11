"""The Raft log: a snapshot (the compacted prefix) followed by a list of live entries.

Index arithmetic lives here so the node never touches list offsets: entry ``k`` (1-based) is
``entries[k - snapshot.index - 1]`` for ``k > snapshot.index``.
"""

from __future__ import annotations

import attrs

from raftkube_spec.raft.types import Entry


@attrs.frozen
class Snapshot:
    """The state up to and including ``index``.

    ``data`` is the state-machine image. The spec's InstallSnapshotRequest carries the image as
    the committed prefix of entries, and a node must be able to put it on the wire exactly as
    the spec does, so the image is that prefix here too.
    """

    index: int = 0
    term: int = 0
    data: tuple[Entry, ...] = ()


class RaftLog:
    """A mutable log with a snapshot offset. Cheap appends and suffix truncation."""

    __slots__ = ("entries", "snapshot")

    def __init__(self, snapshot: Snapshot | None = None, entries: tuple[Entry, ...] = ()) -> None:
        self.snapshot = snapshot if snapshot is not None else Snapshot()
        self.entries: list[Entry] = list(entries)

    @property
    def first_index(self) -> int:
        """The first index still held as an entry (one past the snapshot)."""
        return self.snapshot.index + 1

    @property
    def last_index(self) -> int:
        return self.snapshot.index + len(self.entries)

    @property
    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snapshot.term

    def term_at(self, index: int) -> int:
        """The term of entry ``index``; 0 for index 0. Only the snapshot's last index and live
        entries are known; asking for a compacted one is a bug in the caller."""
        offset = index - self.snapshot.index
        if offset > 0:
            return self.entries[offset - 1].term
        if offset == 0:
            return self.snapshot.term
        raise IndexError(f"index {index} is compacted (snapshot at {self.snapshot.index})")

    def slice(self, after: int, upto: int) -> tuple[Entry, ...]:
        """Entries ``after+1 .. upto``; ``after`` must not be below the snapshot."""
        base = self.snapshot.index
        if after < base:
            raise IndexError(f"index {after + 1} is compacted (snapshot at {base})")
        return tuple(self.entries[after - base : upto - base])

    def append(self, entry: Entry) -> int:
        self.entries.append(entry)
        return self.last_index

    def truncate_after(self, index: int) -> None:
        """Drop entries after ``index`` (a conflict with the leader's log)."""
        del self.entries[index - self.snapshot.index :]

    def compact(self, index: int) -> Snapshot:
        """Fold entries up to ``index`` into the snapshot and return the new snapshot."""
        base = self.snapshot.index
        folded = self.entries[: index - base]
        self.snapshot = Snapshot(index, self.term_at(index), self.snapshot.data + tuple(folded))
        del self.entries[: index - base]
        return self.snapshot

    def install(self, snapshot: Snapshot) -> None:
        """Replace the whole log by ``snapshot`` (a leader's snapshot we do not match)."""
        self.snapshot = snapshot
        self.entries = []

    def as_entries(self) -> tuple[Entry, ...]:
        """The whole logical log, compacted prefix included (the spec's ``log``)."""
        return self.snapshot.data + tuple(self.entries)
