"""Which configuration a node is in, kept up to date as its log changes.

The rules are the spec's (``raftkube_spec.raft.membership``): a configuration entry takes
effect as soon as it is in the log, committed or not, and a truncated log falls back to the
configuration before the cut, so a node's configuration is always the last configuration
entry in its log (snapshot included), or the initial one. Like etcd-io/raft, the node keeps
conf-change entries in the log itself (their value is a ``Membership``); unlike etcd-io/raft,
which applies them when committed, they count from the moment they are appended (Raft
dissertation 4.1), which is what makes single-server changes safe without joint consensus.

This tracker only remembers where the last configuration entry is, so that appends (the
common case) cost nothing and a full scan happens only when that entry is cut or replaced.
"""

from __future__ import annotations

from collections.abc import Iterable

from raftkube.raft.log import RaftLog
from raftkube_spec.raft.types import Entry, Membership


class MembershipTracker:
    """The configuration in force for one log."""

    __slots__ = ("current", "enabled", "index", "initial")

    def __init__(self, initial: Membership, log: RaftLog, *, enabled: bool) -> None:
        self.initial = initial
        self.enabled = enabled
        """Without membership changes the configuration never changes and nothing is scanned
        (a member's snapshot data is an image entry, not the compacted prefix of entries)."""
        self.current = initial
        self.index = 0
        """The index of the entry ``current`` came from (0: the initial configuration)."""
        self.rescan(log)

    def rescan(self, log: RaftLog) -> None:
        """Find the last configuration entry from scratch (a new log, or a cut one): in the
        live entries, then in the snapshot's data (the compacted prefix, or a member's image
        with the configuration beside it)."""
        self.current, self.index = self.initial, 0
        if not self.enabled:
            return
        base = log.snapshot.index
        for n in range(len(log.entries) - 1, -1, -1):
            value = log.entries[n].value
            if isinstance(value, Membership):
                self.current, self.index = value, base + n + 1
                return
        data = log.snapshot.data
        # The spec's snapshot is the compacted prefix, so entry n is at index n + 1. A
        # member's is shorter: its state-machine image stands for a prefix, and the
        # configuration in force at the image rides beside it as a Membership entry
        # (etcd's ConfState in the snapshot metadata; raftkube.server.snapshots). Every
        # configuration in a snapshot is committed, so for that form the snapshot's own index
        # is a sound stand-in for where it came from: only comparisons with the commit index
        # and with truncation points (never below the snapshot) read it.
        prefix_form = len(data) == base
        for n in range(len(data) - 1, -1, -1):
            value = data[n].value
            if isinstance(value, Membership):
                self.current, self.index = value, (n + 1 if prefix_form else base)
                return
        if not prefix_form:
            raise ValueError(
                f"a snapshot of {len(data)} entries up to index {base} holds no configuration "
                "entry, so it does not say which configuration is in force"
            )

    def appended(self, first: int, entries: Iterable[Entry]) -> None:
        """``entries`` were appended at ``first`` onwards (after any truncation)."""
        if not self.enabled:
            return
        for n, entry in enumerate(entries):
            if isinstance(entry.value, Membership):
                self.current, self.index = entry.value, first + n

    def truncated(self, log: RaftLog, first_removed: int) -> None:
        """Entries from ``first_removed`` on were cut from ``log``."""
        if self.index >= first_removed:
            self.rescan(log)
