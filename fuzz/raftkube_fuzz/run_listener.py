"""The world's listener for one example: what every member event, network fault, crash and
durability point passes through on its way to the timeline and the checkers.

The simulated :class:`~raftkube_fuzz.world.world.World` reports to a listener
(:class:`~raftkube_fuzz.world.world.WorldListener`); :class:`RunListener` is the one an
example (:class:`~raftkube_fuzz.example.Run`) gives it. It records each report on the
timeline and feeds the checkers that run synchronously inside the members' reports
(conformance and durability through the Raft shadow, LeaseSafety at the instant a lease read
is served), so the first bad event is caught where it happens. A checker's verdict is kept in
:attr:`RunListener.violation` instead of being raised into a member's task, where it would
turn a spec violation into a member crash; the example raises it after the step.

It also keeps what the end-of-example checks need from inside the members: every write some
member's store applied, by revision (:attr:`RunListener.written`).

Every hook it installs in the world holds a :class:`Link` instead of the listener itself, so
:meth:`RunListener.cut` severs them all at once (hooks of crashed incarnations included) when
the example ends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import trio

from raftkube.mvcc import MvccStore
from raftkube.server.entries import EntryError, decode_entry
from raftkube.server.member import Member
from raftkube_fuzz.checks.api import Check
from raftkube_fuzz.checks.conformance import RaftShadow
from raftkube_fuzz.checks.history import History, Unknown
from raftkube_fuzz.timeline import EVENT, FAULT, SEND, Lazy, Timeline, describe_message
from raftkube_fuzz.violation import Violation
from raftkube_fuzz.world.disk import SimDisk
from raftkube_spec.kv.requests import LeaseRevokeRequest
from raftkube_spec.kv.types import KeyValue
from raftkube_spec.raft import events as ev
from raftkube_spec.raft.messages import Message

if TYPE_CHECKING:
    from raftkube_fuzz.world.driver import VirtualClock
    from raftkube_fuzz.world.world import World

LEASE_EXPIRY_CLIENT = -1
"""The pseudo-client whose operations are the leaders' lease revocations."""


class Link:
    """What every hook a listener installs in its world holds instead of the listener itself,
    so that :meth:`RunListener.cut` can cut them all at once (hooks of crashed incarnations
    included) by deleting ``listener``: nothing calls a hook after the simulation ended."""

    __slots__ = ("listener",)

    def __init__(self, listener: RunListener) -> None:
        self.listener = listener


