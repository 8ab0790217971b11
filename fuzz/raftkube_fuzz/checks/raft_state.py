"""The spec's view of real Raft nodes: what a :class:`~raftkube.raft.RaftNode` *is*, in the
vocabulary of :class:`~raftkube_spec.raft.state.ServerState`.

Two uses. Conformance compares one node with its spec server after every event, through
:func:`node_fields` and :func:`spec_fields`, two flat dicts of the same keys. And
:func:`abstract_state` builds a whole :class:`~raftkube_spec.raft.state.RaftState` from the real
nodes, so the spec's invariants can be evaluated on what the implementation holds right now,
between events too.

Snapshot normalization (see :mod:`raftkube_fuzz.checks.conformance`): a member replaces the
core's snapshot data by one synthetic MVCC-image entry, so a node's compacted prefix is not the
spec's. Both views therefore describe a log by its snapshot index, the term at that index, the
live entries above it and the total length; the abstract state borrows the compacted prefix
from the spec server, which keeps the literal entries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from raftkube.raft import NodeConfig, RaftNode
from raftkube_spec.raft.model import RaftSpec
from raftkube_spec.raft.state import PendingRead, RaftState, ServerState
from raftkube_spec.raft.types import Role


def node_fields(node: RaftNode) -> dict[str, Any]:
    """The spec-visible state of ``node``, its log normalized (see module docstring)."""
    log = node.log
    fields: dict[str, Any] = {
        "term": node.term,
        "role": node.role,
        "voted_for": node.vote,
        "snapshot_index": log.snapshot.index,
        "snapshot_term": log.snapshot.term,
        "last_index": log.last_index,
        "live_log": tuple(log.entries),
        "commit_index": node.commit,
        "votes_granted": frozenset(node.votes_granted),
        "votes_responded": frozenset(node.votes_responded),
        "recent_active": frozenset(node.recent_active),
        "pending_reads": tuple((r.read_id, r.index, frozenset(r.acks)) for r in node.pending_reads),
    }
    if node.role is Role.LEADER:
        for j in node.config.peers:
            fields[f"next[{j}]"] = node.next_index(j)
            fields[f"match[{j}]"] = node.match_index(j)
        fields["match[self]"] = node.match_index(node.id)
    return fields


def spec_fields(v: ServerState, server: int) -> dict[str, Any]:
    """The same keys as :func:`node_fields`, for spec server ``server`` in state ``v``."""
    snap = v.snapshot_index
    fields: dict[str, Any] = {
        "term": v.term,
        "role": v.role,
        "voted_for": v.voted_for,
        "snapshot_index": snap,
        "snapshot_term": v.term_at(snap),
        "last_index": v.last_index,
        "live_log": v.log[snap:],
        "commit_index": v.commit_index,
        "votes_granted": v.votes_granted,
        "votes_responded": v.votes_responded,
        "recent_active": v.recent_active,
        "pending_reads": tuple((r.read_id, r.index, r.acks) for r in v.pending_reads),
    }
    if v.role is Role.LEADER:
        for j in range(len(v.match_index)):
            if j != server:
                fields[f"next[{j}]"] = v.next_index[j]
                fields[f"match[{j}]"] = v.match_index[j]
        fields["match[self]"] = v.match_index[server]
    return fields


def spec_peers(config: NodeConfig, server: int, servers: int) -> tuple[int, ...] | None:
    """``config.peers`` if they are exactly the spec's other servers (the leader fields of
    :func:`node_fields` and :func:`spec_fields` then have the same keys), else None. A node's
    configuration is frozen, so a caller may keep the answer as long as the node keeps the
    very same configuration object: computing the peers costs more than the rest of a
    comparison."""
    peers = config.peers
    if sorted(peers) != [j for j in range(servers) if j != server]:
        return None
    return peers


def matches_spec(
    node: RaftNode,
    v: ServerState,
    server: int,
    read_id: Callable[[int], int],
    peers: tuple[int, ...] | None,
) -> bool:
    """Whether ``node_fields(node)``, its read ids renamed by ``read_id``, equals
    ``spec_fields(v, server)``: the same comparisons field by field, without building either
    dict, for the common case. ``peers`` is :func:`spec_peers` of the node's configuration.
    It may answer False for a state that matches (then the caller's full comparison decides);
    it answers True only when every field would compare equal."""
    log = node.log
    snap = v.snapshot_index
    if (
        node.term != v.term
        or node.role != v.role
        or node.vote != v.voted_for
        or node.commit != v.commit_index
        or log.snapshot.index != snap
        or log.snapshot.term != v.term_at(snap)
        or log.last_index != v.last_index
        or node.votes_granted != v.votes_granted
        or node.votes_responded != v.votes_responded
        or node.recent_active != v.recent_active
        or tuple(log.entries) != v.log[snap:]
    ):
        return False
    if node.pending_reads or v.pending_reads:
        mine = tuple((read_id(r.read_id), r.index, frozenset(r.acks)) for r in node.pending_reads)
        if mine != tuple((r.read_id, r.index, r.acks) for r in v.pending_reads):
            return False
    if node.role is Role.LEADER:
        if peers is None or len(v.match_index) != len(peers) + 1:
            return False
        for j in peers:
            if node.next_index(j) != v.next_index[j] or node.match_index(j) != v.match_index[j]:
                return False
        if node.match_index(node.id) != v.match_index[server]:
            return False
    return True


def differences(mine: dict[str, Any], theirs: dict[str, Any]) -> dict[str, list[str]]:
    """Fields that differ, as ``{name: [repr(mine), repr(theirs)]}`` (JSON-compatible)."""
    keys = sorted(set(mine) | set(theirs))
    return {
        k: [repr(mine.get(k, "<absent>")), repr(theirs.get(k, "<absent>"))]
        for k in keys
        if mine.get(k, "<absent>") != theirs.get(k, "<absent>")
    }


def node_server(node: RaftNode, spec_server: ServerState, servers: int) -> ServerState:
    """``node`` as a spec :class:`ServerState`: its own fields, with the compacted prefix and
    the pending reads' ``required_index`` (a history variable) taken from ``spec_server``."""
    snap = node.log.snapshot.index
    log = (*spec_server.log[:snap], *node.log.entries)
    required = {r.read_id: r.required_index for r in spec_server.pending_reads}
    next_index: tuple[int, ...] = ()
    match_index: tuple[int, ...] = ()
    if node.role is Role.LEADER:
        # A leader's nextIndex for itself means nothing; the spec leaves it at its election
        # value, so take it from there rather than report a difference no one acts on.
        own = spec_server.next_index[node.id] if spec_server.next_index else node.last_index + 1
        next_index = tuple(own if j == node.id else node.next_index(j) for j in range(servers))
        match_index = tuple(node.match_index(j) for j in range(servers))
    return ServerState(
        term=node.term,
        voted_for=node.vote,
        log=log,
        snapshot_index=snap,
        role=node.role,
        commit_index=node.commit,
        votes_responded=frozenset(node.votes_responded),
        votes_granted=frozenset(node.votes_granted),
        next_index=next_index,
        match_index=match_index,
        recent_active=frozenset(node.recent_active),
        pending_reads=tuple(
            PendingRead(r.read_id, r.index, frozenset(r.acks), required.get(r.read_id, 0))
            for r in node.pending_reads
        ),
    )


def abstract_state(nodes: Sequence[RaftNode | None], shadow_state: RaftState) -> RaftState:
    """The spec state the real cluster is in: servers from the live nodes, network and history
    variables from the shadow. A down member (``None``) contributes the shadow's server as a
    follower: after :meth:`RaftShadow.crashed` that is already its durable state."""
    servers = len(shadow_state.servers)
    views = tuple(
        RaftSpec.as_follower(v, v.term) if node is None else node_server(node, v, servers)
        for node, v in zip(nodes, shadow_state.servers, strict=True)
    )
    return shadow_state.but(servers=views)
