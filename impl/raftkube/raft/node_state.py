"""The state one Raft server keeps, its queries, and the role changes every part makes.

:class:`NodeState` is the base the parts of :class:`~raftkube.raft.node.RaftNode` share: the
persistent state (term, vote, log), the volatile state as the spec's ``ServerState`` names it
(role, commit index, votes, progress, pending reads), the bookkeeping the spec does not see
(timers, the lease), and what the driver has not been handed yet. It also holds what every
part may do to that state: become a follower or a candidate, count a quorum, drop a message.
Kept apart so that each part of the node (:mod:`.read_index`, :mod:`.replication`,
:mod:`.election`, :mod:`.ready_output`) reads as the rules of one job over one shared state,
as etcd-io/raft's ``raft`` struct is shared by its step functions.
"""

from __future__ import annotations

from collections.abc import Callable
from random import Random

import attrs

from raftkube.raft.config import NodeConfig
from raftkube.raft.log import RaftLog, Snapshot
from raftkube.raft.membership import MembershipTracker
from raftkube.raft.progress import Progress
from raftkube.raft.ready import ReadState, Ready
from raftkube.randomness import RandomSource
from raftkube.storage.state import HardState
from raftkube_spec.raft import events as ev
from raftkube_spec.raft.messages import Message
from raftkube_spec.raft.types import Entry, Membership, Role

Observer = Callable[[ev.Event], None]


class RejectedError(Exception):
    """The request is not enabled in the node's current state (the spec would refuse it)."""


class NotLeaderError(RejectedError):
    """Only a leader accepts proposals, reads and transfers."""


@attrs.define
class PendingRead:
    read_id: int
    index: int
    acks: set[int]
    tick: int
    """The leader's tick count at registration: a lease from this read starts there."""


class NodeState:
    """One Raft server's state. Not thread-safe; a driver serializes all calls."""

    def __init__(
        self,
        config: NodeConfig,
        rng: RandomSource | None = None,
        observer: Observer | None = None,
        *,
        hard_state: HardState | None = None,
        snapshot: Snapshot | None = None,
        entries: tuple[Entry, ...] = (),
    ) -> None:
        """A node starting from persisted state (or from nothing). The commit index restarts at
        the snapshot index, as in the spec: a persisted commit index is not trusted."""
        self.config = config
        self.id = config.node_id
        self._rng: RandomSource = rng if rng is not None else Random(config.node_id)
        self._observer = observer
        self.on_ready: Callable[[Ready], None] | None = None
        """Called with every :class:`Ready` :meth:`ready` hands out, before the driver sees
        it: an observer learns what is about to be persisted and sent (the simulator's
        durability check). Unset in production."""
        hs = hard_state if hard_state is not None else HardState()

        # Persistent state.
        self.term = hs.term
        self.vote: int | None = hs.vote
        self.log = RaftLog(snapshot, entries)
        self._membership = MembershipTracker(
            config.initial_membership, self.log, enabled=config.membership
        )

        # Volatile state, as the spec's ServerState.
        self.role = Role.FOLLOWER
        self.commit = self.log.snapshot.index
        self.votes_responded: set[int] = set()
        self.votes_granted: set[int] = set()
        self.progress: dict[int, Progress] = {}
        self.own_match = self.log.last_index
        """A leader's matchIndex for itself: the last of its entries its driver made durable
        (the spec's ``PersistEntries``). It sends new entries while writing them (Raft thesis
        10.2.1) and counts itself for them only once they are durable here."""
        self.recent_active: set[int] = set()
        self.pending_reads: list[PendingRead] = []

        # Bookkeeping the spec does not see.
        self.leader: int | None = None
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = self._draw_timeout()
        self._ticks = 0
        """Ticks since this node was built: the leader's lease is measured in them."""
        self._quiet = 0
        """Ticks since this node last was, or heard from, a leader (or since it started).
        With lease reads it refuses votes while this is below the election timeout."""
        self._lease_until = 0
        """With lease reads: the leader holds a lease while ``_ticks`` is below this."""

        # What the driver has not yet been handed (see ready()).
        self._persisted = hs
        self._unstable_from = self.log.last_index + 1
        self._truncate_from: int | None = None
        self._pending_snapshot: Snapshot | None = None
        self._applied = self.log.snapshot.index
        self._msgs: list[Message] = []
        self._read_states: list[ReadState] = []

    # --- Queries -------------------------------------------------------------------------------

    @property
    def last_index(self) -> int:
        return self.log.last_index

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    @property
    def membership(self) -> Membership:
        """The configuration in force: the last one in the log, committed or not."""
        return self._membership.current

    @property
    def membership_index(self) -> int:
        """The index of the configuration entry in force (0: the initial configuration)."""
        return self._membership.index

    def _peers(self) -> tuple[int, ...]:
        """The members a leader replicates to: voters and learners but itself."""
        return tuple(j for j in self._membership.current.members if j != self.id)

    def _is_quorum(self, servers: set[int]) -> bool:
        return self._membership.current.is_quorum(servers)

    def next_index(self, peer: int) -> int:
        return self.progress[peer].next

    def match_index(self, peer: int) -> int:
        if peer == self.id:
            return self.own_match
        return self.progress[peer].match

    @property
    def applied(self) -> int:
        """The highest index the driver has reported applied (through :meth:`advance`)."""
        return self._applied

    # --- Roles ---------------------------------------------------------------------------------

    def _draw_timeout(self) -> int:
        e = self.config.election_timeout
        return self._rng.randrange(e, 2 * e)

    def _reset_timers(self) -> None:
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_timeout = self._draw_timeout()

    def _clear_role_state(self) -> None:
        self.votes_responded = set()
        self.votes_granted = set()
        self.progress = {}
        self.recent_active = set()
        self.pending_reads = []

    def _become_follower(self, term: int) -> None:
        """The spec's ``as_follower``: the vote survives only within the same term."""
        if term != self.term:
            self.vote = None
            self.leader = None
        self.term = term
        self.role = Role.FOLLOWER
        self._clear_role_state()
        self._reset_timers()

    def _become_candidate(self) -> None:
        """The spec's ``as_candidate``: next term, voting for itself."""
        self._become_follower(self.term + 1)
        self.role = Role.CANDIDATE
        self.vote = self.id
        self.votes_responded = {self.id}
        self.votes_granted = {self.id}

    def _drop(self, m: Message) -> None:
        if self._observer is not None:
            self._observer(ev.DropMessage(m))
