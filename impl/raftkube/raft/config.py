"""Configuration of one Raft node: the spec's feature switches plus timing and flow control.

The feature switches carry the same names and meanings as ``raftkube_spec.raft.config.RaftConfig``
so that a conformance test can configure the model and the implementation identically.
"""

from __future__ import annotations

import math

import attrs

from raftkube_spec.raft.types import Membership


def _positive(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value}")


def _drift(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 <= value < 1:
        raise ValueError(f"{attribute.name} must be in [0, 1), got {value}")


def _non_negative(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


@attrs.frozen
class NodeConfig:
    """Everything a :class:`~raftkube.raft.node.RaftNode` needs to know besides its state."""

    node_id: int
    servers: int = attrs.field(default=3, validator=_positive)

    # Timing, in ticks. The election timeout is drawn from [election_timeout,
    # 2 * election_timeout) by the injected random source each time it is reset.
    election_timeout: int = attrs.field(default=10, validator=_positive)
    heartbeat_timeout: int = attrs.field(default=1, validator=_positive)
    snapshot_timeout: int = attrs.field(default=50, validator=_positive)
    """Ticks a leader waits for a follower to answer the snapshot it sent before it may send
    another (see :mod:`raftkube.raft.progress`): long enough for a large image to travel and
    be installed, short enough that a snapshot lost unreported stalls the follower briefly."""

    # Features (the spec's RaftConfig switches).
    max_batch: int = attrs.field(default=1, validator=_positive)
    """Entries one AppendEntries may carry."""
    pipelining: bool = False
    """Advance nextIndex on send, keeping up to ``max_inflight`` appends in flight per peer."""
    max_inflight: int = attrs.field(default=4, validator=_positive)
    """The flow window with pipelining: appends (with entries) awaiting an answer per peer."""
    pre_vote: bool = False
    check_quorum: bool = False
    lease: bool = False
    """With ``check_quorum``: ignore vote requests while a leader was heard from recently
    (etcd's in-lease rule). Off by default because the spec's vote request carries no
    "this is a leadership transfer" flag, so with it on, transfers may be refused."""
    read_index: bool = False
    compaction: bool = False
    leader_transfer: bool = False
    membership: bool = False
    """Membership changes (:meth:`RaftNode.add_member` and friends) with the last ``spares``
    servers starting outside the configuration."""
    spares: int = attrs.field(default=0, validator=_non_negative)

    # Lease reads (not a spec switch: the lease is a local decision the spec never sees; see
    # docs/lease-reads.md for the argument).
    lease_read: bool = False
    """Let a leader serve reads from a lease (:meth:`RaftNode.lease_read_index`) started by a
    quorum-acknowledged ReadIndex round. Needs ``check_quorum``, ``lease`` and ``read_index``.
    Every server then refuses to vote for ``election_timeout`` of its ticks after it last
    heard from (or was) a leader, and after it starts; leadership transfer is refused."""
    max_clock_drift: float = attrs.field(default=0.1, validator=_drift)
    """The bound on how far any server's tick RATE may differ from real time (0.1: 10%).
    Lease reads are unsafe if some clock drifts beyond it."""
    lease_slack_ticks: int = attrs.field(default=0, validator=_non_negative)
    """Ticks a driver may fire ahead of its clock (a tick loop that catches up after a stall
    fires two ticks back to back): each one shortens a follower's protection by a tick, so it
    is taken off the lease."""

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.node_id < self.servers:
            raise ValueError(f"node_id {self.node_id} outside 0..{self.servers - 1}")
        if self.spares >= self.servers or (self.spares and not self.membership):
            raise ValueError(f"spares {self.spares} needs membership and fewer than {self.servers}")
        if self.lease_read and not (self.check_quorum and self.lease and self.read_index):
            raise ValueError("lease_read needs check_quorum, lease and read_index")

    @property
    def lease_ticks(self) -> int:
        """How long, in the leader's ticks from a read's registration, the lease lasts.

        A follower that got a message the leader sent after the registration refuses votes
        for at least ``election_timeout - 1 - lease_slack_ticks`` of ITS ticks after receiving
        it, i.e. at least that many ticks / (1 + drift) in real time; ``n`` leader ticks last
        at most ``n / (1 - drift)`` in real time. So the lease may be ``n`` ticks with
        ``n / (1 - drift) <= (election_timeout - 1 - slack) / (1 + drift)``."""
        drift = self.max_clock_drift
        protected = self.election_timeout - 1 - self.lease_slack_ticks
        return max(0, math.floor(protected * (1 - drift) / (1 + drift)))

    @property
    def quorum(self) -> int:
        """The quorum of the initial configuration (every server, without spares)."""
        return (self.servers - self.spares) // 2 + 1

    @property
    def initial_membership(self) -> Membership:
        """The spec's ``initial_membership``: all servers but the spares vote."""
        return Membership(voters=tuple(range(self.servers - self.spares)))

    @property
    def peers(self) -> tuple[int, ...]:
        return tuple(j for j in range(self.servers) if j != self.node_id)
