"""A sans-I/O Raft core in the style of etcd-io/raft.

:class:`RaftNode` owns no sockets, clock or randomness: a driver feeds it ticks, messages and
client requests, and drains :class:`Ready` batches (state to persist, messages to send after
persisting, entries to apply). Every state change is reported as an event of the Raft
specification (:mod:`raftkube_spec.raft.events`) so that a conformance checker can replay it.
"""

from raftkube.raft.config import NodeConfig
from raftkube.raft.log import RaftLog, Snapshot
from raftkube.raft.node import NotLeaderError, RaftNode, RejectedError
from raftkube.raft.ready import ReadState, Ready
from raftkube.storage.state import HardState

__all__ = [
    "HardState",
    "NodeConfig",
    "NotLeaderError",
    "RaftLog",
    "RaftNode",
    "ReadState",
    "Ready",
    "RejectedError",
    "Snapshot",
]
