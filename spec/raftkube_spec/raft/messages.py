"""Messages of the Raft model: what one server sends another, exactly as the spec sees it.

Field names follow raft.tla without its ``m`` prefix. Every message carries ``term``,
``source`` and ``dest``. Extensions beyond raft.tla (PreVote, ReadIndex contexts, snapshots,
leadership transfer) are extra fields or extra message types, never changed meanings.
"""

from __future__ import annotations

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

_RANK = {
    cls: n
    for n, cls in enumerate(
        (
            RequestVoteRequest,
            RequestVoteResponse,
            AppendEntriesRequest,
            AppendEntriesResponse,
            InstallSnapshotRequest,
            TimeoutNowRequest,
        )
    )
}


def message_key(m: Message) -> tuple[object, ...]:
    """A total order over messages of every type, so the network has one canonical form.

    Written out as plain tuples: attrs' generated ordering is correct but slow, and the model
    checker sorts messages on every renaming of every state.
    """
    head = (_RANK[type(m)], m.term, m.source, m.dest)
    if isinstance(m, RequestVoteRequest):
        return (*head, m.last_log_term, m.last_log_index, m.pre_vote)
    if isinstance(m, RequestVoteResponse):
        return (*head, m.granted, m.pre_vote)
    if isinstance(m, AppendEntriesRequest):
        entries = tuple((e.term, repr(e.value)) for e in m.entries)
        return (*head, m.prev_log_index, m.prev_log_term, entries, m.commit_index, m.read_ctx)
    if isinstance(m, AppendEntriesResponse):
        return (*head, m.success, m.match_index, m.read_ctx)
    if isinstance(m, InstallSnapshotRequest):
        entries = tuple((e.term, repr(e.value)) for e in m.entries)
        return (*head, m.last_index, m.last_term, entries)
    return head


def message_head(m: Message) -> tuple[object, ...]:
    """The part of :func:`message_key` before the rendered entries (the whole key for a
    message without entries): equal heads mean equal types and equal fields up to the
    entries, and unequal heads order as the whole keys do (the first difference is in the
    head). The whole key is ``message_head(m) + (rendered entries,) + message_tail(m)`` for a
    message with entries."""
    if isinstance(m, AppendEntriesRequest):
        return (
            _RANK[AppendEntriesRequest],
            m.term,
            m.source,
            m.dest,
            m.prev_log_index,
            m.prev_log_term,
        )
    if isinstance(m, InstallSnapshotRequest):
        return (_RANK[InstallSnapshotRequest], m.term, m.source, m.dest, m.last_index, m.last_term)
    return message_key(m)


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
