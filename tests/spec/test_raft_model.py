"""Scenarios of the Raft model: each pins down one rule of the protocol as the model states it."""

from __future__ import annotations

import attrs

from raftkube_spec.raft import events as ev
from raftkube_spec.raft.config import RaftConfig, all_features
from raftkube_spec.raft.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    InstallSnapshotRequest,
    RequestVoteRequest,
    TimeoutNowRequest,
)
from raftkube_spec.raft.model import RaftSpec
from raftkube_spec.raft.mutants import Figure8Commit
from raftkube_spec.raft.state import Committed, RaftState, ServerState
from raftkube_spec.raft.types import Entry, Role
from tests.helpers.raft_spec import deliver, elect, message, take

BIG = RaftConfig(servers=3, max_term=9, max_log=9, max_messages=99, max_restarts=9, max_reads=9)


def replicate(spec: RaftSpec, s: RaftState, leader: int, peer: int, count: int) -> RaftState:
    s = take(spec, s, ev.AppendEntries(leader, peer, count))
    s = deliver(spec, s, AppendEntriesRequest, leader, peer)
    return deliver(spec, s, AppendEntriesResponse, peer, leader)


def test_election_replication_and_commit() -> None:
    spec = RaftSpec(BIG)
    s = elect(spec, spec.initial(), 0, [1])
    assert s.servers[0].role is Role.LEADER and s.servers[0].term == 1
    s = take(spec, s, ev.ClientRequest(0, "x"))
    assert spec.step(s, ev.AdvanceCommitIndex(0, 1)) is None, "not yet on a quorum"
    s = replicate(spec, s, 0, 1, 1)
    s = take(spec, s, ev.AdvanceCommitIndex(0, 1))
    assert s.servers[0].commit_index == 1
    assert [c.entry for c in s.committed] == [Entry(1, "x")]
    # The follower learns the commit index from the next append.
    s = replicate(spec, s, 0, 1, 0)
    assert s.servers[1].commit_index == 1


def test_a_server_votes_once_per_term() -> None:
    spec = RaftSpec(BIG)
    s = take(spec, spec.initial(), ev.Timeout(0))
    s = take(spec, s, ev.Timeout(1))
    s = take(spec, s, ev.RequestVote(0, 2))
    s = take(spec, s, ev.RequestVote(1, 2))
    s = take(spec, s, ev.UpdateTerm(message(s, RequestVoteRequest, 0, 2)))
    s = deliver(spec, s, RequestVoteRequest, 0, 2)
    s = deliver(spec, s, RequestVoteRequest, 1, 2)
    answers = {m.dest: m.granted for m, _ in s.network}
    assert answers == {0: True, 1: False}
    assert s.servers[2].voted_for == 0


def test_voters_refuse_a_candidate_with_an_older_log() -> None:
    spec = RaftSpec(BIG)
    s = elect(spec, spec.initial(), 0, [1])
    s = take(spec, s, ev.ClientRequest(0, "x"))
    s = replicate(spec, s, 0, 1, 1)
    # Server 2 never got the entry: it cannot win server 1's vote.
    s = take(spec, s, ev.Timeout(2))
    s = take(spec, s, ev.Timeout(2))
    s = take(spec, s, ev.RequestVote(2, 1))
    s = deliver(spec, s, RequestVoteRequest, 2, 1)
    [(answer, _)] = s.network
    assert answer.granted is False


def figure8_state() -> RaftState:
    """Figure 8 (c): leader s0 of term 3 holds an entry of term 2 on a quorum, uncommitted."""
    old = Entry(2, "old")
    leader = ServerState(
        term=3,
        voted_for=0,
        log=(Entry(1, "a"), old),
        role=Role.LEADER,
        commit_index=1,
        next_index=(3, 3, 3),
        match_index=(2, 2, 0),
    )
    follower = ServerState(term=3, voted_for=0, log=(Entry(1, "a"), old), commit_index=1)
    other = ServerState(term=3, voted_for=0, log=(Entry(1, "a"),), commit_index=1)
    return RaftState(servers=(leader, follower, other), committed=(Committed(Entry(1, "a"), 1),))


def test_a_leader_never_commits_an_older_term_by_counting_replicas() -> None:
    s = figure8_state()
    assert RaftSpec(BIG).commit_candidate(s.servers[0]) == 1
    assert Figure8Commit(BIG).commit_candidate(s.servers[0]) == 2


