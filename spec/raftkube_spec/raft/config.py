"""What the Raft model includes (feature switches) and how far it may go (bounds).

Features are the extensions the implementation really uses; each one switched off gives back
the behaviour of raft.tla, so a counterexample can always be told apart by the feature it needs.
Bounds cut the otherwise infinite state space for exhaustive checking; they disable actions
(a ``Timeout`` at ``max_term``, a send into a full network) rather than prune states, so every
state the checker reaches is a state the unbounded protocol reaches too.
"""

from __future__ import annotations

from collections.abc import Hashable

import attrs


@attrs.frozen
class RaftConfig:
    servers: int = 3

    # Features.
    max_batch: int = 1
    """Entries one AppendEntries may carry (raft.tla: 1); empty heartbeats are always allowed."""
    pipelining: bool = False
    """Advance nextIndex when sending, not on the answer, so several appends are in flight."""
    pre_vote: bool = False
    check_quorum: bool = False
    read_index: bool = False
    compaction: bool = False
    """Log compaction (CompactLog) and InstallSnapshot for followers that fell behind it."""
    leader_transfer: bool = False
    membership: bool = False
    """Single-server membership changes (AddMember, PromoteMember, RemoveMember) through
    configuration entries in the log; without it every server votes, always."""
    parallel_persist: bool = False
    """A leader sends its new entries while it writes them to its own disk (Raft thesis
    10.2.1): its own matchIndex counts only what it has persisted (``PersistEntries``), and a
    crash loses what it had not."""
    network_faults: bool = True
    """Whether the network may drop and duplicate messages (it may always reorder them)."""

    # Bounds.
    max_term: int = 2
    max_log: int = 1
    max_messages: int = 2
    """Total messages in flight, counting duplicates."""
    max_restarts: int = 0
    max_reads: int = 1
    """ReadIndex requests over the whole run."""
    values: tuple[Hashable, ...] = ("v",)
    """The client commands ClientRequest may append."""
    spares: int = 0
    """With ``membership``: the last ``spares`` servers start outside the configuration (the
    machines an operator may add); the others start as its voters."""

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.spares < self.servers:
            raise ValueError(f"spares must be in 0..{self.servers - 1}, got {self.spares}")

    @property
    def server_ids(self) -> range:
        return range(self.servers)

    @property
    def quorum(self) -> int:
        return self.servers // 2 + 1

    def features(self) -> tuple[str, ...]:
        """Names of the switched-on features, for printing."""
        on = [
            name
            for name in (
                "pipelining",
                "pre_vote",
                "check_quorum",
                "read_index",
                "compaction",
                "leader_transfer",
                "membership",
                "parallel_persist",
            )
            if getattr(self, name)
        ]
        if self.max_batch > 1:
            on.insert(0, f"batch<={self.max_batch}")
        return tuple(on)


def all_features(config: RaftConfig, max_batch: int = 2) -> RaftConfig:
    """The same bounds with every extension switched on."""
    return attrs.evolve(
        config,
        max_batch=max(config.max_batch, max_batch),
        pipelining=True,
        pre_vote=True,
        check_quorum=True,
        read_index=True,
        compaction=True,
        leader_transfer=True,
        membership=True,
        parallel_persist=True,
    )
