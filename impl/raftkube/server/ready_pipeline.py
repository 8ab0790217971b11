"""The member's ready pipeline: from the Raft core's Ready to disk, network and state machine.

:class:`ReadyPipeline` handles one :class:`~raftkube.raft.Ready` at a time: persist
(truncate, snapshot, entries, hard state) with ONE ``sync`` per batch, send, install a
leader's snapshot, apply committed entries, serve ReadIndex reads, advance. The only await
between ``ready()`` and ``advance()`` is the sync itself, and only when the member was given a
``run_sync`` hook (the real runner runs the fsync in a worker thread): the event loop then
keeps accepting proposals, acknowledgements, votes and ticks, which accumulate in the node and
share the next batch's sync (group commit). Nothing that depends on a write leaves before that
write is durable, because a Ready's messages are sent only after its own sync (except a
leader's, which the core lets leave first: it counts its own copy of an entry only once this
pipeline has made it durable, Raft thesis 10.2.1); AppendEntries
and InstallSnapshot requests (the only inputs that can truncate or replace the log) arriving
during the sync are held back and stepped right after ``advance()``. An acknowledgement that
commits entries during the sync has them applied (and their clients answered) at once, up to
what earlier Readys made durable here, rather than after the sync and the next Ready. Without
the hook the sync is a plain call and no other task runs during a Ready, so a simulator needs
no threads. What an entry holds and how it is applied is :mod:`raftkube.server.entries`.

Kept apart from the member because this is the one place where the ordering rules that Raft's
safety rests on (persist before send, apply only what is durable here) are enforced; the rest
of the member only feeds the core and waits for outcomes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import trio

from raftkube.net.framing import FrameTooLargeError
from raftkube.raft import Ready
from raftkube.server.disk_faults import DISK_ERRORS, describe_disk_fault
from raftkube.server.entries import EntryError, apply_entry, decode_entry, stored_value
from raftkube.server.outcomes import MemberError
from raftkube.storage.state import LogEntry
from raftkube_spec.kv.requests import LeaseRevokeRequest
from raftkube_spec.raft.messages import AppendEntriesRequest, InstallSnapshotRequest, Message
from raftkube_spec.raft.types import Entry, Membership

if TYPE_CHECKING:
    from raftkube.server.member import Member, SyncRunner

logger = logging.getLogger(__name__)

_LOG_REWRITING = (AppendEntriesRequest, InstallSnapshotRequest)


class ReadyPipeline:
    """The ready loop, the only writer of the member's storage, and the apply step."""

    def __init__(self, member: Member, *, run_sync: SyncRunner | None) -> None:
        self._member = member
        self._run_sync = run_sync
        self._kick = trio.Event()
        self._syncing = False
        self._handling = False
        """A Ready is between ``ready()`` and ``advance()`` (its sync may be in flight)."""
        self._durable_last = -1
        """While a sync runs: the last log index already durable before it (-1: none may be
        applied early, the Ready in flight truncates or installs a snapshot)."""
        self._deferred: list[Any] = []

    def kick(self) -> None:
        """Wake the ready loop."""
        self._kick.set()

    def kick_if_needed(self) -> None:
        """Wake the ready loop after a tick or a message only if an iteration would do
        something: the node has a Ready, or a read still waits to start its ReadIndex round
        (retried on every iteration). Proposals and new reads kick for themselves. Without
        this, every follower tick costs the loop two scheduler passes to find nothing.

        A Ready that holds only messages (a heartbeat, its answer, an acknowledgement that
        commits nothing: most Readys) is sent right here instead, unless a Ready is being
        handled: it has nothing to persist, apply or serve, so the ready loop would only send
        it a scheduler pass later, and everything it depends on is already durable (Readys
        before it were handled, their syncs included)."""
        member = self._member
        node = member.node
        if node.has_ready():
            if self._handling or not node.has_only_messages():
                self.kick()
                return
            rd = node.ready()
            self._send(rd.messages)
            node.advance(rd)
        if member.reads.unstarted:
            self.kick()

    def _send(self, messages: Sequence[Message]) -> None:
        """Hand ``messages`` to the transport. A snapshot the transport cannot send at all
        (the peer transport chunks images over its frame limit, up to 64 chunks) is logged
        and skipped, rather than the error ending this member's ready loop; the core tries
        again after its snapshot timeout.

        A snapshot the transport drops (its queue to a peer that is down or slow is full) is
        deliberately not reported to the core as failed (``RaftNode.report_snapshot``): the
        core would send the whole image again at the next heartbeat, into the same full
        queue, encoding tens of megabytes every tick for as long as the peer stays away. The
        follower's snapshot state ends instead on its answer or after the snapshot timeout,
        one attempt per timeout."""
        member = self._member
        for m in messages:
            if isinstance(m, InstallSnapshotRequest):
                # As etcd logs each snapshot it sends: one per catch-up is the healthy rate.
                logger.info(
                    "member %d: sending a snapshot at index %d to member %d",
                    member.id,
                    m.last_index,
                    m.dest,
                )
            try:
                member.transport.send(m.dest, m)
            except FrameTooLargeError as exc:
                if not isinstance(m, InstallSnapshotRequest):
                    raise
                logger.error(
                    "member %d: snapshot at index %d not sent to member %d: %s",
                    member.id,
                    m.last_index,
                    m.dest,
                    exc,
                )

    def on_message(self, m: Any) -> None:
        """Step a message from a peer into the core (held back if it may rewrite the log
        while a sync is in flight)."""
        if self._syncing and isinstance(m, _LOG_REWRITING):
            self._deferred.append(m)
        else:
            self._step(m)
            if self._syncing:
                self._apply_while_syncing()
        self.kick_if_needed()

    async def run_or_fence(self, raft: trio.CancelScope) -> None:
        """Run the ready loop, the only writer of the storage; if the disk refuses a write,
        fence the member (:mod:`raftkube.server.disk_faults`): answer the requests in flight
        as of unknown outcome, refuse new ones with the cause, and stop every Raft task by
        cancelling ``raft``, before anything that depends on the failed write is sent."""
        member = self._member
        try:
            await self._loop()
        except DISK_ERRORS as exc:
            code, message = describe_disk_fault(member.id, exc)
            logger.error("member %d: fenced: %s", member.id, message)
            member.disk_fault = MemberError(code, message)
            member.fail_waiters(message)
            raft.cancel()

    async def _loop(self) -> None:
        member = self._member
        snapshots, proposals = member.snapshots, member.proposals
        while True:
            if snapshots.encoded is not None:
                await snapshots.save(*snapshots.encoded)
            member.reads.start()
            proposals.flush()
            if not member.node.has_ready():
                await self._kick.wait()
                self._kick = trio.Event()
                if proposals.queued:
                    # Clients are proposing: let the tasks that just became runnable propose
                    # too (group commit). A wake-up by Raft traffic alone goes straight on:
                    # messages are stepped where they arrive, so there is nothing to wait for.
                    await trio.lowlevel.checkpoint()
                continue
            self._handling = True
            try:
                await self._handle(member.node.ready())
            finally:
                self._handling = False
            if snapshots.due():
                snapshots.start()
            if self._kick.is_set():
                # Work arrived while this Ready was handled (during its sync): let whatever
                # else just became runnable add to the next batch first (group commit).
                # Otherwise nothing is waiting to join it, and yielding would only cost a pass.
                await trio.lowlevel.checkpoint()

    async def _sync(self) -> None:
        """Make the Ready's writes durable. With a ``run_sync`` hook (a worker thread in the
        real runner) the event loop keeps running meanwhile: proposals, acknowledgements,
        votes and ticks are stepped into the node and batched into the next Ready, whose
        messages again leave only after its own sync. Messages that may rewrite the log
        (AppendEntries, InstallSnapshot) are held back until this Ready is advanced, so
        the node's unstable/truncation bookkeeping stays exactly as in the synchronous
        driver (one Ready in flight, nothing removed from under it)."""
        storage = self._member.storage
        if self._run_sync is None:
            storage.sync()
            return
        self._syncing = True
        try:
            await self._run_sync(storage.sync)
        finally:
            self._syncing = False

    def _apply_while_syncing(self) -> None:
        """Apply (and answer) what an acknowledgement just committed, without waiting for the
        sync in flight to return and the next Ready to deliver it: on a leader under load this
        saves each write most of one fsync. Only entries that an earlier Ready already made
        durable here are applied (never while a truncation or snapshot is in flight), so the
        state machine never runs ahead of this member's own log; the next Ready re-delivers
        them and :meth:`apply_committed` skips what is applied. Runs only during a sync in a
        ``run_sync`` thread, which the simulator never uses."""
        member = self._member
        end = min(member.node.commit, self._durable_last)
        if end > member.applied:
            self.apply_committed(member.applied + 1, member.node.log.slice(member.applied, end))
            member.reads.release()

    def _step_deferred(self) -> None:
        held, self._deferred = self._deferred, []
        for m in held:
            self._step(m)

    def _step(self, m: Any) -> None:
        try:
            self._member.node.step(m)
        except ValueError:
            logger.warning("member %d: dropped misaddressed message %r", self._member.id, m)

    async def _handle(self, rd: Ready) -> None:
        member = self._member
        storage = member.storage
        # 0. A leader's messages leave first, when the core allows it (Ready.send_before_persist):
        # the followers then write its new entries while it does, and its fsync is off the
        # write's critical path whenever a quorum of others answers first.
        sent = rd.send_before_persist
        if sent:
            self._send(rd.messages)
        # 1. Persist, one sync for the whole batch.
        if rd.truncate_from is not None:
            storage.truncate_suffix(rd.truncate_from)
        installed = None
        if rd.snapshot is not None and member.snapshots.from_leader(rd.snapshot):
            # The image may be decoded in a worker thread: meanwhile nothing is applied early
            # and messages that could rewrite the log wait, exactly as during a sync.
            self._durable_last = -1
            self._syncing = True
            try:
                installed = await member.snapshots.persist(rd.snapshot)
            finally:
                self._syncing = False
        if rd.entries:
            storage.append_entries(
                [
                    LogEntry(rd.first_index + k, e.term, stored_value(e.value))
                    for k, e in enumerate(rd.entries)
                ]
            )
        if rd.hard_state is not None:
            storage.set_hard_state(rd.hard_state)
        # Committed entries that an earlier Ready already made durable here are applied (and
        # their clients answered) while this Ready's sync runs, not one fsync later.
        committed = rd.committed_entries
        if installed is None and rd.snapshot is None and rd.truncate_from is None and committed:
            end = rd.committed_first_index + len(committed)
            durable_end = rd.first_index if rd.entries else end
            early = max(0, min(len(committed), durable_end - rd.committed_first_index))
            self.apply_committed(rd.committed_first_index, committed[:early])
            committed = committed[early:]
            first_committed = rd.committed_first_index + early
        else:
            first_committed = rd.committed_first_index
        # The core says whether this Ready's writes must be durable before its messages
        # leave (etcd-io/raft's MustSync): a commit index alone waits for the next sync.
        if rd.must_sync:
            if rd.truncate_from is None and rd.snapshot is None:
                self._durable_last = rd.first_index - 1 if rd.entries else member.node.last_index
            else:
                self._durable_last = -1
            await self._sync()
        # 2. Send (unless sent first).
        if not sent:
            self._send(rd.messages)
        # 3. Apply: a leader's snapshot first, then the entries after it.
        if installed is not None:
            member.snapshots.install(installed, rd.snapshot.index if rd.snapshot is not None else 0)
        self.apply_committed(first_committed, committed)
        # 4. Reads.
        member.reads.confirm(rd.read_states)
        member.reads.release()
        member.node.advance(rd)
        if self._deferred:
            self._step_deferred()

    def apply_committed(self, first_index: int, entries: tuple[Entry, ...]) -> None:
        """Apply the committed ``entries`` from ``first_index`` on that are not applied yet."""
        for k, e in enumerate(entries):
            index = first_index + k
            if index > self._member.applied:
                self.apply_entry(index, e)

    def apply_entry(self, index: int, entry: Entry) -> None:
        """Apply the committed entry at ``index`` and answer its proposer if it is ours."""
        member = self._member
        proposals = member.proposals
        member.applied = index
        expected = proposals.expected_at(index)
        if isinstance(entry.value, Membership):
            # In force since it was appended; committed now (raftkube.server.reconfig).
            proposals.fail_displaced(expected, None)
            member.reconfig.configuration_applied(index, entry.term, entry.value)
            return
        data = _as_bytes(entry.value)
        member.snapshots.applied_bytes(len(data))
        if not data:
            proposals.fail_displaced(expected, None)
            return
        decoded = proposals.own_decoded(expected, data)
        if decoded is None:
            try:
                decoded = decode_entry(data)
            except EntryError as exc:
                logger.error("member %d: undecodable entry %d: %s", member.id, index, exc)
                proposals.fail_displaced(expected, None)
                return
        outcome = apply_entry(member.mvcc, index, decoded, member.reconfig.table)
        if decoded.attributes is not None:
            member.reconfig.attributes_applied(decoded.attributes)
        if isinstance(decoded.request, LeaseRevokeRequest):
            member.leases.revocation_done(decoded.request.id)
        mine = decoded.proposal_id if decoded.incarnation == member.incarnation else None
        proposals.fail_displaced(expected, mine)
        if mine is None:
            return
        proposals.answer(mine, index, outcome)


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    raise TypeError(f"entry value must be bytes, got {type(value).__name__}")
