"""The state of the whole Raft model: every server, the network, and history variables.

History variables record what happened (who led which term, what was committed and when, which
reads completed) so that safety properties about the past can be stated as plain functions of
one state. The protocol never reads them.
"""

from __future__ import annotations

import operator
from typing import Any

import attrs

from .messages import Message, message_entries, message_head, message_key, message_tail
from .types import Entry, Role, ServerId

Network = tuple[tuple[Message, int], ...]
"""A multiset of messages as (message, count) pairs in ``message_key`` order: one canonical form
per multiset, so equal networks hash equal and iteration is deterministic."""


@attrs.frozen(order=True)
class PendingRead:
    """A ReadIndex read the leader registered but a quorum has not yet confirmed."""

    read_id: int
    index: int
    acks: frozenset[ServerId]
    required_index: int
    """History: the highest commit index anywhere when the read began. Not protocol state."""


@attrs.frozen(order=True)
class CompletedRead:
    """History: a read served at ``index``, which must cover everything committed before it."""

    server: ServerId
    term: int
    read_id: int
    index: int
    required_index: int


@attrs.frozen(order=True)
class Election:
    """History: ``leader`` won ``term`` with this log."""

    term: int
    leader: ServerId
    log: tuple[Entry, ...]


@attrs.frozen(order=True)
class Committed:
    """History: the entry at this position was first known committed by a leader of
    ``commit_term`` (for an entry first learned by a follower, the follower's term)."""

    entry: Entry
    commit_term: int
    voters: tuple[ServerId, ...] | None = None
    """With membership changes, the voters of the configuration it was committed in (a
    majority of them hold it); None means every server votes."""


@attrs.frozen(cache_hash=True)
class ServerState:
    """One server. Leader-only and candidate-only fields are reset to empty in other roles, so
    that states differing only in stale bookkeeping count as one."""

    # Persistent: survives Restart.
    term: int = 0
    voted_for: ServerId | None = None
    log: tuple[Entry, ...] = ()
    """The whole logical log, compacted prefix included (the snapshot's state machine image)."""
    snapshot_index: int = 0
    """Entries up to here are compacted: the server can no longer send them as entries."""

    # Volatile.
    role: Role = Role.FOLLOWER
    commit_index: int = 0
    votes_responded: frozenset[ServerId] = frozenset()
    votes_granted: frozenset[ServerId] = frozenset()
    next_index: tuple[int, ...] = ()
    match_index: tuple[int, ...] = ()
    recent_active: frozenset[ServerId] = frozenset()
    pending_reads: tuple[PendingRead, ...] = ()

    @property
    def last_index(self) -> int:
        return len(self.log)

    @property
    def last_term(self) -> int:
        return self.log[-1].term if self.log else 0

    def term_at(self, index: int) -> int:
        return self.log[index - 1].term if index > 0 else 0

    def but(self, **changes: Any) -> ServerState:
        """A copy with ``changes``: ``attrs.evolve``, written out because the model checker
        spends most of its time here."""
        get = changes.get
        return ServerState(
            get("term", self.term),
            get("voted_for", self.voted_for),
            get("log", self.log),
            get("snapshot_index", self.snapshot_index),
            get("role", self.role),
            get("commit_index", self.commit_index),
            get("votes_responded", self.votes_responded),
            get("votes_granted", self.votes_granted),
            get("next_index", self.next_index),
            get("match_index", self.match_index),
            get("recent_active", self.recent_active),
            get("pending_reads", self.pending_reads),
        )


@attrs.frozen(cache_hash=True)
class RaftState:
    servers: tuple[ServerState, ...]
    network: Network = ()

    # History variables. Elections and reads are sets, kept sorted so each has one form.
    elections: tuple[Election, ...] = ()
    committed: tuple[Committed, ...] = ()
    reads: tuple[CompletedRead, ...] = ()
    last_read_id: int = 0
    restarts: int = 0

    @property
    def messages_in_flight(self) -> int:
        return sum(count for _, count in self.network)

    def but(self, **changes: Any) -> RaftState:
        """A copy with ``changes`` (a fast ``attrs.evolve``)."""
        get = changes.get
        return RaftState(
            get("servers", self.servers),
            get("network", self.network),
            get("elections", self.elections),
            get("committed", self.committed),
            get("reads", self.reads),
            get("last_read_id", self.last_read_id),
            get("restarts", self.restarts),
        )

    def with_server(
        self, i: ServerId, server: ServerState, network: Network | None = None
    ) -> RaftState:
        """A copy with server ``i`` replaced and, if given, the network: one new state for a
        step that changes both (the spec builds one per event it checks)."""
        servers = list(self.servers)
        servers[i] = server
        return RaftState(
            tuple(servers),
            self.network if network is None else network,
            self.elections,
            self.committed,
            self.reads,
            self.last_read_id,
            self.restarts,
        )

    def max_commit_index(self) -> int:
        return max(s.commit_index for s in self.servers)


