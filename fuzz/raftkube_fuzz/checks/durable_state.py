"""Abstraction (b) of :mod:`raftkube_fuzz.checks.conformance` in code: what a member's
recovered disk says in the spec's terms (term, vote, snapshot, the live log), whether it
matches a spec server exactly, and what it lost of the state it had synced.
"""

from __future__ import annotations

from typing import Any

from raftkube.server.entries import core_value
from raftkube.storage.state import RecoveredState
from raftkube_fuzz.checks.raft_state import (
    spec_fields,
)
from raftkube_spec.raft.state import ServerState
from raftkube_spec.raft.types import Entry


def disk_fields(disk: RecoveredState) -> dict[str, Any]:
    """A recovered disk in the persistent keys of :func:`spec_fields`."""
    meta = disk.snapshot_meta
    vote = disk.hard_state.vote
    return {
        "term": disk.hard_state.term,
        "voted_for": None if vote is None else int(vote),
        "snapshot_index": 0 if meta is None else meta.index,
        "snapshot_term": 0 if meta is None else meta.term,
        "last_index": disk.last_index,
        # A configuration entry is bytes on disk and a Membership in the log.
        "live_log": tuple(Entry(e.term, core_value(e.data)) for e in disk.entries),
    }


PERSISTENT_KEYS = ("term", "voted_for", "snapshot_index", "snapshot_term", "last_index", "live_log")
"""The keys of :func:`spec_fields` a disk must preserve (the order of :func:`disk_fields`)."""


def persistent_fields(v: ServerState, server: int) -> dict[str, Any]:
    fields = spec_fields(v, server)
    return {k: fields[k] for k in PERSISTENT_KEYS}


def durable_matches(disk: RecoveredState, v: ServerState) -> bool:
    """Whether ``differences(disk_fields(disk), persistent_fields(v, i))`` is empty, without
    building either side: the same comparisons key by key, the live log entry by entry (a
    disk entry equals the spec's ``Entry`` exactly when the terms and the data are equal).
    The durability check runs at every sync, and building an ``Entry`` per durable entry each
    time cost more than the rest of it. It may answer False for a match (the caller then
    compares the full dicts); it answers True only when every key would compare equal."""
    hard = disk.hard_state
    vote = hard.vote
    meta = disk.snapshot_meta
    snap = 0 if meta is None else meta.index
    log = v.log
    entries = disk.entries
    if (
        hard.term != v.term
        or (None if vote is None else int(vote)) != v.voted_for
        or snap != v.snapshot_index
        or (0 if meta is None else meta.term) != v.term_at(snap)
        or disk.last_index != len(log)
        or len(entries) != len(log) - snap
    ):
        return False
    for n, entry in enumerate(entries, start=snap):
        theirs = log[n]
        if type(theirs) is not Entry or entry.term != theirs.term or entry.data != theirs.value:
            return False
    return True


def behind_last_sync(disk: RecoveredState, checkpoint: ServerState) -> list[str]:
    """What a recovered disk lost of ``checkpoint``, the spec server as of its last sync (a
    term that went back, a changed vote, a snapshot that fell back, a committed entry
    changed); empty when nothing was lost."""
    got = disk_fields(disk)
    problems: list[str] = []
    if got["term"] < checkpoint.term:
        problems.append(f"term went back from {checkpoint.term} to {got['term']}")
    elif got["term"] == checkpoint.term and checkpoint.voted_for not in (
        None,
        got["voted_for"],
    ):
        problems.append(
            f"vote in term {checkpoint.term} changed from {checkpoint.voted_for} to "
            f"{got['voted_for']}"
        )
    snap = got["snapshot_index"]
    if snap < checkpoint.snapshot_index:
        problems.append(f"snapshot index fell from {checkpoint.snapshot_index} to {snap}")
    live: tuple[Entry, ...] = got["live_log"]
    for index in range(snap + 1, checkpoint.commit_index + 1):
        have = live[index - snap - 1] if index - snap <= len(live) else None
        if have != checkpoint.log[index - 1]:
            problems.append(f"committed entry {index} ({checkpoint.log[index - 1]}) became {have}")
            break
    return problems
