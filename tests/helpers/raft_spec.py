"""Small helpers for driving the Raft model step by step in tests."""

from __future__ import annotations

from raftkube_spec.raft import events as ev
from raftkube_spec.raft.invariants import first_violation
from raftkube_spec.raft.messages import Message
from raftkube_spec.raft.model import RaftSpec
from raftkube_spec.raft.state import RaftState


def take(spec: RaftSpec, s: RaftState, event: ev.Event) -> RaftState:
    """Apply an event that must be enabled, and check every property on the way."""
    t = spec.step(s, event)
    assert t is not None, f"{event} is not enabled"
    assert first_violation(s, t) is None, first_violation(s, t)
    return t


def message(s: RaftState, kind: type, source: int, dest: int) -> Message:
    found = [
        m for m, _ in s.network if isinstance(m, kind) and (m.source, m.dest) == (source, dest)
    ]
    assert len(found) == 1, f"expected one {kind.__name__} {source}->{dest}, found {found}"
    return found[0]


def deliver(spec: RaftSpec, s: RaftState, kind: type, source: int, dest: int) -> RaftState:
    """Deliver the one message of ``kind`` from ``source`` to ``dest`` to its handler."""
    m = message(s, kind, source, dest)
    if m.term > s.servers[dest].term and spec.step(s, ev.UpdateTerm(m)) is not None:
        s = take(spec, s, ev.UpdateTerm(m))
    for event in spec.candidate_events(s):
        if type(event).__name__.startswith("Handle") and getattr(event, "message", None) == m:
            return take(spec, s, event)
    raise AssertionError(f"no handler for {m}")


def elect(spec: RaftSpec, s: RaftState, leader: int, voters: list[int]) -> RaftState:
    """Run a full election of ``leader`` with the votes of ``voters``."""
    from raftkube_spec.raft.messages import RequestVoteRequest, RequestVoteResponse

    s = take(spec, s, ev.Timeout(leader))
    if spec.config.pre_vote:
        for j in voters:
            s = take(spec, s, ev.RequestVote(leader, j))
            s = deliver(spec, s, RequestVoteRequest, leader, j)
            s = deliver(spec, s, RequestVoteResponse, j, leader)
        s = take(spec, s, ev.BecomeCandidate(leader))
    for j in voters:
        s = take(spec, s, ev.RequestVote(leader, j))
        s = deliver(spec, s, RequestVoteRequest, leader, j)
        s = deliver(spec, s, RequestVoteResponse, j, leader)
    return take(spec, s, ev.BecomeLeader(leader))