def initial_state(servers: int) -> RaftState:
    return RaftState(servers=tuple(ServerState() for _ in range(servers)))


def _search(bag: Network, m: Message) -> tuple[int, bool]:
    """Where ``m``'s key is or would go in ``bag`` (``bisect_left`` over ``message_key``), and
    whether the item there has that key. A key renders every entry of an AppendEntries (not
    cheap on a long run's network), so keys are compared in parts: heads first, and on a
    tie the rendered entries only if the entries are not the very same objects (identical
    entries render identically, and the tails decide)."""
    head = message_head(m)
    lo, hi = 0, len(bag)
    while lo < hi:
        mid = (lo + hi) // 2
        other = bag[mid][0]
        other_head = message_head(other)
        if other_head != head:
            below = other_head < head
        elif other is m:
            return mid, True  # keys are unique: this is the only item with m's key
        else:
            below, equal = _tie(other, m)
            if equal:
                return mid, True
        if below:
            lo = mid + 1
        else:
            hi = mid
    return lo, False


def _tie(a: Message, b: Message) -> tuple[bool, bool]:
    """Whether ``message_key(a)`` is below, and whether it equals, ``message_key(b)``, for two
    messages with equal heads."""
    ea, eb = message_entries(a), message_entries(b)
    if len(ea) == len(eb) and all(map(operator.is_, ea, eb)):
        ta, tb = message_tail(a), message_tail(b)
    else:
        ta, tb = message_key(a), message_key(b)
    return ta < tb, ta == tb


def bag_add(bag: Network, m: Message) -> Network:
    """``bag`` with one more copy of ``m``. The bag is sorted by ``message_key`` with unique
    keys, so a binary search finds the place."""
    n, found = _search(bag, m)
    if found:
        existing, count = bag[n]
        return _replaced(bag, n, (existing, count + 1))
    items = list(bag)
    items.insert(n, (m, 1))
    return tuple(items)


def bag_find(bag: Network, m: Message) -> int:
    """Where ``m`` is in ``bag``, or -1. Equal messages have equal keys (for values whose
    equality agrees with their ``repr``, as the models' strings and the members' bytes do),
    and the bag's keys are unique, so at most one item equals ``m``: one pass finds it, by
    identity (the model checker's events carry the very object in the bag) or by equality,
    tested after the class, the destination and the source, on which equal messages agree
    (sparing attrs' ``__eq__`` for the other items)."""
    cls, dest, source = m.__class__, m.dest, m.source
    for n, (existing, _) in enumerate(bag):
        if existing is m or (
            existing.__class__ is cls
            and existing.dest == dest
            and existing.source == source
            and existing == m
        ):
            return n
    return -1


def bag_remove(bag: Network, m: Message) -> Network:
    """``bag`` with one copy of ``m`` fewer; ``m`` must be present."""
    n = bag_find(bag, m)
    if n < 0:
        raise KeyError(m)
    return bag_remove_at(bag, n)


def bag_remove_at(bag: Network, n: int) -> Network:
    """``bag`` with one copy fewer of its ``n``-th message (a position :func:`bag_find` gave,
    so a step that checks a message is there and then consumes it searches once)."""
    existing, count = bag[n]
    if count == 1:
        items = list(bag)
        del items[n]
        return tuple(items)
    return _replaced(bag, n, (existing, count - 1))


def _replaced(bag: Network, n: int, item: tuple[Message, int]) -> Network:
    """``bag`` with its ``n``-th item replaced (through a list: cheaper than joining slices)."""
    items = list(bag)
    items[n] = item
    return tuple(items)


def bag_contains(bag: Network, m: Message) -> bool:
    return bag_find(bag, m) >= 0
