"""The Raft model's replication actions: a leader accepting client entries, sending
AppendEntries and InstallSnapshot, advancing its commit index on a quorum, compacting its log;
a follower accepting or refusing what the leader sends; the leader learning what matched.
See :mod:`.model` for the theory of operation.
"""

from __future__ import annotations

import attrs

from . import events as ev
from .core import RaftCore, set_next
from .messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    InstallSnapshotRequest,
)
from .state import (
    RaftState,
    ServerState,
    bag_add,
    bag_find,
    bag_remove_at,
)
from .types import Entry, Role


class Replication(RaftCore):
    """Replicating the log, one method per action."""

    def client_request(self, s: RaftState, e: ev.ClientRequest) -> RaftState | None:
        v = s.servers[e.server]
        if v.role is not Role.LEADER:
            return None
        log = (*v.log, Entry(v.term, e.value))
        return s.with_server(e.server, self.appended_own(v, e.server, log))

    def persist_entries(self, s: RaftState, e: ev.PersistEntries) -> RaftState | None:
        v = s.servers[e.server]
        if not self.config.parallel_persist or v.role is not Role.LEADER:
            return None
        if not v.match_index[e.server] < e.index <= v.last_index:
            return None
        match = list(v.match_index)
        match[e.server] = e.index
        return s.with_server(e.server, v.but(match_index=tuple(match)))

    def advance_commit_index(self, s: RaftState, e: ev.AdvanceCommitIndex) -> RaftState | None:
        v = s.servers[e.server]
        if v.role is not Role.LEADER:
            return None
        new = self.commit_candidate(v)
        if new <= v.commit_index or new != e.commit_index:
            return None
        return self.update_server(s, e.server, v.but(commit_index=new))

    def append_entries(self, s: RaftState, e: ev.AppendEntries) -> RaftState | None:
        v = s.servers[e.server]
        if v.role is not Role.LEADER or e.peer == e.server:
            return None
        if not self.is_member(v, e.peer):
            return None
        if e.count > self.config.max_batch or e.count < 0:
            return None
        prev = v.next_index[e.peer] - 1
        if prev < v.snapshot_index or prev + e.count > v.last_index:
            return None
        last = prev + e.count
        network = bag_add(
            s.network,
            AppendEntriesRequest(
                term=v.term,
                source=e.server,
                dest=e.peer,
                prev_log_index=prev,
                prev_log_term=v.term_at(prev),
                entries=v.log[prev:last],
                commit_index=min(v.commit_index, last),
                read_ctx=max(r.read_id for r in v.pending_reads) if v.pending_reads else 0,
            ),
        )
        if self.config.pipelining and e.count > 0:
            return s.with_server(e.server, set_next(v, e.peer, last + 1), network)
        return s.but(network=network)

    def install_snapshot(self, s: RaftState, e: ev.InstallSnapshot) -> RaftState | None:
        v = s.servers[e.server]
        if not self.config.compaction or v.role is not Role.LEADER or e.peer == e.server:
            return None
        if not self.is_member(v, e.peer):
            return None
        if v.next_index[e.peer] - 1 >= v.snapshot_index:
            return None
        s = self.send(
            s,
            InstallSnapshotRequest(
                term=v.term,
                source=e.server,
                dest=e.peer,
                last_index=v.snapshot_index,
                last_term=v.term_at(v.snapshot_index),
                entries=v.log[: v.snapshot_index],
            ),
        )
        if self.config.pipelining:
            s = s.with_server(e.server, set_next(v, e.peer, v.snapshot_index + 1))
        return s

    def compact_log(self, s: RaftState, e: ev.CompactLog) -> RaftState | None:
        v = s.servers[e.server]
        if not self.config.compaction or not v.snapshot_index < e.index <= v.commit_index:
            return None
        return s.with_server(e.server, v.but(snapshot_index=e.index))

    def receive_from_leader(
        self, s: RaftState, m: AppendEntriesRequest | InstallSnapshotRequest, at: int
    ) -> tuple[RaftState | None, ServerState | None]:
        """The common start of handling a leader's request, ``at`` its position in the network
        (:func:`bag_find`, -1 if absent). Returns ``(successor, None)`` when the request is
        answered here (one from an older term is rejected), ``(None, follower)`` to go on
        handling it as ``follower`` (a candidate of the same term steps down first), and
        ``(None, None)`` when no handler is enabled (a higher term needs UpdateTerm first)."""
        if at < 0:
            return None, None
        v = s.servers[m.dest]
        if m.term > v.term or (m.term == v.term and v.role is Role.LEADER):
            return None, None
        if m.term < v.term:
            reject = AppendEntriesResponse(
                term=v.term,
                source=m.dest,
                dest=m.source,
                success=False,
                match_index=0,
                read_ctx=m.read_ctx if isinstance(m, AppendEntriesRequest) else 0,
            )
            return s.but(network=bag_add(bag_remove_at(s.network, at), reject)), None
        return None, v if v.role is Role.FOLLOWER else self.as_follower(v, v.term)

    def handle_append_entries_request(
        self, s: RaftState, e: ev.HandleAppendEntriesRequest
    ) -> RaftState | None:
        m = e.message
        at = bag_find(s.network, m)
        done, v = self.receive_from_leader(s, m, at)
        if v is None:
            return done
        if m.prev_log_index < v.commit_index:
            success, match = True, v.commit_index
        elif not self.log_ok(v, m):
            success, match = False, min(m.prev_log_index - 1, v.last_index)
        else:
            success, match = True, m.prev_log_index + len(m.entries)
            log = self.merge(v.log, m.prev_log_index, m.entries)
            v = v.but(log=log, commit_index=max(v.commit_index, min(m.commit_index, match)))
        answer = AppendEntriesResponse(
            term=v.term,
            source=m.dest,
            dest=m.source,
            success=success,
            match_index=match,
            read_ctx=m.read_ctx,
        )
        network = bag_add(bag_remove_at(s.network, at), answer)
        return self.update_server(s, m.dest, v, network)

    def log_ok(self, v: ServerState, m: AppendEntriesRequest) -> bool:
        """The log consistency check: the follower holds the entry just before the new ones."""
        prev = m.prev_log_index
        return prev <= v.last_index and v.term_at(prev) == m.prev_log_term

    def merge(
        self, log: tuple[Entry, ...], prev: int, entries: tuple[Entry, ...]
    ) -> tuple[Entry, ...]:
        """Append ``entries`` after index ``prev``: an entry already present with the same term
        is kept (a reordered, shorter append must never cut a longer log), and the first
        conflicting one truncates the log from there."""
        for n, entry in enumerate(entries):
            index = prev + 1 + n
            if index > len(log):
                return (*log, *entries[n:])
            if log[index - 1].term != entry.term:
                return (*log[: index - 1], *entries[n:])
        return log

    def handle_append_entries_response(
        self, s: RaftState, e: ev.HandleAppendEntriesResponse
    ) -> RaftState | None:
        m = e.message
        at = bag_find(s.network, m)
        if at < 0:
            return None
        i = m.dest
        v = s.servers[i]
        if m.term != v.term:
            return None
        network = bag_remove_at(s.network, at)
        if v.role is not Role.LEADER:
            return s.but(network=network)
        j = m.source
        recent_active = v.recent_active | {j} if self.config.check_quorum else v.recent_active
        pending_reads = v.pending_reads
        if m.read_ctx:
            pending_reads = tuple(
                attrs.evolve(r, acks=r.acks | {j}) if r.read_id <= m.read_ctx else r
                for r in pending_reads
            )
        match, nxt = list(v.match_index), list(v.next_index)
        if m.success:
            match[j] = max(match[j], m.match_index)
            nxt[j] = max(nxt[j], m.match_index + 1)
        else:
            nxt[j] = max(match[j] + 1, min(nxt[j] - 1, m.match_index + 1))
        v = v.but(
            recent_active=recent_active,
            pending_reads=pending_reads,
            match_index=tuple(match),
            next_index=tuple(nxt),
        )
        return s.with_server(i, v, network)

    def handle_install_snapshot_request(
        self, s: RaftState, e: ev.HandleInstallSnapshotRequest
    ) -> RaftState | None:
        m = e.message
        at = bag_find(s.network, m)
        done, v = self.receive_from_leader(s, m, at)
        if v is None:
            return done
        i = m.dest
        if m.last_index <= v.commit_index:
            match = v.commit_index
        elif m.last_index <= v.last_index and v.term_at(m.last_index) == m.last_term:
            # The snapshot's last entry is already here: it just tells us it is committed.
            match = m.last_index
            v = v.but(commit_index=m.last_index)
        else:
            match = m.last_index
            v = v.but(log=m.entries, snapshot_index=m.last_index, commit_index=m.last_index)
        ok = AppendEntriesResponse(
            term=v.term, source=i, dest=m.source, success=True, match_index=match
        )
        network = bag_add(bag_remove_at(s.network, at), ok)
        return self.update_server(s, i, v, network)
