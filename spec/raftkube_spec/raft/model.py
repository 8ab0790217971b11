"""The Raft model: one method per action, each a pure function from a state to its successor.

Theory of operation
-------------------
This is raft.tla (Ongaro, 2014) transcribed into Python, extended with what the implementation
really does, each extension behind a switch in :class:`RaftConfig`:

* AppendEntries may carry up to ``max_batch`` entries, and with ``pipelining`` the leader
  advances its nextIndex when it sends instead of when it hears back (etcd's StateReplicate);
* PreVote (dissertation 9.6) puts a PreCandidate step before each campaign;
* CheckQuorum makes a leader step down when no quorum answered it since its last check;
* ReadIndex reads, confirmed by a quorum answering a heartbeat sent after the read began;
* log compaction (CompactLog) and InstallSnapshot for followers behind the leader's snapshot;
* leadership transfer (TimeoutNow);
* single-server membership changes with learners (:mod:`.membership`): configuration entries
  in the log, in force from the moment they are appended; quorums count only the voters of
  the counting server's configuration, only voters campaign, and a leader replicates to the
  members of its configuration;
* with ``parallel_persist`` a leader sends new entries while its own write of them is in flight
  (Raft thesis 10.2.1, as etcd's leader does): ``PersistEntries`` marks that write durable,
  only then does the leader count itself for them, and ``Restart`` loses what it had not.

Every action is a method ``action(state, event) -> RaftState | None``: the event (see
:mod:`.events`) carries the action's parameters, and ``None`` means "not enabled". With its
parameters fixed every action is deterministic, so "the successor states" of an action are the
results over all its parameters: :meth:`RaftSpec.successors` enumerates them.

Rules of this module: no I/O, no clock, no randomness; no bounds either. The model describes the
unbounded protocol, so that an implementation running for hours can be replayed through it.
Bounds for exhaustive checking live in :class:`RaftConfig` and are applied by
:meth:`RaftSpec.successors` as a state constraint, in the manner of TLC's CONSTRAINT.

Where this deviates from raft.tla, and why:

* A candidate votes for itself when it times out, as in the paper, rather than by sending itself
  a RequestVote.
* A candidate that hears an AppendEntries of its own term returns to follower and handles the
  message in the same step (raft.tla takes two).
* A follower's commit index never moves backwards on a reordered, stale AppendEntries.
* A follower asked to append after an index it has already committed answers with its commit
  index (etcd's rule): with compaction it cannot check terms below its snapshot, and committed
  entries match the leader's by Leader Completeness.
* AppendEntries responses carry, on failure, a hint (the highest index that could match), and
  the leader never lowers nextIndex below matchIndex + 1; stale or reordered answers are safe.

Where the actions live: :mod:`.core` holds the transition system and the helpers every action
shares; :mod:`.elections`, :mod:`.replication`, :mod:`.reads`, :mod:`.reconfig` and
:mod:`.faults` hold the actions by job. :class:`RaftSpec` combines them and is the one name the
rest of the project imports.
"""

from __future__ import annotations

from . import events as ev
from .config import RaftConfig
from .core import Action, handler_event
from .elections import Elections
from .faults import Faults
from .reads import Reads
from .reconfig import Reconfiguration
from .replication import Replication

__all__ = ["Action", "RaftSpec", "handler_event"]


class RaftSpec(Elections, Replication, Reads, Reconfiguration, Faults):
    """The Raft transition system under one configuration.

    Mutants (see :mod:`.mutants`) subclass this and override single actions; nothing here knows
    they exist.
    """

    name = "raft"

    def __init__(self, config: RaftConfig) -> None:
        super().__init__(config)
        self._actions = {
            ev.Restart: self.restart,
            ev.Timeout: self.timeout,
            ev.RequestVote: self.request_vote,
            ev.BecomeCandidate: self.become_candidate,
            ev.BecomeLeader: self.become_leader,
            ev.ClientRequest: self.client_request,
            ev.PersistEntries: self.persist_entries,
            ev.AdvanceCommitIndex: self.advance_commit_index,
            ev.AppendEntries: self.append_entries,
            ev.InstallSnapshot: self.install_snapshot,
            ev.CompactLog: self.compact_log,
            ev.CheckQuorum: self.check_quorum,
            ev.ReadIndexRequest: self.read_index_request,
            ev.ReadIndexComplete: self.read_index_complete,
            ev.TransferLeadership: self.transfer_leadership,
            ev.AddMember: self.add_member,
            ev.PromoteMember: self.promote_member,
            ev.RemoveMember: self.remove_member,
            ev.UpdateTerm: self.update_term,
            ev.HandleRequestVoteRequest: self.handle_request_vote_request,
            ev.HandleRequestVoteResponse: self.handle_request_vote_response,
            ev.HandleAppendEntriesRequest: self.handle_append_entries_request,
            ev.HandleAppendEntriesResponse: self.handle_append_entries_response,
            ev.HandleInstallSnapshotRequest: self.handle_install_snapshot_request,
            ev.HandleTimeoutNowRequest: self.handle_timeout_now_request,
            ev.DropStaleResponse: self.drop_stale_response,
            ev.DuplicateMessage: self.duplicate_message,
            ev.DropMessage: self.drop_message,
        }
