"""Membership changes in the implementation: RaftNode's add/promote/remove_member, each step
replayed through the spec by the harness (conformance), and recovery from disk."""

from __future__ import annotations

import random

import pytest

from raftkube.raft import NodeConfig, RaftNode, RejectedError, Snapshot
from raftkube_spec.raft.types import Entry, Membership, Role
from tests.helpers.raft_harness import Cluster


def cluster(seed: int = 0) -> Cluster:
    """Three voters and a spare (server 3), ready to be added."""
    return Cluster(4, seed, membership=True, spares=1, check_invariants_each_event=True)


def settled_leader(c: Cluster, i: int = 0) -> Cluster:
    c.elect(i)
    c.deliver_all()  # the leader's empty entry commits: changes are allowed from here
    return c


def test_a_spare_never_campaigns_and_is_outside_the_initial_configuration() -> None:
    c = cluster()
    for _ in range(100):
        c.tick(3)
    assert c.nodes[3].role is Role.FOLLOWER and not c.network
    assert c.nodes[0].membership == Membership(voters=(0, 1, 2))


def test_a_new_leader_refuses_a_change_until_it_commits_its_own_entry() -> None:
    c = cluster()
    c.elect(0)  # its empty entry is still in flight
    with pytest.raises(RejectedError, match="pending"):
        c.nodes[0].add_member(3, learner=True)
    c.deliver_all()
    c.nodes[0].add_member(3, learner=True)
    c.flush(0)
    with pytest.raises(RejectedError, match="pending"):
        c.nodes[0].promote_member(3)  # the first change is not committed yet
    with pytest.raises(RejectedError, match="transfer leadership"):
        c.deliver_all()
        c.nodes[0].remove_member(0)


def test_learner_is_caught_up_then_promoted_then_a_voter_is_removed() -> None:
    c = settled_leader(cluster())
    c.nodes[0].add_member(3, learner=True)
    c.flush(0)
    c.deliver_all()
    assert c.nodes[3].log.as_entries() == c.nodes[0].log.as_entries()
    assert c.nodes[3].membership == Membership(voters=(0, 1, 2), learners=(3,))
    # A learner never campaigns, even with a log as good as anyone's.
    for _ in range(100):
        c.tick(3)
    assert c.nodes[3].role is Role.FOLLOWER

    c.nodes[0].promote_member(3)
    c.flush(0)
    c.deliver_all()
    assert all(n.membership.voters == (0, 1, 2, 3) for n in c.nodes)
    # Four voters: with 1 and 2 cut off, 0 and 3 are not a quorum, so nothing commits.
    commit = c.nodes[0].commit
    c.propose(0, b"x")
    c.deliver_all(only={0, 3})
    assert c.nodes[0].commit == commit
    c.deliver_all()
    assert c.nodes[0].commit == commit + 1

    c.nodes[0].remove_member(1)
    c.flush(0)
    c.deliver_all()
    assert c.nodes[0].membership == Membership(voters=(0, 2, 3))
    # Server 1 gets nothing more, and the rest commit without it.
    c.propose(0, b"y")
    c.deliver_all()
    assert c.nodes[1].log.last_index < c.nodes[0].log.last_index == c.nodes[0].commit
    assert not any(m.dest == 1 for m in c.network)


def test_a_restarted_member_recovers_its_configuration_from_its_log() -> None:
    c = settled_leader(cluster())
    c.nodes[0].add_member(3, learner=False)
    c.flush(0)
    c.deliver_all()
    for i in range(4):
        c.restart(i)
        assert c.nodes[i].membership == Membership(voters=(0, 1, 2, 3))
        assert c.nodes[i].membership_index == 2
    c.check_all()


@pytest.mark.parametrize("seed", range(4))
def test_random_membership_changes_conform_to_the_spec(seed: int) -> None:
    """Changes, client writes, elections, restarts and lost messages in a random order, every
    event replayed through the spec and every invariant checked after each one."""
    rng = random.Random(seed)
    c = settled_leader(cluster(seed))
    changes = 0
    for _ in range(400):
        action = rng.choice(("tick", "tick", "deliver", "deliver", "deliver", "drop", "change"))
        if action == "tick":
            c.tick(rng.randrange(4))
        elif action == "deliver" and c.network:
            c.deliver(rng.randrange(len(c.network)))
        elif action == "drop" and c.network and rng.random() < 0.2:
            c.drop(rng.randrange(len(c.network)))
        elif action == "change":
            leaders = c.leaders()
            if leaders:
                node = c.nodes[leaders[0]]
                peer = rng.randrange(4)
                kind = rng.choice(("add", "promote", "remove", "write"))
                try:
                    if kind == "add":
                        node.add_member(peer, learner=rng.random() < 0.5)
                    elif kind == "promote":
                        node.promote_member(peer)
                    elif kind == "remove":
                        node.remove_member(peer)
                    else:
                        node.propose(b"w")
                    changes += 1
                except RejectedError:
                    pass
                c.flush(leaders[0])
            elif rng.random() < 0.05:
                c.restart(rng.randrange(4))
        c.check_all()
    assert changes > 0


def test_a_premature_change_is_refused_by_the_spec_conformance_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The harness has teeth for the rule: a node that lets a new leader change membership
    before committing an entry of its term (Ongaro's bug) reports an AddMember the spec does
    not enable."""
    monkeypatch.setattr(RaftNode, "_may_change_membership", lambda self: True)
    c = cluster()
    c.elect(0)  # its empty entry is still in flight
    with pytest.raises(AssertionError, match="not enabled in the spec: AddMember"):
        c.nodes[0].add_member(3, learner=False)


def test_the_tracker_reads_a_spec_snapshot_and_leaves_a_members_image_alone() -> None:
    conf = Membership(voters=(0, 1, 2, 3))
    prefix = (Entry(1, b""), Entry(1, conf), Entry(1, b"x"))
    with_conf = NodeConfig(node_id=0, servers=4, membership=True, spares=1)
    node = RaftNode(with_conf, snapshot=Snapshot(3, 1, prefix))
    assert (node.membership, node.membership_index) == (conf, 2)
    # A member's snapshot is one image entry standing for the whole prefix: without
    # membership changes nothing is searched; with them it cannot say what is in force
    # unless the configuration rides beside the image, which then counts from the snapshot.
    image = Snapshot(3, 1, (Entry(1, b"image"),))
    plain = RaftNode(NodeConfig(node_id=0, servers=3), snapshot=image)
    assert plain.membership == Membership(voters=(0, 1, 2))
    with pytest.raises(ValueError, match="does not say which configuration"):
        RaftNode(with_conf, snapshot=image)
    grown = Snapshot(3, 1, (Entry(1, b"image"), Entry(1, conf)))
    node = RaftNode(with_conf, snapshot=grown)
    assert (node.membership, node.membership_index) == (conf, 3)
