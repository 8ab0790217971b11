"""Value types for a Raft member's persistent state.

They live apart from both the :class:`~raftkube.storage.interface.Storage` protocol and the file
implementation so that the driver, the file-backed store and the simulator's in-memory disk
all speak the same immutable vocabulary without importing each other.
"""

from __future__ import annotations

import attrs

NodeId = int
"""How a member is named in a vote: its Raft id."""


def _non_negative(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


@attrs.frozen
class HardState:
    """The Raft fields that must be durable before a member answers an RPC: the one type the
    Raft core reports in a ``Ready``, the member persists and storage recovers.

    ``commit`` is persisted too (it is not required for safety) so that a restarted member can
    re-apply committed entries without waiting to hear from a leader; it is advisory (the spec
    restarts with the commit index at the snapshot index, and so does the node).
    """

    term: int = attrs.field(default=0, validator=_non_negative)
    vote: NodeId | None = None
    commit: int = attrs.field(default=0, validator=_non_negative)


@attrs.frozen
class LogEntry:
    """One replicated log entry; ``data`` is opaque to storage (the driver encodes commands)."""

    index: int = attrs.field(validator=_non_negative)
    term: int = attrs.field(validator=_non_negative)
    data: bytes = b""


@attrs.frozen(order=True)
class SnapshotMeta:
    """Identifies a snapshot by the last log entry it covers."""

    index: int = attrs.field(validator=_non_negative)
    term: int = attrs.field(validator=_non_negative)


@attrs.frozen
class Snapshot:
    """A state-machine image covering the log up to and including ``meta.index``."""

    meta: SnapshotMeta
    data: bytes


@attrs.frozen
class RecoveredState:
    """What a member restarts from.

    ``entries`` are contiguous and start at ``snapshot.meta.index + 1`` (or 1 without a
    snapshot). ``hard_state.commit`` may be below ``snapshot.meta.index``: a snapshot installed
    from a leader is committed by definition, so the effective commit index is the maximum.
    """

    hard_state: HardState
    entries: tuple[LogEntry, ...]
    snapshot: Snapshot | None

    @property
    def snapshot_meta(self) -> SnapshotMeta | None:
        """Metadata of the recovered snapshot, if any."""
        return None if self.snapshot is None else self.snapshot.meta

    @property
    def first_index(self) -> int:
        """Index of the first entry still in the log (one past the snapshot)."""
        return 1 if self.snapshot is None else self.snapshot.meta.index + 1

    @property
    def last_index(self) -> int:
        """Index of the last entry, counting the snapshot as covering its index."""
        if self.entries:
            return self.entries[-1].index
        return 0 if self.snapshot is None else self.snapshot.meta.index
