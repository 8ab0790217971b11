"""Configuration of one Raft node: the spec's feature switches plus timing and flow control.

The feature switches carry the same names and meanings as ``raftkube_spec.raft.config.RaftConfig``
so that a conformance test can configure the model and the implementation identically.
"""

from __future__ import annotations

import attrs


def _positive(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, got {value}")


@attrs.frozen
class NodeConfig:
    """Everything a :class:`~raftkube.raft.node.RaftNode` needs to know besides its state."""

    node_id: int
    servers: int = attrs.field(default=3, validator=_positive)

    # Timing, in ticks. The election timeout is drawn from [election_timeout,
    # 2 * election_timeout) by the injected random source each time it is reset.
    election_timeout: int = attrs.field(default=10, validator=_positive)
    heartbeat_timeout: int = attrs.field(default=1, validator=_positive)

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

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.node_id < self.servers:
            raise ValueError(f"node_id {self.node_id} outside 0..{self.servers - 1}")

    @property
    def quorum(self) -> int:
        return self.servers // 2 + 1

    @property
    def peers(self) -> tuple[int, ...]:
        return tuple(j for j in range(self.servers) if j != self.node_id)