def test_an_entry_of_the_current_term_commits_the_older_ones_with_it() -> None:
    spec = RaftSpec(BIG)
    s = take(spec, figure8_state(), ev.ClientRequest(0, "new"))
    s = replicate(spec, s, 0, 1, 1)
    s = take(spec, s, ev.AdvanceCommitIndex(0, 3))
    assert [c.entry.value for c in s.committed] == ["a", "old", "new"]


def test_a_reordered_shorter_append_never_cuts_the_log() -> None:
    spec = RaftSpec(attrs.evolve(BIG, max_batch=2))
    log = (Entry(1, "a"), Entry(1, "b"))
    assert spec.merge(log, 0, (Entry(1, "a"),)) == log
    assert spec.merge(log, 0, (Entry(2, "z"),)) == (Entry(2, "z"),)
    assert spec.merge(log, 1, (Entry(1, "b"), Entry(1, "c"))) == (*log, Entry(1, "c"))


def test_restart_keeps_only_what_was_persisted() -> None:
    spec = RaftSpec(BIG)
    s = elect(spec, spec.initial(), 0, [1])
    s = take(spec, s, ev.ClientRequest(0, "x"))
    s = replicate(spec, s, 0, 1, 1)
    s = take(spec, s, ev.AdvanceCommitIndex(0, 1))
    s = take(spec, s, ev.Restart(0))
    v = s.servers[0]
    assert (v.term, v.voted_for, v.log, v.role) == (1, 0, (Entry(1, "x"),), Role.FOLLOWER)
    assert v.commit_index == 0 and v.match_index == ()


def test_pre_vote_changes_no_term_until_a_quorum_agrees() -> None:
    spec = RaftSpec(attrs.evolve(BIG, pre_vote=True))
    s = take(spec, spec.initial(), ev.Timeout(0))
    assert s.servers[0].role is Role.PRE_CANDIDATE and s.servers[0].term == 0
    s = take(spec, s, ev.RequestVote(0, 1))
    m = message(s, RequestVoteRequest, 0, 1)
    assert m.pre_vote and m.term == 1
    assert spec.step(s, ev.UpdateTerm(m)) is None, "a pre-vote must not bump the receiver's term"
    s = deliver(spec, s, RequestVoteRequest, 0, 1)
    assert s.servers[1].term == 0 and s.servers[1].voted_for is None
    assert spec.step(s, ev.BecomeCandidate(0)) is None
    [(grant, _)] = s.network
    s = take(spec, s, ev.HandleRequestVoteResponse(grant))
    s = take(spec, s, ev.BecomeCandidate(0))
    assert s.servers[0].role is Role.CANDIDATE and s.servers[0].term == 1


def test_check_quorum_makes_an_isolated_leader_step_down() -> None:
    spec = RaftSpec(attrs.evolve(BIG, check_quorum=True))
    s = elect(spec, spec.initial(), 0, [1])
    s = replicate(spec, s, 0, 1, 0)
    s = take(spec, s, ev.CheckQuorum(0))
    assert s.servers[0].role is Role.LEADER, "server 1 answered since the last check"
    s = take(spec, s, ev.CheckQuorum(0))
    assert s.servers[0].role is Role.FOLLOWER and s.servers[0].term == 1


def test_read_index_waits_for_a_term_commit_and_a_quorum() -> None:
    spec = RaftSpec(attrs.evolve(BIG, read_index=True))
    s = elect(spec, spec.initial(), 0, [1])
    assert spec.step(s, ev.ReadIndexRequest(0, 1)) is None, "nothing committed in its term yet"
    s = take(spec, s, ev.ClientRequest(0, "noop"))
    s = replicate(spec, s, 0, 1, 1)
    s = take(spec, s, ev.AdvanceCommitIndex(0, 1))
    s = take(spec, s, ev.ReadIndexRequest(0, 1))
    assert spec.step(s, ev.ReadIndexComplete(0, 1)) is None, "only the leader has confirmed"
    s = replicate(spec, s, 0, 2, 0)  # the heartbeat carries the read's context
    s = take(spec, s, ev.ReadIndexComplete(0, 1))
    [read] = s.reads
    assert read.index == 1 and read.required_index == 1


def test_a_follower_behind_the_snapshot_gets_it_installed() -> None:
    spec = RaftSpec(attrs.evolve(BIG, compaction=True))
    s = elect(spec, spec.initial(), 0, [1])
    s = take(spec, s, ev.ClientRequest(0, "x"))
    s = replicate(spec, s, 0, 1, 1)
    s = take(spec, s, ev.AdvanceCommitIndex(0, 1))
    s = take(spec, s, ev.CompactLog(0, 1))
    assert spec.step(s, ev.AppendEntries(0, 2, 1)) is None, "entry 1 is compacted away"
    s = take(spec, s, ev.InstallSnapshot(0, 2))
    s = deliver(spec, s, InstallSnapshotRequest, 0, 2)
    v = s.servers[2]
    assert (v.log, v.snapshot_index, v.commit_index) == ((Entry(1, "x"),), 1, 1)


