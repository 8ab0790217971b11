"""Membership changes in the Raft model: the rules of single-server changes, learners, and the
exhaustive check at small bounds (the mutant of Ongaro's bug is in test_model_check.py)."""

from __future__ import annotations

import attrs
import pytest

from raftkube.cli import main
from raftkube_spec.explore import Problem, explore
from raftkube_spec.raft import events as ev
from raftkube_spec.raft.config import RaftConfig
from raftkube_spec.raft.invariants import state_violation, step_violation
from raftkube_spec.raft.model import RaftSpec, handler_event
from raftkube_spec.raft.mutants import MUTANTS
from raftkube_spec.raft.state import RaftState
from raftkube_spec.raft.types import Membership, Role

# Two voters and a spare: the smallest cluster in which a server can be added and promoted.
CONFIG = RaftConfig(servers=3, membership=True, spares=1, max_term=2, max_log=3, max_messages=1)


def run(spec: RaftSpec, s: RaftState, *events: ev.Event) -> RaftState:
    for event in events:
        t = spec.step(s, event)
        assert t is not None, f"{event} is not enabled"
        s = t
    return s


def deliver(spec: RaftSpec, s: RaftState) -> RaftState:
    """Receive the one message in flight (with UpdateTerm first if it has a higher term)."""
    while s.network:
        m = s.network[0][0]
        if m.term > s.servers[m.dest].term:
            s = run(spec, s, ev.UpdateTerm(m))
        s = run(spec, s, handler_event(m))
    return s


def elect(spec: RaftSpec, s: RaftState, leader: int, *voters: int) -> RaftState:
    s = run(spec, s, ev.Timeout(leader))
    for j in voters:
        s = deliver(spec, run(spec, s, ev.RequestVote(leader, j)))
    return run(spec, s, ev.BecomeLeader(leader))


def replicate(spec: RaftSpec, s: RaftState, leader: int, peer: int) -> RaftState:
    """Send ``peer`` every entry it lacks, one at a time, with the answers."""
    while s.servers[leader].match_index[peer] < s.servers[leader].last_index:
        s = deliver(spec, run(spec, s, ev.AppendEntries(leader, peer, 1)))
    return s


def commit(spec: RaftSpec, s: RaftState, leader: int) -> RaftState:
    v = s.servers[leader]
    return run(spec, s, ev.AdvanceCommitIndex(leader, spec.commit_candidate(v)))


def test_only_the_initial_voters_campaign_and_the_spare_is_outside() -> None:
    spec = RaftSpec(CONFIG)
    s = spec.initial()
    assert spec.members(s.servers[0]) == Membership(voters=(0, 1))
    assert spec.step(s, ev.Timeout(2)) is None
    assert spec.step(s, ev.Timeout(0)) is not None


def test_a_new_leader_changes_membership_only_after_committing_its_own_term() -> None:
    spec = RaftSpec(CONFIG)
    s = elect(spec, spec.initial(), 0, 1)
    assert spec.step(s, ev.AddMember(0, 2, learner=True)) is None
    s = run(spec, s, ev.ClientRequest(0, "v"))
    assert spec.step(s, ev.AddMember(0, 2, learner=True)) is None  # not committed yet
    s = commit(spec, replicate(spec, s, 0, 1), 0)
    s = run(spec, s, ev.AddMember(0, 2, learner=True))
    # In force on the leader at once, before it is committed...
    assert spec.members(s.servers[0]) == Membership(voters=(0, 1), learners=(2,))
    # ...and while it is uncommitted no second change may be proposed.
    assert spec.step(s, ev.PromoteMember(0, 2)) is None
    assert spec.step(s, ev.RemoveMember(0, 1)) is None
    # A leader never removes itself (it hands over leadership first).
    s = commit(spec, replicate(spec, s, 0, 1), 0)
    assert spec.step(s, ev.RemoveMember(0, 0)) is None


