"""Symmetry reduction: servers are interchangeable, so states that differ only by a renaming
of servers are explored once.

``canonical`` picks one representative per class of renamed states. It first orders servers by
a signature that no renaming changes (term, role, log, ...), then breaks the remaining ties by
trying each renaming within the tied groups and keeping the smallest. Every property the model
checks is symmetric, so checking a representative checks the whole class.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import attrs

from .messages import Message, message_key
from .state import (
    CompletedRead,
    Election,
    Network,
    PendingRead,
    RaftState,
    ServerState,
)
from .types import ServerId

Renaming = tuple[ServerId, ...]
"""``p[old] == new``."""


class Symmetry:
    """Picks representatives, remembering how it renamed each server and message before:
    the same server states and messages recur across a great many states, and the model
    checker spends much of its time here."""

    def __init__(self) -> None:
        self._servers: dict[tuple[ServerState, Renaming], ServerState] = {}
        self._messages: dict[tuple[Message, Renaming], Message] = {}

    def __call__(self, s: RaftState) -> RaftState:
        return canonical(s, self)

    def rename_server(self, v: ServerState, p: Renaming) -> ServerState:
        key = (v, p)
        renamed = self._servers.get(key)
        if renamed is None:
            renamed = self._servers[key] = _rename_server(v, p)
        return renamed

    def rename_message(self, m: Message, p: Renaming) -> Message:
        key = (m, p)
        renamed = self._messages.get(key)
        if renamed is None:
            renamed = self._messages[key] = _rename_message(m, p)
        return renamed


def canonical(s: RaftState, symmetry: Symmetry | None = None) -> RaftState:
    sym = symmetry or Symmetry()
    best: RaftState | None = None
    best_key: tuple[object, ...] | None = None
    for p in _candidate_renamings(s):
        t = rename(s, p, sym)
        if best is None:
            best, best_key = t, None
            continue
        if best_key is None:
            best_key = _key(best)
        key = _key(t)
        if key < best_key:
            best, best_key = t, key
    assert best is not None
    return best


def _signature(i: ServerId, v: ServerState) -> tuple[object, ...]:
    vote = 0 if v.voted_for is None else 1 if v.voted_for == i else 2
    return (
        v.term,
        v.role,
        v.log,
        v.commit_index,
        v.snapshot_index,
        vote,
        len(v.votes_granted),
        len(v.votes_responded),
        v.pending_reads == (),
    )


def _candidate_renamings(s: RaftState) -> Iterator[Renaming]:
    sigs = [_signature(i, v) for i, v in enumerate(s.servers)]
    order = sorted(range(len(sigs)), key=sigs.__getitem__)
    groups: list[list[ServerId]] = []
    for i in order:
        if groups and sigs[groups[-1][0]] == sigs[i]:
            groups[-1].append(i)
        else:
            groups.append([i])
    if len(groups) == len(sigs):  # no ties: the signature order is the canonical one
        yield _renaming(order)
        return
    for choice in itertools.product(*(itertools.permutations(g) for g in groups)):
        yield _renaming([i for group in choice for i in group])


def _renaming(order: Sequence[ServerId]) -> Renaming:
    """The renaming that gives the server at ``order[k]`` the id ``k``."""
    p = [0] * len(order)
    for new, old in enumerate(order):
        p[old] = new
    return tuple(p)


def rename(s: RaftState, p: Renaming, sym: Symmetry) -> RaftState:
    if all(old == new for old, new in enumerate(p)):
        return s
    servers: list[ServerState | None] = [None] * len(p)
    for old, v in enumerate(s.servers):
        servers[p[old]] = sym.rename_server(v, p)
    # Renaming is a bijection, so distinct messages stay distinct: sorting is enough.
    network: Network = tuple(
        sorted(((sym.rename_message(m, p), n) for m, n in s.network), key=_by_message)
    )
    return s.but(
        servers=tuple(v for v in servers if v is not None),
        network=network,
        elections=tuple(sorted(Election(e.term, p[e.leader], e.log) for e in s.elections)),
        reads=tuple(
            sorted(
                CompletedRead(p[r.server], r.term, r.read_id, r.index, r.required_index)
                for r in s.reads
            )
        ),
    )


def _by_message(item: tuple[Message, int]) -> tuple[object, ...]:
    return message_key(item[0])


def _rename_set(ids: frozenset[ServerId], p: Renaming) -> frozenset[ServerId]:
    return frozenset(p[i] for i in ids) if ids else ids


def _rename_vector(values: tuple[int, ...], p: Renaming) -> tuple[int, ...]:
    if not values:
        return values
    out = [0] * len(values)
    for old, value in enumerate(values):
        out[p[old]] = value
    return tuple(out)


def _rename_server(v: ServerState, p: Renaming) -> ServerState:
    if v.voted_for is None and not v.votes_responded and not v.next_index:
        return v  # a follower that has not voted holds no server ids
    return v.but(
        voted_for=None if v.voted_for is None else p[v.voted_for],
        votes_responded=_rename_set(v.votes_responded, p),
        votes_granted=_rename_set(v.votes_granted, p),
        next_index=_rename_vector(v.next_index, p),
        match_index=_rename_vector(v.match_index, p),
        recent_active=_rename_set(v.recent_active, p),
        pending_reads=tuple(
            PendingRead(r.read_id, r.index, _rename_set(r.acks, p), r.required_index)
            for r in v.pending_reads
        ),
    )


def _rename_message(m: Message, p: Renaming) -> Message:
    return attrs.evolve(m, source=p[m.source], dest=p[m.dest])


def _key(s: RaftState) -> tuple[object, ...]:
    """A total order on states that share server signatures, to choose among renamings."""
    return (
        tuple(_server_key(v) for v in s.servers),
        tuple((message_key(m), count) for m, count in s.network),
        s.elections,
        s.reads,
    )


def _server_key(v: ServerState) -> tuple[object, ...]:
    return (
        -1 if v.voted_for is None else v.voted_for,
        _sorted(v.votes_responded),
        _sorted(v.votes_granted),
        v.next_index,
        v.match_index,
        _sorted(v.recent_active),
        tuple((r.read_id, r.index, _sorted(r.acks), r.required_index) for r in v.pending_reads),
    )


def _sorted(ids: frozenset[ServerId]) -> Sequence[ServerId]:
    return tuple(sorted(ids))