def test_leadership_transfer_makes_the_target_campaign_at_once() -> None:
    spec = RaftSpec(attrs.evolve(BIG, leader_transfer=True, pre_vote=True))
    s = elect(spec, spec.initial(), 0, [1])
    s = take(spec, s, ev.ClientRequest(0, "x"))
    assert spec.step(s, ev.TransferLeadership(0, 1)) is None, "server 1 lacks the entry"
    s = replicate(spec, s, 0, 1, 1)
    s = take(spec, s, ev.TransferLeadership(0, 1))
    s = deliver(spec, s, TimeoutNowRequest, 0, 1)
    assert s.servers[1].role is Role.CANDIDATE and s.servers[1].term == 2


def test_switched_off_features_are_never_enabled() -> None:
    spec = RaftSpec(BIG)
    s = elect(spec, spec.initial(), 0, [1])
    for event in (
        ev.CheckQuorum(0),
        ev.ReadIndexRequest(0, 1),
        ev.CompactLog(0, 1),
        ev.InstallSnapshot(0, 1),
        ev.TransferLeadership(0, 1),
        ev.AppendEntries(0, 1, 2),
    ):
        assert spec.step(s, event) is None, event


def test_stale_responses_are_dropped_not_counted() -> None:
    spec = RaftSpec(BIG)
    s = take(spec, spec.initial(), ev.Timeout(0))
    s = take(spec, s, ev.RequestVote(0, 1))
    s = deliver(spec, s, RequestVoteRequest, 0, 1)
    s = take(spec, s, ev.Timeout(0))  # a new term: the old answer is stale
    [(answer, _)] = s.network
    assert spec.step(s, ev.HandleRequestVoteResponse(answer)) is None
    s = take(spec, s, ev.DropStaleResponse(answer))
    assert s.network == () and s.servers[0].votes_granted == {0}


def test_every_feature_at_once_runs_a_normal_case() -> None:
    spec = RaftSpec(all_features(BIG))
    s = elect(spec, spec.initial(), 0, [1, 2])
    s = take(spec, s, ev.ClientRequest(0, "x"))
    s = take(spec, s, ev.ClientRequest(0, "y"))
    s = take(spec, s, ev.AppendEntries(0, 1, 2))
    assert s.servers[0].next_index[1] == 3, "pipelining advances nextIndex on send"
    s = deliver(spec, s, AppendEntriesRequest, 0, 1)
    s = deliver(spec, s, AppendEntriesResponse, 1, 0)
    s = take(spec, s, ev.PersistEntries(0, 2))
    s = take(spec, s, ev.AdvanceCommitIndex(0, 2))
    assert s.servers[0].commit_index == 2


def test_a_leader_counts_itself_only_for_what_it_persisted() -> None:
    """parallel_persist: one follower's copy and the leader's unwritten one commit nothing;
    two followers' copies do without it; a crash loses the unwritten entries."""
    spec = RaftSpec(attrs.evolve(BIG, parallel_persist=True))
    s = elect(spec, spec.initial(), 0, [1, 2])
    s = take(spec, s, ev.ClientRequest(0, "x"))
    assert s.servers[0].match_index[0] == 0
    s = take(spec, s, ev.AppendEntries(0, 1, 1))
    s = deliver(spec, s, AppendEntriesRequest, 0, 1)
    s = deliver(spec, s, AppendEntriesResponse, 1, 0)
    assert spec.step(s, ev.AdvanceCommitIndex(0, 1)) is None, "counted its unwritten copy"
    lost = take(spec, s, ev.Restart(0))
    assert lost.servers[0].log == (), "a crash keeps what was never written"
    s = take(spec, s, ev.AppendEntries(0, 2, 1))
    s = deliver(spec, s, AppendEntriesRequest, 0, 2)
    s = deliver(spec, s, AppendEntriesResponse, 2, 0)
    s = take(spec, s, ev.AdvanceCommitIndex(0, 1))
    assert s.servers[0].commit_index == 1
    assert spec.step(s, ev.PersistEntries(0, 2)) is None, "beyond the log"
    s = take(spec, s, ev.PersistEntries(0, 1))
    assert take(spec, s, ev.Restart(0)).servers[0].log == s.servers[0].log
