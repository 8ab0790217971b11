"""Log replication: what a leader sends and commits, and how a follower takes it in.

:class:`Replication` holds the rules of the spec's AppendEntries and InstallSnapshot actions
on both sides. The leader appends its own entries, sends each follower what flow control
allows (entries, a snapshot when the next entry is compacted, or a heartbeat, which also
carries the newest read's context), advances the commit index by the spec's
``commit_candidate``, and on each tick sends heartbeats and checks it still hears from a
quorum. A follower accepts a current leader, merges its entries (cutting its log at the
first conflict) or installs its snapshot, and answers with its match index. The per-follower
flow control itself, including the snapshot state that sends a far-behind follower one
snapshot rather than one per rejection, is :mod:`raftkube.raft.progress`.
"""

from __future__ import annotations

from raftkube.raft.log import Snapshot
from raftkube.raft.node_state import RejectedError
from raftkube.raft.progress import Progress
from raftkube.raft.read_index import ReadIndex
from raftkube_spec.raft import events as ev
from raftkube_spec.raft.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    InstallSnapshotRequest,
    Message,
)
from raftkube_spec.raft.types import Entry, Membership, Role, Value


class Replication(ReadIndex):
    """The leader's sending and commit rule, and the follower's handling of what it sends."""

    # --- Leader ----------------------------------------------------------------------------

    def _append_own(self, value: Value) -> int:
        if isinstance(value, Membership):
            raise RejectedError("configuration entries are proposed by add/promote/remove_member")
        index = self.log.append(Entry(self.term, value))
        if self._observer is not None:
            self._observer(ev.ClientRequest(self.id, value))
        return index

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self.config.check_quorum and self._election_elapsed >= self.config.election_timeout:
            self._election_elapsed = 0
            active = self._is_quorum(self.recent_active | {self.id})
            if active:
                self.recent_active = set()
            else:
                self._become_follower(self.term)
                self.leader = None
            if self._observer is not None:
                self._observer(ev.CheckQuorum(self.id))
            if not active:
                return
        if self._heartbeat_elapsed >= self.config.heartbeat_timeout:
            self._heartbeat_elapsed = 0
            for j in self._peers():
                pr = self.progress[j]
                pr.tick_snapshot(self.config.heartbeat_timeout, self.config.snapshot_timeout)
                pr.reset_flow()
                self._send_append(j, allow_empty=True)

    def report_snapshot(self, peer: int, failed: bool) -> None:
        """The driver's word on the snapshot it was handed for ``peer`` (etcd-io/raft's
        ``ReportSnapshot``): a failed one (dropped, unsendable) lets the next heartbeat probe
        again, and send a new snapshot if one is still needed. A sent one changes nothing:
        the follower's answer, once it installed it, ends the snapshot state."""
        pr = self.progress.get(peer) if self.role is Role.LEADER else None
        if pr is not None and failed:
            pr.snapshot_failed()

    def _send_heartbeat(self, j: int) -> None:
        prev = self.progress[j].next - 1
        if prev < self.log.snapshot.index:
            return
        self._emit_append(j, prev, 0)

    def _send_append(self, j: int, allow_empty: bool) -> None:
        """Send what flow control allows to ``j``: entries, or a snapshot if its next entry is
        compacted, or (with ``allow_empty``) a heartbeat."""
        pr = self.progress[j]
        if pr.pending_snapshot:
            # A snapshot is in flight: nothing more but a heartbeat, where the log reaches.
            if allow_empty:
                self._send_heartbeat(j)
            return
        pipelining = self.config.pipelining
        while True:
            prev = pr.next - 1
            if prev < self.log.snapshot.index:
                if pr.paused and not allow_empty:
                    return
                self._send_snapshot(j, pr)
                return
            count = min(self.config.max_batch, self.log.last_index - prev)
            window = 1 if pr.probing else self.config.max_inflight
            if count > 0 and (
                (pipelining and len(pr.inflight) >= window) or (not pipelining and pr.paused)
            ):
                count = 0
            if count == 0 and not allow_empty:
                return
            self._emit_append(j, prev, count, pr)
            if count == 0 or not pipelining:
                return
            allow_empty = False

    def _emit_append(self, j: int, prev: int, count: int, pr: Progress | None = None) -> None:
        """Send ``count`` entries after ``prev``; with entries, record them in ``pr``'s flow
        control (with pipelining, nextIndex moves past them before the event is reported)."""
        last = prev + count
        if pr is not None and count:
            if self.config.pipelining:
                pr.next = last + 1
                pr.inflight.append(last)
            else:
                pr.paused = True
        self._msgs.append(
            AppendEntriesRequest(
                term=self.term,
                source=self.id,
                dest=j,
                prev_log_index=prev,
                prev_log_term=self.log.term_at(prev),
                entries=self.log.slice(prev, last),
                commit_index=min(self.commit, last),
                read_ctx=self._read_ctx(),
            )
        )
        if self._observer is not None:
            self._observer(ev.AppendEntries(self.id, j, count))

    def _send_snapshot(self, j: int, pr: Progress) -> None:
        snap = self.log.snapshot
        self._msgs.append(
            InstallSnapshotRequest(
                term=self.term,
                source=self.id,
                dest=j,
                last_index=snap.index,
                last_term=snap.term,
                entries=snap.data,
            )
        )
        if self.config.pipelining:
            pr.next = snap.index + 1
        else:
            pr.paused = True
        pr.become_snapshot(snap.index)
        if self._observer is not None:
            self._observer(ev.InstallSnapshot(self.id, j))

    def _own_entries_persisted(self, last: int) -> None:
        """The driver made this leader's log durable up to ``last``: count itself for it."""
        if self.role is not Role.LEADER or last <= self.own_match:
            return
        self.own_match = last
        if self._observer is not None:
            self._observer(ev.PersistEntries(self.id, last))
        self._maybe_commit()

    def _maybe_commit(self) -> None:
        """The spec's ``commit_candidate``: the highest index a quorum holds, if it is from the
        current term (logs' terms never decrease, so checking that one index suffices)."""
        matches = [self.match_index(j) for j in self.membership.voters]
        matches.sort(reverse=True)
        candidate = matches[len(matches) // 2]
        if candidate <= self.commit or self.log.term_at(candidate) != self.term:
            return
        self.commit = candidate
        if self._observer is not None:
            self._observer(ev.AdvanceCommitIndex(self.id, candidate))

    def _on_append_response(self, m: AppendEntriesResponse) -> None:
        if self.role is not Role.LEADER:
            if self._observer is not None:
                self._observer(ev.HandleAppendEntriesResponse(m))
            return
        j = m.source
        if self.config.check_quorum:
            self.recent_active.add(j)
        if m.read_ctx:
            for r in self.pending_reads:
                if r.read_id <= m.read_ctx:
                    r.acks.add(j)
        pr = self.progress[j]
        if m.success:
            if m.match_index > pr.match:
                pr.match = m.match_index
            if m.match_index + 1 > pr.next:
                pr.next = m.match_index + 1
            pr.free_to(m.match_index)
            pr.paused = False
            pr.probing = False
            pr.snapshot_acked(m.match_index, self.log.snapshot.index)
        else:
            pr.next = max(pr.match + 1, min(pr.next - 1, m.match_index + 1))
            pr.reset_flow()
            pr.probing = True
        if self._observer is not None:
            self._observer(ev.HandleAppendEntriesResponse(m))
        if m.read_ctx:
            self._complete_reads()
        if m.success:
            self._maybe_commit()
        if j in self.membership.members:  # a removed member gets nothing more
            self._send_append(j, allow_empty=False)

    # --- Follower --------------------------------------------------------------------------

    def _accept_leader(self, m: Message) -> bool:
        """Common to AppendEntries and InstallSnapshot of the current term: a candidate steps
        back (keeping its vote). Returns False if the message must be dropped."""
        if self.role is Role.LEADER:
            self._drop(m)  # Another leader in our term: impossible, never acted on.
            return False
        if self.role is not Role.FOLLOWER:
            self._become_follower(self.term)
        self.leader = m.source
        self._election_elapsed = 0
        self._quiet = 0
        return True

    def _on_append(self, m: AppendEntriesRequest) -> None:
        if m.term < self.term:
            answer = AppendEntriesResponse(
                term=self.term,
                source=self.id,
                dest=m.source,
                success=False,
                match_index=0,
                read_ctx=m.read_ctx,
            )
            if self._observer is not None:
                self._observer(ev.HandleAppendEntriesRequest(m))
            self._msgs.append(answer)
            return
        if not self._accept_leader(m):
            return
        log = self.log
        prev = m.prev_log_index
        if prev < self.commit:
            success, match = True, self.commit
        elif prev > log.last_index or log.term_at(prev) != m.prev_log_term:
            success, match = False, min(prev - 1, log.last_index)
        else:
            success = True
            match = prev + len(m.entries)
            self._merge(prev, m.entries)
            commit = min(m.commit_index, match)
            if commit > self.commit:
                self.commit = commit
        if self._observer is not None:
            self._observer(ev.HandleAppendEntriesRequest(m))
        self._msgs.append(
            AppendEntriesResponse(
                term=self.term,
                source=self.id,
                dest=m.source,
                success=success,
                match_index=match,
                read_ctx=m.read_ctx,
            )
        )

    def _merge(self, prev: int, entries: tuple[Entry, ...]) -> None:
        """The spec's ``merge``: keep entries that agree, cut the log at the first conflict."""
        log = self.log
        for n, entry in enumerate(entries):
            index = prev + 1 + n
            if index > log.last_index:
                log.entries.extend(entries[n:])
                self._membership.appended(index, entries[n:])
                return
            if log.term_at(index) != entry.term:
                log.truncate_after(index - 1)
                self._membership.truncated(log, index)
                self._mark_truncated(index)
                log.entries.extend(entries[n:])
                self._membership.appended(index, entries[n:])
                return

    def _mark_truncated(self, index: int) -> None:
        """Entries from ``index`` on changed: they must be (re)persisted."""
        if index < self._unstable_from:
            self._truncate_from = (
                index if self._truncate_from is None else min(self._truncate_from, index)
            )
            self._unstable_from = index

    def _on_snapshot(self, m: InstallSnapshotRequest) -> None:
        if m.term < self.term:
            answer = AppendEntriesResponse(
                term=self.term, source=self.id, dest=m.source, success=False, match_index=0
            )
            if self._observer is not None:
                self._observer(ev.HandleInstallSnapshotRequest(m))
            self._msgs.append(answer)
            return
        if not self._accept_leader(m):
            return
        log = self.log
        if m.last_index <= self.commit:
            match = self.commit
        elif m.last_index <= log.last_index and log.term_at(m.last_index) == m.last_term:
            match = self.commit = m.last_index
        else:
            match = self.commit = m.last_index
            # Storage discards the whole log when saving a snapshot whose last entry it does
            # not hold, so no truncation is needed for the entries dropped here.
            snap = Snapshot(m.last_index, m.last_term, m.entries)
            log.install(snap)
            self._membership.rescan(log)
            self._pending_snapshot = snap
            self._unstable_from = snap.index + 1
        if self._observer is not None:
            self._observer(ev.HandleInstallSnapshotRequest(m))
        self._msgs.append(
            AppendEntriesResponse(
                term=self.term, source=self.id, dest=m.source, success=True, match_index=match
            )
        )
