"""Lease reads: the node's lease (granted by a quorum-acknowledged ReadIndex, expiring after
``lease_ticks``), the vote guard that protects it, and a 3-member cluster serving reads from it.

Node scenarios run on the spec-shadowed harness (every event replayed through the spec) with the
nodes rebuilt in lease-read mode: the lease is invisible to the spec, the guard's ignored vote
requests are DropMessage events.
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import attrs
import pytest
import trio

from raftkube.client import Client
from raftkube.raft import NodeConfig, NotLeaderError, RaftNode, RejectedError
from raftkube.server.member import LEASE, MemberConfig
from raftkube.server.wiring import RunningMember, open_member
from raftkube_spec.raft.messages import (
    RequestVoteRequest,
    RequestVoteResponse,
)
from raftkube_spec.raft.types import Role
from tests.helpers.raft_harness import Cluster

ET = 10


def lease_cluster(
    n: int = 3, seed: int = 0, *, check: bool = True, election_timeout: int = ET
) -> Cluster:
    c = Cluster(
        n,
        seed,
        check=check,
        election_timeout=election_timeout,
        lease=True,
        pre_vote=True,
        check_quorum=True,
        read_index=True,
        leader_transfer=True,
    )
    c.configs = [attrs.evolve(cfg, lease_read=True) for cfg in c.configs]
    c.nodes = [c._make_node(i) for i in range(n)]
    return c


def tick_all(c: Cluster) -> None:
    for i in range(c.n):
        c.tick(i)


def elect_and_commit(c: Cluster) -> int:
    """Tick every node in lockstep (the guard makes a lone node's campaign fail) until a
    leader has committed its no-op; returns it."""
    for _ in range(20 * ET):
        tick_all(c)
        c.deliver_all()
        leaders = c.leaders()
        if leaders and c.nodes[leaders[0]].commit == c.nodes[leaders[0]].last_index:
            return leaders[0]
    raise AssertionError("no leader")


def granted_lease(c: Cluster, read_id: int = 1) -> tuple[int, int]:
    """A leader with a lease from read ``read_id``; returns the leader and its tick count."""
    lead = elect_and_commit(c)
    c.read_index(lead, read_id)
    registered = c.nodes[lead]._ticks
    c.deliver_all()
    assert c.nodes[lead].lease_read_index() == c.nodes[lead].commit
    return lead, registered


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeout", "drift", "slack", "expected"),
    [(10, 0.1, 0, 7), (10, 0.0, 0, 9), (10, 0.5, 0, 3), (10, 0.1, 1, 6), (1, 0.1, 0, 0)],
)
def test_lease_ticks_formula(timeout: int, drift: float, slack: int, expected: int) -> None:
    cfg = NodeConfig(
        node_id=0, election_timeout=timeout, max_clock_drift=drift, lease_slack_ticks=slack
    )
    assert cfg.lease_ticks == expected


def test_lease_read_needs_its_protections() -> None:
    with pytest.raises(ValueError, match="lease_read needs"):
        NodeConfig(node_id=0, lease_read=True, read_index=True, lease=True)
    with pytest.raises(ValueError, match="max_clock_drift"):
        NodeConfig(node_id=0, max_clock_drift=1.0)
    with pytest.raises(ValueError):
        MemberConfig(member_id=0, servers=3, read_mode="sloppy")


# --- the lease --------------------------------------------------------------------------------


def test_no_lease_before_a_quorum_acknowledged_read() -> None:
    c = lease_cluster()
    lead = elect_and_commit(c)
    node = c.nodes[lead]
    assert node.lease_read_index() is None
    c.read_index(lead, 1)
    assert node.lease_read_index() is None  # Only its own acknowledgement so far.
    c.deliver_all()
    assert node.lease_read_index() == node.commit


def test_acks_of_messages_sent_before_the_read_grant_no_lease() -> None:
    c = lease_cluster()
    lead = elect_and_commit(c)
    node = c.nodes[lead]
    c.tick(lead)  # Heartbeats with no read context, sent before the read.
    before = len(c.network)
    assert before > 0
    c.read_index(lead, 1)
    for k in range(len(c.network) - 1, before - 1, -1):
        c.drop(k)  # Lose the read's own heartbeats.
    c.deliver_all()
    assert node.pending_reads and node.lease_read_index() is None


def test_the_lease_expires_after_lease_ticks() -> None:
    c = lease_cluster()
    lead, registered = granted_lease(c)
    node = c.nodes[lead]
    lease = node.config.lease_ticks
    assert lease == 7
    while node._ticks < registered + lease - 1:
        c.tick(lead)
        c.deliver_all()
    assert node.lease_read_index() == node.commit
    c.tick(lead)
    assert node.lease_read_index() is None
    # A new round renews it.
    c.deliver_all()
    c.read_index(lead, 2)
    c.deliver_all()
    assert node.lease_read_index() == node.commit


def test_no_lease_without_an_entry_committed_in_the_term() -> None:
    c = lease_cluster()
    for _ in range(20 * ET):
        tick_all(c)
        if any(n.role is Role.PRE_CANDIDATE for n in c.nodes):
            break
    # Deliver until a leader exists, but not its no-op's acknowledgements.
    while not c.leaders():
        c.deliver(0)
    lead = c.leaders()[0]
    node = c.nodes[lead]
    assert node.commit < node.last_index
    assert node.lease_read_index() is None
    with pytest.raises(RejectedError):
        node.read_index(1)


def test_stepping_down_ends_the_lease() -> None:
    c = lease_cluster(check=False)
    lead, _ = granted_lease(c)
    node = c.nodes[lead]
    other = next(j for j in node.config.peers)
    node.step(RequestVoteResponse(term=node.term + 1, source=other, dest=lead, granted=False))
    assert node.role is Role.FOLLOWER
    assert node.lease_read_index() is None


def test_transfer_is_refused() -> None:
    c = lease_cluster()
    lead = elect_and_commit(c)
    peer = c.nodes[lead].config.peers[0]
    with pytest.raises(RejectedError, match="lease-read mode"):
        c.nodes[lead].transfer_leadership(peer)


def test_lease_read_index_is_none_when_off_or_not_leading() -> None:
    plain = RaftNode(NodeConfig(node_id=0, check_quorum=True, read_index=True))
    assert plain.lease_read_index() is None
    c = lease_cluster()
    lead = elect_and_commit(c)
    follower = next(j for j in range(c.n) if j != lead)
    assert c.nodes[follower].lease_read_index() is None
    with pytest.raises(NotLeaderError):
        c.nodes[follower].read_index(1)


# --- the guard --------------------------------------------------------------------------------


def _vote_request(term: int, source: int, dest: int, node: RaftNode) -> RequestVoteRequest:
    return RequestVoteRequest(
        term=term,
        source=source,
        dest=dest,
        last_log_term=node.log.last_term,
        last_log_index=node.last_index,
    )


@pytest.mark.parametrize("lease_read", [True, False])
def test_a_higher_term_learnt_otherwise_does_not_lift_the_guard(lease_read: bool) -> None:
    """etcd's in-lease rule alone lets a late higher-term vote response clear the follower's
    leader, after which a vote request of that term is granted; the lease-read guard holds."""
    c = lease_cluster(check=False)
    if not lease_read:
        c.configs = [attrs.evolve(cfg, lease_read=False) for cfg in c.configs]
        c.nodes = [c._make_node(i) for i in range(c.n)]
    lead = elect_and_commit(c)
    f, x = (j for j in range(c.n) if j != lead)
    follower = c.nodes[f]
    term = follower.term + 1
    follower.step(RequestVoteResponse(term=term, source=x, dest=f, granted=False))
    assert follower.term == term and follower.leader is None
    follower.step(_vote_request(term, x, f, follower))
    c.flush(f)
    assert (follower.vote == x) is not lease_read


def test_a_restarted_node_refuses_votes_for_an_election_timeout() -> None:
    c = lease_cluster(check=False)
    lead = elect_and_commit(c)
    f = next(j for j in range(c.n) if j != lead)
    c.restart(f)
    node = c.nodes[f]
    for _ in range(ET - 1):
        node.tick()
    assert node.role is Role.FOLLOWER
    term = node.term
    node.step(_vote_request(term + 1, lead, f, node))
    assert node.term == term and not node.ready().messages
    node.tick()
    node.step(_vote_request(term + 1, lead, f, node))
    assert (node.term, node.vote) == (term + 1, lead)


# --- a random walk: conformance, and no stale lease read when clocks agree ---------------------


def lockstep_walk(seed: int, steps: int = 1500) -> int:
    """Every node ticks once per round (equal clock rates); messages are delivered, dropped
    and duplicated at random, one node at a time is cut off for a while, nodes restart. A lease
    read's index must be at least every node's commit index: no leader of a later term can
    have committed anything. Returns the number of lease reads served."""
    c = lease_cluster(3, seed, election_timeout=6)
    c.configs = [attrs.evolve(cfg, max_clock_drift=0.0) for cfg in c.configs]
    c.nodes = [c._make_node(i) for i in range(c.n)]
    rng = random.Random(seed)
    read_id = 0
    lease_reads = 0
    cut: int | None = None
    heal_at = 0
    rounds = 0
    for step in range(steps):
        action = rng.choices(
            ["round", "deliver", "drop", "duplicate", "restart", "cut", "propose", "read"],
            [1.0, 6.0, 0.3, 0.3, 0.05, 0.1, 0.8, 0.8],
        )[0]
        net = c.network
        if action == "round":
            tick_all(c)
            rounds += 1
            if rounds >= heal_at:
                cut = None
        elif action == "deliver" and net:
            k = rng.randrange(len(net))
            if cut in (net[k].source, net[k].dest):
                c.drop(k)
            else:
                c.deliver(k)
        elif action == "drop" and net:
            c.drop(rng.randrange(len(net)))
        elif action == "duplicate" and net and len(net) < 40:
            c.duplicate(rng.randrange(len(net)))
        elif action == "restart":
            c.restart(rng.randrange(c.n))
        elif action == "cut" and cut is None:
            cut, heal_at = rng.randrange(c.n), rounds + rng.randrange(1, 12)
        elif action == "propose" and c.leaders():
            c.propose(rng.choice(c.leaders()), f"v{step}")
        elif action == "read" and c.leaders():
            lead = rng.choice(c.leaders())
            index = c.nodes[lead].lease_read_index()
            if index is not None:
                lease_reads += 1
                assert all(n.commit <= index for n in c.nodes), "stale lease read"
            else:
                read_id = max(read_id, c.state.last_read_id) + 1
                with contextlib.suppress(RejectedError):
                    c.read_index(lead, read_id)
        c.check_all()
    return lease_reads


def test_random_lockstep_runs_conform_and_serve_no_stale_lease_read() -> None:
    assert sum(lockstep_walk(seed) for seed in range(8)) > 0


# --- three members ---------------------------------------------------------------------------


async def _run_member(
    i: int, tmp_path: Path, running: dict[int, RunningMember], task_status: trio.TaskStatus[None]
) -> None:
    cfg = MemberConfig(member_id=i, servers=3, cluster_id="lease", read_mode=LEASE)
    async with open_member(cfg, tmp_path / f"m{i}") as rm:
        running[i] = rm
        task_status.started()
        await trio.sleep_forever()


@pytest.mark.trio
async def test_members_serve_reads_from_the_lease_without_a_round_trip(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            running: dict[int, RunningMember] = {}
            for i in range(3):
                await nursery.start(_run_member, i, tmp_path, running)
            for a in running.values():
                for j, b in running.items():
                    a.add_peer(j, b.peer_address, b.client_endpoint)
            while not any(r.member.is_leader for r in running.values()):
                await trio.sleep(0.01)
            member = next(r.member for r in running.values() if r.member.is_leader)
            assert await member.transfer_leadership() is None  # Refused in lease mode.

            rounds = 0
            real_read_index = member.node.read_index

            def counting_read_index(read_id: int) -> None:
                nonlocal rounds
                rounds += 1
                real_read_index(read_id)

            member.node.read_index = counting_read_index  # type: ignore[method-assign]
            lease_terms: list[int] = []
            member.hooks.lease_read = lease_terms.append
            endpoint = running[member.id].client_endpoint
            async with Client([endpoint]) as client:
                await client.put(b"k", b"v1")
                # The first read does a round, which starts a lease; the next ones, right
                # after it, are served from the lease.
                while member.lease_reads == 0:
                    assert (await client.get(b"k")).kvs[0].value == b"v1"
                assert rounds >= 1
                before_rounds, before_leased = rounds, member.lease_reads
                await member.linearizable_barrier()
                await member.linearizable_barrier()
                if member.lease_reads == before_leased + 2:
                    assert rounds == before_rounds
                await client.put(b"k", b"v2")
                assert (await client.get(b"k")).kvs[0].value == b"v2"
            # The hook heard of every read served from the lease, in the leader's term.
            assert len(lease_terms) == member.lease_reads
            assert set(lease_terms) == {member.node.term}
            nursery.cancel_scope.cancel()
