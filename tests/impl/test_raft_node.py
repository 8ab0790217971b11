"""Scenarios for RaftNode, each run with the spec shadowing every step (see the harness)."""

from __future__ import annotations

import random

import pytest

from raftkube.raft import HardState, NodeConfig, NotLeaderError, RaftNode, RejectedError
from raftkube_spec.raft import events as ev
from raftkube_spec.raft.messages import (
    AppendEntriesRequest,
    InstallSnapshotRequest,
    RequestVoteRequest,
    RequestVoteResponse,
)
from raftkube_spec.raft.state import RaftState
from raftkube_spec.raft.types import Entry, Role
from tests.helpers.raft_harness import Cluster


def isolate(c: Cluster, i: int) -> None:
    """Drop every in-flight message to or from ``i``."""
    for k in range(len(c.network) - 1, -1, -1):
        m = c.network[k]
        if i in (m.source, m.dest):
            c.drop(k)


def deliver_without(c: Cluster, i: int) -> None:
    """Deliver until quiet, losing everything to or from ``i``."""
    while c.network:
        isolate(c, i)
        if c.network:
            c.deliver(0)
        c.check_all()


def heartbeat(c: Cluster, leader: int) -> None:
    for _ in range(c.nodes[leader].config.heartbeat_timeout):
        c.tick(leader)


def test_election() -> None:
    c = Cluster(3)
    c.elect(0)
    assert c.leaders() == [0]
    c.deliver_all()
    assert [n.term for n in c.nodes] == [1, 1, 1]
    assert [n.vote for n in c.nodes] == [0, 0, 0]
    # The no-op of the new term is committed everywhere after a heartbeat.
    heartbeat(c, 0)
    c.deliver_all()
    assert [n.commit for n in c.nodes] == [1, 1, 1]
    assert all(n.log.as_entries() == (Entry(1, b""),) for n in c.nodes)


def test_heartbeats_and_their_answers_hold_only_messages() -> None:
    """What the member sends without a pass through its ready loop: once everything is
    persisted and applied, a heartbeat and its acknowledgement carry nothing else."""
    c = Cluster(3)
    c.elect(0)
    c.deliver_all()
    heartbeat(c, 0)
    c.deliver_all()
    leader, follower = c.nodes[0], c.nodes[1]
    for _ in range(leader.config.heartbeat_timeout):
        leader.tick()
    assert leader.has_only_messages()
    c.flush(0)
    k = next(k for k, m in enumerate(c.network) if m.dest == 1)
    follower.step(c.network.pop(k))
    assert follower.has_only_messages()
    c.flush(1)
    leader.propose(b"x")
    assert leader.has_ready() and not leader.has_only_messages()  # an entry to persist


def test_a_follower_refuses_proposals() -> None:
    c = Cluster(3)
    c.elect(0)
    with pytest.raises(NotLeaderError):
        c.propose(1, "x")


def test_replication_and_commit() -> None:
    c = Cluster(5, max_batch=2)
    c.elect(2)
    indexes = [c.propose(2, f"v{k}") for k in range(5)]
    assert indexes == [2, 3, 4, 5, 6]
    c.deliver_all()
    heartbeat(c, 2)
    c.deliver_all()
    assert all(n.commit == 6 for n in c.nodes)
    expected = [Entry(1, b""), *(Entry(1, f"v{k}") for k in range(5))]
    assert all(applied == expected for applied in c.applied)


def test_pipelining_sends_ahead_of_answers() -> None:
    c = Cluster(3, max_batch=1, max_inflight=3, pipelining=True)
    c.elect(0)
    c.deliver_all()
    sent_before = len(c.network)
    for k in range(4):
        c.propose(0, k)
    appends = [m for m in c.network[sent_before:] if isinstance(m, AppendEntriesRequest)]
    # Three appends in flight to each follower, the fourth waits for the window.
    assert sorted(m.prev_log_index for m in appends if m.dest == 1) == [1, 2, 3]
    c.deliver_all()
    assert c.nodes[0].commit == 5
    assert c.nodes[0].match_index(1) == 5


def test_after_a_rejection_one_append_at_a_time_until_one_is_accepted() -> None:
    """A lagging follower rejects; the leader probes with one append, not a window of them.
    Refilling the window on every rejection let rejections of appends already in flight each
    refill it again: a message storm (found by the raft fuzz suite, batches of one)."""
    c = Cluster(3, max_batch=1, max_inflight=8, pipelining=True)
    c.elect(0)
    c.deliver_all()
    for k in range(6):
        c.propose(0, f"v{k}")
    deliver_without(c, 2)
    assert c.nodes[2].log.last_index == 1 and c.nodes[0].log.last_index == 7
    heartbeat(c, 0)
    most_in_flight = 0
    while c.network and c.nodes[0].match_index(2) < 2:
        c.deliver(0)
        c.check_all()
        if c.nodes[0].match_index(2) < 2:
            appends = [
                m
                for m in c.network
                if isinstance(m, AppendEntriesRequest) and m.dest == 2 and m.entries
            ]
            most_in_flight = max(most_in_flight, len(appends))
    assert c.nodes[0].match_index(2) >= 2, "the probe got through"
    assert most_in_flight == 1
    c.deliver_all()
    assert c.nodes[2].log.last_index == 7


