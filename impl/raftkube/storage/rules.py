"""The rules every :class:`~raftkube.storage.interface.Storage` enforces, written once.

A Raft member's storage refuses writes that would break the log's invariants (a gap, a term
going back, a changed vote, a committed entry lost) instead of trusting the driver. The file
store (:mod:`raftkube.storage.raft_log_store`) and the fuzzer's simulated disk must refuse
exactly the same writes, or a bug the simulation lets through would corrupt a real data dir
(and the other way round a fuzz failure would be an artefact of the disk). So each rule is a
pure function here, over the few facts it needs, and both stores call it before they write;
the storage tests drive both stores through the same rules.

Each function raises :class:`ValueError` (or :class:`TypeError` for data that is not bytes)
naming what was refused, and otherwise returns whether the write changes anything.
"""

from __future__ import annotations

from collections.abc import Sequence

from raftkube.storage.state import HardState, LogEntry, SnapshotMeta


def check_append(entries: Sequence[LogEntry], last_index: int, last_term: int) -> None:
    """Entries must continue the log at ``last_index + 1``, one index apart, with terms that
    never decrease. The whole batch is checked before any of it may be written."""
    expected, previous_term = last_index + 1, last_term
    for entry in entries:
        if entry.index != expected:
            raise ValueError(f"entry {entry.index} does not continue the log at {expected}")
        if entry.term < previous_term:
            raise ValueError(
                f"entry {entry.index} has term {entry.term} below the previous {previous_term}"
            )
        if not isinstance(entry.data, bytes):
            raise TypeError(f"entry {entry.index} data must be bytes")
        expected, previous_term = expected + 1, entry.term


def hard_state_changes(new: HardState, current: HardState, last_index: int) -> bool:
    """Whether ``new`` must be written: False when unchanged. Refuses a lower term, a changed
    vote within a term, a lower commit index, or a commit index beyond the log."""
    if new == current:
        return False
    if new.term < current.term:
        raise ValueError(f"term may not go back from {current.term} to {new.term}")
    if new.term == current.term and current.vote is not None and new.vote != current.vote:
        raise ValueError(f"vote in term {current.term} was already cast for {current.vote}")
    if new.commit < current.commit:
        raise ValueError(f"commit may not go back from {current.commit}")
    if new.commit > last_index:
        raise ValueError(f"commit {new.commit} is beyond the last log index {last_index}")
    return True


def truncation_needed(from_index: int, commit: int, first_index: int, last_index: int) -> bool:
    """Whether deleting the entries from ``from_index`` on removes anything: False beyond the
    end of the log. Committed entries and entries a snapshot covers are refused."""
    if from_index <= commit:
        raise ValueError(f"cannot truncate from {from_index}: committed up to {commit}")
    if from_index < first_index:
        raise ValueError(f"cannot truncate from {from_index}: snapshot covers it")
    return from_index <= last_index


def snapshot_keeps_log(
    meta: SnapshotMeta, current: SnapshotMeta | None, term_at_index: int | None, commit: int
) -> bool:
    """Whether installing a snapshot keeps the log entries after it.

    ``term_at_index`` is the term the log holds at the snapshot's index (None if it holds no
    entry there). When it matches the snapshot's term the later entries are kept; otherwise
    the whole log is discarded (Raft's InstallSnapshot conflict rule). Refused when the
    snapshot is not newer than ``current``, contradicts a committed entry, or would discard
    committed entries that lie after it (a store that did so could not start again: its
    commit index would point past its log).
    """
    if current is not None and meta.index <= current.index:
        raise ValueError(f"snapshot {meta} is not newer than {current}")
    keep = term_at_index == meta.term
    if term_at_index is not None and not keep and meta.index <= commit:
        raise ValueError(
            f"snapshot {meta} conflicts with committed entry {meta.index} (term {term_at_index})"
        )
    if not keep and meta.index < commit:
        raise ValueError(
            f"snapshot {meta} would discard committed entries {meta.index + 1}..{commit}"
        )
    return keep
