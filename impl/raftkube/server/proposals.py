"""A member's writes in flight: proposing them, batching them into the log, answering them.

:class:`Proposals` owns every write this member proposed as leader and has not yet answered:
the queue of proposals not yet appended (the ready loop appends them in one batch, so each
follower gets one AppendEntries per batch, not one per request), which log index each
appended one landed at, and the waiter of each. It answers a write when its entry is applied
here, fails it when another leader's entry displaced it, and times out the writes submitted
without a task (:meth:`~raftkube.server.member.Member.submit`). Kept apart from the ready
pipeline because it is the client's side of a write (admission, identity, timeouts), while
the pipeline only moves entries between the core, the disk and the state machine.

A proposal is identified by ``(incarnation, proposal id)`` inside the entry's value
(:mod:`raftkube.server.entries`): only the member process that proposed an entry answers its
client, and only if the committed value is that proposal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raftkube.mvcc import SessionError, SessionRejection
from raftkube.raft import RejectedError
from raftkube.server.cluster_members import MemberAttributes
from raftkube.server.entries import DecodedEntry, Outcome, Registered, SessionTag, encode_entry
from raftkube.server.outcomes import MemberError, Waiter, not_leader
from raftkube_spec.kv.requests import LeaseRevokeRequest, Request

if TYPE_CHECKING:
    from raftkube.server.member import Member

_SESSION_CODES: dict[SessionRejection, str] = {
    SessionRejection.EXPIRED: "session_expired",
    SessionRejection.STALE_SEQUENCE: "stale_sequence",
}


class Proposals:
    """The writes this member proposed and has not answered yet."""

    def __init__(self, member: Member) -> None:
        self._member = member
        self._next_proposal = 1
        self.waiters: dict[int, Waiter] = {}
        """Unanswered proposals by proposal id, in proposal order."""
        self._by_index: dict[int, int] = {}
        """Proposal id by the log index its entry was appended at."""
        self._queue: list[tuple[bytes, int, Waiter, Request | MemberAttributes | None]] = []
        """Proposed but not yet appended to the core's log."""

    @property
    def queued(self) -> bool:
        """Proposals wait to be appended (the ready loop's next :meth:`flush`)."""
        return bool(self._queue)

    def propose(
        self, req: Request | MemberAttributes | None, session: SessionTag | None = None
    ) -> tuple[int, Waiter]:
        """Append ``req`` (None: a session registration; attributes: a member's, see
        :mod:`raftkube.server.reconfig`); returns its proposal id and waiter."""
        member = self._member
        if member.disk_fault is not None:
            raise member.disk_fault
        if member.stopped:
            raise MemberError("unavailable", "raftkube: member stopped")
        if member.transferring:
            # New entries would keep the transfer target behind; the client retries elsewhere.
            raise MemberError("unavailable", "raftkube: leadership transfer in progress")
        if not member.node.is_leader:
            raise not_leader(member.node.leader)
        pid = self._next_proposal
        self._next_proposal += 1
        w = Waiter()
        data = encode_entry(member.incarnation, pid, req, session)
        if isinstance(req, MemberAttributes):
            w.proposed = (data, DecodedEntry(member.incarnation, pid, None, None, req))
        else:
            w.proposed = (data, DecodedEntry(member.incarnation, pid, req, session))
        # Queued, and appended by the ready loop together with every other proposal made
        # meanwhile, so each follower gets one AppendEntries per batch, not one per request.
        self._queue.append((data, pid, w, req))
        self.waiters[pid] = w
        member.kick()
        return pid, w

    def flush(self) -> None:
        """Append every queued proposal to the core's log in one batch."""
        if not self._queue:
            return
        member = self._member
        batch, self._queue = self._queue, []
        try:
            first = member.node.propose_many([data for data, _, _, _ in batch])
        except RejectedError:
            err = not_leader(member.node.leader)
            for _, pid, w, req in batch:
                self.waiters.pop(pid, None)
                if isinstance(req, LeaseRevokeRequest):
                    member.leases.revocation_done(req.id)
                w.error = err
                w.finish()
            return
        for k, (_, pid, _, _) in enumerate(batch):
            self._by_index[first + k] = pid

    def forget(self, pid: int) -> None:
        """Stop tracking proposal ``pid`` (its client gave up waiting)."""
        self.waiters.pop(pid, None)

    def expire_submitted(self, now: float) -> None:
        """Time out :meth:`~raftkube.server.member.Member.submit` waiters past their deadline.
        They are created in proposal order with the same timeout, so the first unexpired one
        ends the scan; waiters of ``write`` (which time out on their own) are skipped."""
        if not self.waiters:
            return
        expired = []
        for pid, w in self.waiters.items():
            if w.on_done is None:
                continue
            if w.deadline > now:
                break
            expired.append(pid)
        for pid in expired:
            w = self.waiters.pop(pid)
            w.error = MemberError("timeout", "etcdserver: request timed out")
            w.finish()

    def expected_at(self, index: int) -> int | None:
        """The proposal this member appended at ``index``, if any (no longer tracked there:
        the entry now at ``index`` is being applied)."""
        return self._by_index.pop(index, None)

    def own_decoded(self, pid: int | None, data: bytes) -> DecodedEntry | None:
        """What this member's proposal ``pid`` decodes to, if ``data`` is the very value it
        proposed (so the entry at this index is that proposal). The wire codec round-trips
        every request exactly (tests/impl/test_api_wire.py), so this equals
        ``decode_entry(data)``, which every other replica applies."""
        if pid is None:
            return None
        w = self.waiters.get(pid)
        if w is None or w.proposed is None or w.proposed[0] is not data:
            return None
        return w.proposed[1]

    def fail_displaced(self, expected: int | None, applied: int | None) -> None:
        """Our proposal at this index was overwritten by another leader's entry."""
        if expected is not None and expected != applied:
            w = self.waiters.pop(expected, None)
            if w is not None:
                w.error = MemberError("unavailable", "etcdserver: leader changed")
                w.finish()

    def fail_up_to(self, index: int) -> None:
        """A leader's snapshot at ``index`` replaced the log: the proposals appended up to
        there are answered as displaced (their outcome is unknown here)."""
        for i in [i for i in self._by_index if i <= index]:
            self.fail_displaced(self._by_index.pop(i), None)

    def answer(self, pid: int, index: int, outcome: Outcome) -> None:
        """Proposal ``pid`` was applied at ``index`` with ``outcome``: answer its client."""
        w = self.waiters.pop(pid, None)
        if w is None:
            return
        w.index = index
        if isinstance(outcome, Registered):
            w.registered = outcome.client_id
        elif isinstance(outcome, MemberAttributes):
            pass  # Recorded in the member table; the waiter only needs to know it applied.
        elif isinstance(outcome, SessionError):
            w.error = MemberError(_SESSION_CODES[outcome.code], outcome.message)
        else:
            w.result = outcome
        w.finish()
