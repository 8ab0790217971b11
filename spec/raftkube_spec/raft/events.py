"""The event vocabulary: one class per action of the Raft model, carrying its parameters.

This is the contract between the model and the implementation. A model checker enumerates
events to explore the model; the implementation reports each of its own steps as one of these
events; conformance checking replays the reported events through the model's transitions and
requires each to be enabled. So every event carries exactly what is needed to make its
transition deterministic, and nothing about *how* an implementation decided to take it.

Naming follows the Raft paper and raft.tla. ``Receive`` in raft.tla is a disjunction; here each
of its branches is its own event (``UpdateTerm``, ``Handle...``, ``DropStaleResponse``), because
an implementation that bumps its term and then answers a request took two steps, and reporting
them separately keeps every event a single, checkable transition. ``UpdateTerm`` leaves its
message in the network, as in raft.tla, for the handler that follows.

An implementation that ignores a message (etcd ignoring a vote request while it hears from a
leader, say) reports ``DropMessage``: to the model, a receiver discarding a message and the
network losing it are the same step.
"""

from __future__ import annotations

import attrs

from .messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    InstallSnapshotRequest,
    Message,
    RequestVoteRequest,
    RequestVoteResponse,
    TimeoutNowRequest,
)
from .types import ServerId, Value

# --- Actions a server takes on its own -------------------------------------------------------


@attrs.frozen
class Restart:
    """Server ``server`` crashes and recovers with only what it persisted."""

    server: ServerId


@attrs.frozen
class Timeout:
    """An election timeout: campaign (or, with PreVote, start a pre-election)."""

    server: ServerId


@attrs.frozen
class RequestVote:
    """A candidate or pre-candidate asks ``peer`` for its vote."""

    server: ServerId
    peer: ServerId


@attrs.frozen
class BecomeCandidate:
    """A pre-candidate won a quorum of pre-votes and now campaigns for real (PreVote only)."""

    server: ServerId


@attrs.frozen
class BecomeLeader:
    """A candidate with a quorum of votes takes over."""

    server: ServerId


@attrs.frozen
class ClientRequest:
    """The leader appends a client command to its log."""

    server: ServerId
    value: Value


@attrs.frozen
class PersistEntries:
    """The leader's own write of its log up to ``index`` is durable (``parallel_persist``
    only): its matchIndex for itself moves there, and from now on it counts towards a quorum
    for those entries."""

    server: ServerId
    index: int


@attrs.frozen
class AdvanceCommitIndex:
    """The leader raises its commit index to ``commit_index`` (the largest it may)."""

    server: ServerId
    commit_index: int


@attrs.frozen
class AppendEntries:
    """The leader sends ``count`` entries (0: a heartbeat) to ``peer`` after its nextIndex."""

    server: ServerId
    peer: ServerId
    count: int


@attrs.frozen
class InstallSnapshot:
    """The leader sends its snapshot to a ``peer`` whose next entry it has compacted away."""

    server: ServerId
    peer: ServerId


@attrs.frozen
class CompactLog:
    """A server snapshots its state machine up to ``index`` (at most its commit index)."""

    server: ServerId
    index: int


@attrs.frozen
class CheckQuorum:
    """The leader's periodic check that a quorum heard from it lately; it steps down if not."""

    server: ServerId


@attrs.frozen
class ReadIndexRequest:
    """The leader registers linearizable read ``read_id`` at its current commit index."""

    server: ServerId
    read_id: int


@attrs.frozen
class ReadIndexComplete:
    """A quorum confirmed the leader after read ``read_id`` began: it may be served."""

    server: ServerId
    read_id: int


@attrs.frozen
class TransferLeadership:
    """The leader tells an up-to-date ``peer`` to campaign now (graceful shutdown)."""

    server: ServerId
    peer: ServerId


@attrs.frozen
class AddMember:
    """The leader appends a configuration adding ``peer``, as a learner or as a voter
    (``etcdctl member add [--learner]``)."""

    server: ServerId
    peer: ServerId
    learner: bool


@attrs.frozen
class PromoteMember:
    """The leader appends a configuration in which learner ``peer`` votes."""

    server: ServerId
    peer: ServerId


@attrs.frozen
class RemoveMember:
    """The leader appends a configuration without ``peer`` (a voter or a learner)."""

    server: ServerId
    peer: ServerId


# --- Receiving a message: the branches of raft.tla's Receive ---------------------------------


@attrs.frozen
class UpdateTerm:
    """The receiver saw a higher term: adopt it as a follower. The message stays queued."""

    message: Message


@attrs.frozen
class HandleRequestVoteRequest:
    message: RequestVoteRequest


@attrs.frozen
class HandleRequestVoteResponse:
    message: RequestVoteResponse


@attrs.frozen
class HandleAppendEntriesRequest:
    message: AppendEntriesRequest


@attrs.frozen
class HandleAppendEntriesResponse:
    message: AppendEntriesResponse


@attrs.frozen
class HandleInstallSnapshotRequest:
    message: InstallSnapshotRequest


@attrs.frozen
class HandleTimeoutNowRequest:
    message: TimeoutNowRequest


@attrs.frozen
class DropStaleResponse:
    """A response from an older term is discarded unread."""

    message: Message


# --- The network ------------------------------------------------------------------------------


@attrs.frozen
class DuplicateMessage:
    message: Message


@attrs.frozen
class DropMessage:
    message: Message


Event = (
    Restart
    | Timeout
    | RequestVote
    | BecomeCandidate
    | BecomeLeader
    | ClientRequest
    | PersistEntries
    | AdvanceCommitIndex
    | AppendEntries
    | InstallSnapshot
    | CompactLog
    | CheckQuorum
    | ReadIndexRequest
    | ReadIndexComplete
    | TransferLeadership
    | AddMember
    | PromoteMember
    | RemoveMember
    | UpdateTerm
    | HandleRequestVoteRequest
    | HandleRequestVoteResponse
    | HandleAppendEntriesRequest
    | HandleAppendEntriesResponse
    | HandleInstallSnapshotRequest
    | HandleTimeoutNowRequest
    | DropStaleResponse
    | DuplicateMessage
    | DropMessage
)

RECEIVE_EVENTS = (
    UpdateTerm,
    HandleRequestVoteRequest,
    HandleRequestVoteResponse,
    HandleAppendEntriesRequest,
    HandleAppendEntriesResponse,
    HandleInstallSnapshotRequest,
    HandleTimeoutNowRequest,
    DropStaleResponse,
)

__all__ = [
    "RECEIVE_EVENTS",
    "AddMember",
    "AdvanceCommitIndex",
    "AppendEntries",
    "AppendEntriesRequest",
    "AppendEntriesResponse",
    "BecomeCandidate",
    "BecomeLeader",
    "CheckQuorum",
    "ClientRequest",
    "CompactLog",
    "DropMessage",
    "DropStaleResponse",
    "DuplicateMessage",
    "Event",
    "HandleAppendEntriesRequest",
    "HandleAppendEntriesResponse",
    "HandleInstallSnapshotRequest",
    "HandleRequestVoteRequest",
    "HandleRequestVoteResponse",
    "HandleTimeoutNowRequest",
    "InstallSnapshot",
    "InstallSnapshotRequest",
    "PersistEntries",
    "PromoteMember",
    "ReadIndexComplete",
    "ReadIndexRequest",
    "RemoveMember",
    "RequestVote",
    "RequestVoteRequest",
    "RequestVoteResponse",
    "Restart",
    "Timeout",
    "TimeoutNowRequest",
    "TransferLeadership",
    "UpdateTerm",
]
