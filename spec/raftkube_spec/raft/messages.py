"""Messages of the Raft model: what one server sends another, exactly as the spec sees it.

Field names follow raft.tla without its ``m`` prefix. Every message carries ``term``,
``source`` and ``dest``. Extensions beyond raft.tla (PreVote, ReadIndex contexts, snapshots,
leadership transfer) are extra fields or extra message types, never changed meanings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from .types import Entry, ServerId


@attrs.frozen(order=True)
class RequestVoteRequest:
    """A vote request; with ``pre_vote`` it is etcd's MsgPreVote, whose ``term`` is the term
    the sender *would* campaign in, and which changes no receiver state."""

    term: int
    source: ServerId
    dest: ServerId
    last_log_term: int
    last_log_index: int
    pre_vote: bool = False


@attrs.frozen(order=True)
class RequestVoteResponse:
    """A vote (or pre-vote) answer. A granted pre-vote echoes the request's future term."""

    term: int
    source: ServerId
    dest: ServerId
    granted: bool
    pre_vote: bool = False


@attrs.frozen(order=True)
class AppendEntriesRequest:
    """Zero or more entries after ``prev_log_index``; zero entries is a heartbeat.

    ``read_ctx`` is the newest ReadIndex request id pending at the leader when this was sent
    (0 for none): an answer echoing it proves the leader still led *after* those reads began.
    """

    term: int
    source: ServerId
    dest: ServerId
    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...]
    commit_index: int
    read_ctx: int = 0


@attrs.frozen(order=True)
class AppendEntriesResponse:
    """On success ``match_index`` is the last index known to match the leader's log. On
    failure it is a hint: the follower's log cannot match beyond it."""

    term: int
    source: ServerId
    dest: ServerId
    success: bool
    match_index: int
    read_ctx: int = 0


@attrs.frozen(order=True)
class InstallSnapshotRequest:
    """A snapshot up to ``last_index``. ``entries`` is the state-machine image: the model keeps
    the committed prefix itself, so that invariants can compare what compaction discarded."""

    term: int
    source: ServerId
    dest: ServerId
    last_index: int
    last_term: int
    entries: tuple[Entry, ...]


@attrs.frozen(order=True)
class TimeoutNowRequest:
    """Leadership transfer: tells an up-to-date follower to campaign at once."""

    term: int
    source: ServerId
    dest: ServerId


Message = (
    RequestVoteRequest
    | RequestVoteResponse
    | AppendEntriesRequest
    | AppendEntriesResponse
    | InstallSnapshotRequest
    | TimeoutNowRequest
)

RESPONSE_TYPES = (RequestVoteResponse, AppendEntriesResponse)


def _entries_key(entries: tuple[Entry, ...]) -> tuple[tuple[int, str], ...]:
    return tuple((e.term, repr(e.value)) for e in entries)


def _vote_request_key(m: RequestVoteRequest) -> tuple[object, ...]:
    return (0, m.term, m.source, m.dest, m.last_log_term, m.last_log_index, m.pre_vote)


def _vote_response_key(m: RequestVoteResponse) -> tuple[object, ...]:
    return (1, m.term, m.source, m.dest, m.granted, m.pre_vote)


def _append_request_head(m: AppendEntriesRequest) -> tuple[object, ...]:
    return (2, m.term, m.source, m.dest, m.prev_log_index, m.prev_log_term)


def _append_request_key(m: AppendEntriesRequest) -> tuple[object, ...]:
    entries = _entries_key(m.entries)
    return (*_append_request_head(m), entries, m.commit_index, m.read_ctx)


def _append_response_key(m: AppendEntriesResponse) -> tuple[object, ...]:
    return (3, m.term, m.source, m.dest, m.success, m.match_index, m.read_ctx)


def _snapshot_request_head(m: InstallSnapshotRequest) -> tuple[object, ...]:
    return (4, m.term, m.source, m.dest, m.last_index, m.last_term)


def _snapshot_request_key(m: InstallSnapshotRequest) -> tuple[object, ...]:
    return (*_snapshot_request_head(m), _entries_key(m.entries))


def _timeout_now_key(m: TimeoutNowRequest) -> tuple[object, ...]:
    return (5, m.term, m.source, m.dest)


_KEY: dict[type, Callable[[Any], tuple[object, ...]]] = {
    RequestVoteRequest: _vote_request_key,
    RequestVoteResponse: _vote_response_key,
    AppendEntriesRequest: _append_request_key,
    AppendEntriesResponse: _append_response_key,
    InstallSnapshotRequest: _snapshot_request_key,
    TimeoutNowRequest: _timeout_now_key,
}
"""Each message class's key, by exact class (the model has no subclasses of messages): one
dictionary lookup instead of a chain of ``isinstance`` tests, on the path of every network
operation. The leading integer of each key ranks the classes, in the order of this table."""

_HEAD: dict[type, Callable[[Any], tuple[object, ...]]] = {
    **_KEY,
    AppendEntriesRequest: _append_request_head,
    InstallSnapshotRequest: _snapshot_request_head,
}


def message_key(m: Message) -> tuple[object, ...]:
    """A total order over messages of every type, so the network has one canonical form.

    Written out as plain tuples: attrs' generated ordering is correct but slow, and the model
    checker sorts messages on every renaming of every state. The key of an AppendEntries or
    InstallSnapshot renders each entry (``(term, repr(value))``): values need only compare
    and hash, so their rendering is what orders them.
    """
    return _KEY[type(m)](m)


def message_head(m: Message) -> tuple[object, ...]:
    """The part of :func:`message_key` before the rendered entries (the whole key for a
    message without entries): equal heads mean equal types and equal fields up to the
    entries, and unequal heads order as the whole keys do (the first difference is in the
    head). The whole key is ``message_head(m) + (rendered entries,) + message_tail(m)`` for a
    message with entries."""
    return _HEAD[type(m)](m)


def message_tail(m: Message) -> tuple[object, ...]:
    """The part of :func:`message_key` after the rendered entries (see :func:`message_head`)."""
    if isinstance(m, AppendEntriesRequest):
        return (m.commit_index, m.read_ctx)
    return ()


def message_entries(m: Message) -> tuple[Entry, ...]:
    """The entries a message carries (none for most types)."""
    if isinstance(m, AppendEntriesRequest | InstallSnapshotRequest):
        return m.entries
    return ()