class RunListener:
    """One example's :class:`~raftkube_fuzz.world.world.WorldListener`; see the module
    docstring. :attr:`world` is set once the world it listens to is built."""

    world: World

    def __init__(
        self,
        *,
        timeline: Timeline,
        history: History,
        shadow: RaftShadow,
        event_checks: Sequence[Check],
        clock: VirtualClock,
        servers: int,
    ) -> None:
        self.timeline = timeline
        self.history = history
        self.shadow = shadow
        self.event_checks = tuple(event_checks)
        """The run's checks that see every member event (:meth:`Check.on_event`), in order."""
        self._clock = clock
        self.violation: Violation | None = None
        """The first verdict a checker reached inside the simulation."""
        self.written: dict[int, tuple[KeyValue, ...]] = {}
        """Every write some member's store applied, by revision (the ground truth an open
        watch is checked against at the end)."""
        self.on_written: list[Callable[[int, tuple[KeyValue, ...]], None]] = []
        """Called with each revision and its records when the first member applies it, at
        that instant (for checks that need the moment a write took effect, e.g. which time
        each host's clock read then); the checks that only need the order read
        :attr:`written` later."""
        self._attached = [False] * servers
        self._elected_term = 0
        """The highest term in which any member became leader (for LeaseSafety)."""
        self._link = Link(self)
        """The hooks' way to this listener, cut by :meth:`cut`."""

    def cut(self) -> None:
        """Sever every hook installed in the world from this listener."""
        del self._link.listener

    def guard(self, check: Callable[..., None], *args: Any) -> None:
        """Run a checker from inside the simulation; keep its verdict instead of raising it
        into a member's task, which would turn a spec violation into a member crash."""
        if self.violation is not None:
            return
        try:
            check(*args)
        except Violation as v:
            self.violation = v

    # --- what the world reports -----------------------------------------------------------------

    def observer_for(self, member_id: int) -> Callable[[Any], None]:
        link = self._link
        # The run's own clock is Trio's clock: reading it directly spares Trio's run-context
        # lookup on every event.
        clock = self._clock

        def observe(event: Any) -> None:
            listener = link.listener
            now = clock.current_time()
            listener.timeline.add(now, member_id, EVENT, event)
            if isinstance(event, ev.ClientRequest):
                listener._note_lease_expiry(event)
            elif isinstance(event, ev.BecomeLeader):
                member = listener.world.hosts[member_id].member
                if member is not None:
                    listener._elected_term = max(listener._elected_term, member.node.term)
            if not listener._attached[member_id]:
                member = listener.world.hosts[member_id].member
                if member is not None:
                    listener._attach(member_id, member)
            for check in listener.event_checks:
                listener.guard(check.on_event, member_id, event)

        return observe

    def sent(self, message: Message) -> None:
        source = message.source
        self.timeline.add(self._clock.current_time(), source, SEND, message)
        self.guard(self.shadow.sent, source, self.world.hosts[source].disk)

    def dropped(self, message: Message) -> None:
        self.timeline.add(
            self._clock.current_time(),
            None,
            FAULT,
            Lazy("drop ", describe_message, message),
            {"fault": "dropped"},
        )
        self.guard(self.shadow.dropped, message)

    def duplicated(self, message: Message) -> None:
        self.timeline.add(
            self._clock.current_time(),
            None,
            FAULT,
            Lazy("duplicate ", describe_message, message),
            {"fault": "duplicated"},
        )
        self.guard(self.shadow.duplicated, message)

    def crashed(self, member_id: int, disk: SimDisk) -> None:
        self._attached[member_id] = False
        self.timeline.add(trio.current_time(), member_id, FAULT, "crashed", {"fault": "crash"})
        self.guard(self.shadow.crashed, member_id, disk)

    def restarted(self, member_id: int, member: Member) -> None:
        self.timeline.add(
            trio.current_time(), member_id, FAULT, "restarted from its disk", {"fault": "restart"}
        )
        self._attach(member_id, member)

    def synced(self, member_id: int, disk: SimDisk) -> None:
        self.guard(self.shadow.synced, member_id, disk)

    # --- following a member ---------------------------------------------------------------------

    def _note_lease_expiry(self, event: ev.ClientRequest) -> None:
        """A leader proposing a lease revocation may be expiring it (its own decision, not a
        client's): the history gets a pseudo-client operation that may take effect at any
        time from now on, or never, so the linearizability check can place it."""
        value = event.value
        if not isinstance(value, bytes) or not value:
            return
        try:
            request = decode_entry(value).request
        except EntryError:
            return
        if isinstance(request, LeaseRevokeRequest):
            now = trio.current_time()
            op = self.history.invoke(LEASE_EXPIRY_CLIENT, request, now)
            self.history.complete(op, Unknown("proposed by the leader's lease expiry"), now)

    def _attach(self, member_id: int, member: Member) -> None:
        self._attached[member_id] = True
        self.guard(self.shadow.attach, member_id, member.node)
        self._watch_leases(member_id, member)
        self._record_writes(member)

    def _record_writes(self, member: Member) -> None:
        """Subscribe to the member's store, and to each store a snapshot installs later."""

        link = self._link

        def on_write(revision: int, records: Sequence[KeyValue]) -> None:
            listener = link.listener
            if revision not in listener.written:  # every member applies it; the first will do
                listener.written[revision] = applied = tuple(records)
                for hook in listener.on_written:
                    hook(revision, applied)

        def store_replaced(store: MvccStore, index: int) -> None:
            store.subscribe(on_write)

        member.mvcc.subscribe(on_write)
        member.hooks.store_replaced = store_replaced

    def _watch_leases(self, member_id: int, member: Member) -> None:
        """LeaseSafety, checked at the instant a member serves a read from its lease: no
        member may have been elected leader in a later term. That is the whole promise of a
        lease (followers refuse votes while it may run, so no election can complete), and
        checking it directly catches a lease that outlives it before a stale read has to
        land in exactly the wrong place to show up in the history."""
        link = self._link

        def lease_read(term: int) -> None:
            listener = link.listener
            if listener._elected_term > term:
                listener.guard(listener._lease_violation, member_id, term)

        member.hooks.lease_read = lease_read

    def _lease_violation(self, member_id: int, term: int) -> None:
        raise Violation(
            "LeaseSafety",
            f"member {member_id} served a read from its term-{term} lease after a leader was "
            f"elected in term {self._elected_term}",
            {"member": member_id, "lease_term": term, "elected_term": self._elected_term},
        )