def test_restart_from_persisted_state() -> None:
    c = Cluster(3)
    c.elect(0)
    c.propose(0, "a")
    c.deliver_all()
    heartbeat(c, 0)
    c.deliver_all()
    assert c.nodes[1].commit == 2
    c.restart(1)
    node = c.nodes[1]
    assert (node.term, node.vote, node.role) == (1, 0, Role.FOLLOWER)
    assert node.log.as_entries() == (Entry(1, b""), Entry(1, "a"))
    assert node.commit == 0  # As in the spec: the commit index is relearned.
    heartbeat(c, 0)
    c.deliver_all()
    assert c.nodes[1].commit == 2
    # The leader restarts too: it comes back a follower and a new election follows.
    c.restart(0)
    assert c.leaders() == []
    c.elect(2)
    assert c.nodes[2].term == 2


def test_a_leader_sends_first_and_counts_itself_only_once_its_entry_is_durable() -> None:
    """Ready.send_before_persist: a leader's appends may leave before its own write; one
    follower's acknowledgement then commits nothing until the driver advances the Ready."""
    c = Cluster(3)
    c.elect(0)
    while c.network:  # the followers acknowledge the new leader's first entry
        c.deliver(0)
    leader = c.nodes[0]
    index = leader.propose("x")
    rd = leader.ready()
    assert rd.send_before_persist and rd.must_sync and rd.entries
    (append,) = (m for m in rd.messages if m.dest == 1)
    c.nodes[1].step(append)
    follower_rd = c.nodes[1].ready()
    assert not follower_rd.send_before_persist, "a follower's answer vouches for its write"
    c.disks[1].write(follower_rd)
    c.nodes[1].advance(follower_rd)
    (answer,) = follower_rd.messages
    leader.step(answer)
    assert leader.match_index(1) == index and leader.commit < index
    c.disks[0].write(rd)
    leader.advance(rd)
    assert leader.match_index(0) == index and leader.commit == index


def test_a_campaign_is_never_sent_before_its_term_is_durable() -> None:
    c = Cluster(3)
    node = c.nodes[0]
    while node.role is Role.FOLLOWER:
        node.tick()
    rd = node.ready()
    assert rd.hard_state is not None and rd.messages
    assert not rd.send_before_persist


def test_current_term_commit_rule() -> None:
    """Figure 8: an entry of an older term is not committed by counting replicas."""
    c = Cluster(3)
    c.disks[0].hard_state = HardState(term=1, vote=0)
    c.disks[0].entries = [Entry(1, "old")]
    for i in (1, 2):
        c.disks[i].hard_state = HardState(term=1, vote=0)
    # Bring the spec along: the same state, reached by the spec's own steps.
    c.check = False
    c.nodes = [c._make_node(i) for i in range(3)]
    c.check = True
    c.state = _spec_state_with_old_entry(c)
    for i in range(3):
        c.nodes[i]._observer = c._observe
    c.elect(0)
    leader = c.nodes[0]
    assert leader.term == 2
    old_entry_on_quorum_uncommitted = False
    while c.network:
        c.deliver(0)
        c.check_all()
        # Index 1 (term 1) on a follower is on a quorum, with the leader.
        on_quorum = leader.match_index(1) >= 1 or leader.match_index(2) >= 1
        if on_quorum and leader.commit == 0:
            old_entry_on_quorum_uncommitted = True
        assert leader.commit in (0, 2), "index 1 was committed on its own"
    assert old_entry_on_quorum_uncommitted
    assert leader.commit == 2


def _spec_state_with_old_entry(c: Cluster) -> RaftState:
    """The spec state where server 0 led term 1 and appended "old", and all voted for it."""

    def step(s: RaftState, e: ev.Event) -> RaftState:
        t = c.spec.step(s, e)
        assert t is not None, e
        return t

    s = step(c.spec.initial(), ev.Timeout(0))
    for j in (1, 2):
        s = step(s, ev.RequestVote(0, j))
        req = RequestVoteRequest(1, 0, j, 0, 0)
        s = step(s, ev.UpdateTerm(req))
        s = step(s, ev.HandleRequestVoteRequest(req))
        (answer,) = (m for m, _ in s.network if m.dest == 0)
        assert isinstance(answer, RequestVoteResponse)
        s = step(s, ev.HandleRequestVoteResponse(answer))
    s = step(s, ev.BecomeLeader(0))
    s = step(s, ev.ClientRequest(0, "old"))
    s = step(s, ev.PersistEntries(0, 1))  # on server 0's disk, as the test's disks say
    s = step(s, ev.Restart(0))
    for m, _ in s.network:
        s = step(s, ev.DropMessage(m))
    return s