def test_a_learner_gets_the_log_counts_for_nothing_and_votes_once_promoted() -> None:
    spec = RaftSpec(CONFIG)
    s = elect(spec, spec.initial(), 0, 1)
    s = commit(spec, replicate(spec, run(spec, s, ev.ClientRequest(0, "v")), 0, 1), 0)
    s = run(spec, s, ev.AddMember(0, 2, learner=True))
    s = replicate(spec, s, 0, 2)
    assert s.servers[2].log == s.servers[0].log
    # The learner holds index 2 but is not a voter: with 1 silent, nothing commits.
    assert spec.commit_candidate(s.servers[0]) == 1
    assert spec.step(s, ev.Timeout(2)) is None  # a learner never campaigns
    s = commit(spec, replicate(spec, s, 0, 1), 0)
    s = run(spec, s, ev.PromoteMember(0, 2))
    assert spec.members(s.servers[0]) == Membership(voters=(0, 1, 2))
    # Three voters now: the promotion commits on the leader and the new voter, without 1.
    s = commit(spec, replicate(spec, s, 0, 2), 0)
    assert s.servers[0].commit_index == 3
    # The promoted server campaigns, and server 1 alone is no longer a quorum for it.
    s = run(spec, s, ev.Timeout(2))
    assert s.servers[2].role is Role.CANDIDATE
    assert spec.step(s, ev.BecomeLeader(2)) is None


def test_removing_a_voter_shrinks_the_quorum_on_the_leader_at_once() -> None:
    spec = RaftSpec(CONFIG)
    s = elect(spec, spec.initial(), 0, 1)
    s = commit(spec, replicate(spec, run(spec, s, ev.ClientRequest(0, "v")), 0, 1), 0)
    s = run(spec, s, ev.RemoveMember(0, 1))
    assert spec.members(s.servers[0]) == Membership(voters=(0,))
    # Alone in its configuration, the leader commits its removal of 1 by itself and no
    # longer sends to server 1.
    s = commit(spec, s, 0)
    assert s.servers[0].commit_index == 2
    assert spec.step(s, ev.AppendEntries(0, 1, 0)) is None


def test_a_truncated_configuration_entry_no_longer_applies() -> None:
    spec = RaftSpec(attrs.evolve(CONFIG, servers=4, max_term=3))
    s = elect(spec, spec.initial(), 0, 1)
    s = run(spec, s, ev.ClientRequest(0, "v"))
    s = commit(spec, replicate(spec, replicate(spec, s, 0, 1), 0, 2), 0)
    s = run(spec, s, ev.AddMember(0, 3, learner=False))  # reaches no one
    assert spec.members(s.servers[0]) == Membership(voters=(0, 1, 2, 3))
    # Server 1 takes over in term 2 with 2's vote and overwrites index 2 on server 0.
    s = elect(spec, s, 1, 2)
    s = run(spec, s, ev.ClientRequest(1, "w"))
    s = replicate(spec, s, 1, 0)
    assert s.servers[0].log[1].value == "w"
    assert spec.members(s.servers[0]) == Membership(voters=(0, 1, 2))


def test_the_model_with_membership_satisfies_every_property_at_small_bounds() -> None:
    spec = RaftSpec(attrs.evolve(CONFIG, max_log=2))
    problem: Problem[RaftState, ev.Event] = Problem(
        initial=[spec.initial()],
        successors=spec.successors,
        check_state=state_violation,
        check_step=step_violation,
    )
    result = explore(problem)
    assert result.violation is None
    assert result.complete and result.distinct_states > 20_000


def test_the_correct_model_refuses_the_mutants_premature_change() -> None:
    mutant = MUTANTS["config-change-before-own-term-commit"]
    correct = RaftSpec(mutant.configure(RaftConfig()))
    with pytest.raises(ValueError, match="AddMember"):
        mutant.start(correct)


def test_cli_checks_membership(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "spec",
            "check",
            "--membership",
            "--spares",
            "1",
            "--max-term",
            "1",
            "--max-log",
            "2",
            "--max-messages",
            "1",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "features: membership" in out and "spares 1" in out
    assert "no violation (complete)" in out


def test_cli_refuses_spares_that_leave_no_voter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "check", "--membership", "--spares", "3"]) == 2
    assert "spares must be in 0..2, got 3" in capsys.readouterr().out