def test_pre_vote_does_not_bump_terms() -> None:
    c = Cluster(3, pre_vote=True)
    c.elect(0)
    c.propose(0, "a")
    deliver_without(c, 2)
    for _ in range(50):
        c.tick(2)
        isolate(c, 2)
        c.check_all()
    assert c.nodes[2].role is Role.PRE_CANDIDATE
    assert c.nodes[2].term == 1
    # Reconnected, its pre-votes are refused (its log is behind) and nobody's term moves.
    while not any(isinstance(m, RequestVoteRequest) and m.pre_vote for m in c.network):
        c.tick(2)
    c.deliver_all()
    assert [n.term for n in c.nodes] == [1, 1, 1]
    assert c.leaders() == [0]


def test_without_pre_vote_a_partitioned_node_disrupts() -> None:
    c = Cluster(3)
    c.elect(0)
    c.propose(0, "a")
    deliver_without(c, 2)
    for _ in range(50):
        c.tick(2)
        isolate(c, 2)
    assert c.nodes[2].term > 1


def test_check_quorum_steps_down_a_partitioned_leader() -> None:
    c = Cluster(3, check_quorum=True)
    c.elect(0)
    c.deliver_all()
    for _ in range(2 * c.nodes[0].config.election_timeout):
        c.tick(0)
        isolate(c, 0)
        c.check_all()
    assert c.nodes[0].role is Role.FOLLOWER
    assert c.nodes[0].term == 1
    assert any(isinstance(e, ev.CheckQuorum) for e in c.events)


def test_check_quorum_keeps_a_connected_leader() -> None:
    c = Cluster(3, check_quorum=True)
    c.elect(0)
    for _ in range(5 * c.nodes[0].config.election_timeout):
        c.tick(0)
        c.deliver_all()
    assert c.leaders() == [0]


def test_read_index() -> None:
    c = Cluster(3, read_index=True)
    c.elect(0)
    with pytest.raises(RejectedError):
        c.read_index(0, 1)  # The no-op of term 1 is not committed yet.
    with pytest.raises(NotLeaderError):
        c.read_index(1, 1)
    heartbeat(c, 0)
    c.deliver_all()
    c.read_index(0, 1)
    assert c.reads == []
    c.deliver_all()
    assert c.reads == [(0, 1, 1)]


def test_read_index_is_not_served_by_a_deposed_leader() -> None:
    c = Cluster(3, read_index=True)
    c.elect(0)
    heartbeat(c, 0)
    c.deliver_all()
    c.read_index(0, 1)
    isolate(c, 0)
    c.elect(1)
    c.deliver_all()
    assert c.reads == []
    assert c.nodes[0].role is Role.FOLLOWER


def test_snapshot_install() -> None:
    c = Cluster(3, compaction=True, max_batch=3)
    c.elect(0)
    for k in range(5):
        c.propose(0, k)
    deliver_without(c, 2)
    heartbeat(c, 0)
    deliver_without(c, 2)
    assert c.nodes[0].commit == 6
    c.compact(0, 5)
    assert c.nodes[0].log.first_index == 6
    assert c.disks[0].snapshot.index == 5
    heartbeat(c, 0)
    assert any(isinstance(m, InstallSnapshotRequest) and m.dest == 2 for m in c.network)
    c.deliver_all()
    heartbeat(c, 0)
    c.deliver_all()
    follower = c.nodes[2]
    assert follower.log.snapshot.index == 5
    assert follower.log.as_entries() == c.nodes[0].log.as_entries()
    assert follower.commit == 6
    assert c.applied[2] == c.applied[0]
    c.restart(2)
    assert c.nodes[2].commit == 5


def test_compaction_bounds() -> None:
    c = Cluster(3, compaction=True)
    c.elect(0)
    with pytest.raises(RejectedError):
        c.compact(0, 1)  # Not committed yet.


def test_leadership_transfer() -> None:
    c = Cluster(3, leader_transfer=True, pre_vote=True)
    c.elect(0)
    c.propose(0, "x")
    with pytest.raises(RejectedError):
        c.transfer(0, 1)  # Not caught up.
    c.deliver_all()
    c.transfer(0, 1)
    c.deliver_all()
    assert c.leaders() == [1]
    assert c.nodes[1].term == 2


def test_no_observer_costs_nothing_and_still_works() -> None:
    nodes = [RaftNode(NodeConfig(i, 3), random.Random(i)) for i in range(3)]
    for _ in range(40):
        nodes[0].tick()
        if nodes[0].role is not Role.FOLLOWER:
            break
    queue = list(nodes[0].ready().messages)
    nodes[0].advance(nodes[0].ready())
    while queue:
        m = queue.pop(0)
        nodes[m.dest].step(m)
        rd = nodes[m.dest].ready()
        queue.extend(rd.messages)
        nodes[m.dest].advance(rd)
    assert nodes[0].role is Role.LEADER


def test_the_ready_hook_sees_every_ready_handed_out() -> None:
    node = RaftNode(NodeConfig(node_id=0))
    seen: list[object] = []
    node.on_ready = seen.append
    while node.role is not Role.CANDIDATE:
        node.tick()
    first = node.ready()
    assert first.hard_state is not None and first.messages  # a new term, vote requests
    node.advance(first)
    second = node.ready()
    assert seen == [first, second]
    node.on_ready = None
    node.ready()
    assert len(seen) == 2
