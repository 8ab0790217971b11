"""The ``kv`` suite's mutants: bugs in the member's reads, watches, leases and sessions."""

from __future__ import annotations

from raftkube.mvcc.index import decode_range
from raftkube.mvcc.sessions import SessionError, SessionRejection, SessionTable
from raftkube.mvcc.watch import WatchHub, _Watcher
from raftkube.server.leases import LeaseExpiry
from raftkube.server.outcomes import MemberError
from raftkube.server.reads import ReadQueue
from raftkube_fuzz.mutants.base import Mutant, patch
from raftkube_spec.kv.requests import LeaseRevokeRequest
from raftkube_spec.kv.responses import Result
from raftkube_spec.kv.watch import WatchCompacted, WatchFilter

# --- local-read-no-readindex ---------------------------------------------------------------------


async def _barrier_local(self: ReadQueue) -> None:
    member = self._member
    if member.disk_fault is not None:
        raise MemberError("unavailable", member.disk_fault.message)
    if member.stopped:
        raise MemberError("unavailable", "raftkube: member stopped")
    # MUTANT: the local state is taken as current: no ReadIndex round, no leadership check.


# --- watch-skips-compacted-event -----------------------------------------------------------------


def _watch_from_compaction_point(
    self: WatchHub,
    key: bytes,
    range_end: bytes = b"",
    start_revision: int = 0,
    prev_kv: bool = False,
    filters: frozenset[WatchFilter] = frozenset(),
) -> int:
    store = self._store
    start, end = decode_range(key, range_end)
    wid = self._next_id
    self._next_id += 1
    first = store.revision + 1 if start_revision == 0 else start_revision
    if store.compact_revision > 0 and first < store.compact_revision:
        # MUTANT: resume from what is retained instead of reporting "compacted".
        first = store.compact_revision
    watcher = _Watcher(
        id=wid,
        start=start,
        end=end,
        single=not range_end,
        start_revision=first,
        prev_kv=prev_kv,
        keep_puts=WatchFilter.NOPUT not in filters,
        keep_deletes=WatchFilter.NODELETE not in filters,
    )
    self._watchers[wid] = watcher
    if store.compact_revision > 0 and first < store.compact_revision:
        watcher.compacted = WatchCompacted(store.compact_revision)
    else:
        watcher.pending = self._backlog(watcher)
        if watcher.single:
            self._single.setdefault(start, {})[wid] = watcher
        else:
            self._ranged[wid] = watcher
    if (watcher.pending or watcher.compacted) and self._on_ready is not None:
        self._on_ready(wid)
    return wid


# --- follower-expires-leases ---------------------------------------------------------------------


async def _lease_loop_on_every_member(self: LeaseExpiry) -> None:
    member = self._member
    while True:
        await member.clock.sleep_until(member.clock.now() + member.config.lease_check_interval)
        if not member.node.is_leader:
            # MUTANT: a follower revokes what its own clock says has expired, in its local
            # store only, instead of waiting for the leader's revoke to come through the log.
            for lease_id in member.mvcc.expired_leases(member.now_ms()):
                member.mvcc.apply(LeaseRevokeRequest(lease_id))
            continue
        for lease_id in member.mvcc.expired_leases(member.now_ms()):
            if lease_id in self._revoking:
                continue
            self._revoking.add(lease_id)
            try:
                member.proposals.propose(LeaseRevokeRequest(lease_id))
            except MemberError:
                self._revoking.discard(lease_id)
                break


# --- session-retry-applied-twice -----------------------------------------------------------------


def _begin_without_cached_result(
    self: SessionTable, client_id: int, sequence: int, lowest_unacked: int | None = None
) -> Result | SessionError | None:
    session = self._sessions.get(client_id)
    if session is None:
        return SessionError(SessionRejection.EXPIRED, client_id, sequence)
    self._sessions.move_to_end(client_id)
    session.acknowledge(sequence if lowest_unacked is None else lowest_unacked)
    # MUTANT: the result of an already applied sequence is not looked up, so a client's
    # retry of a committed write is applied a second time.
    if sequence < session.lowest_unacked:
        return SessionError(SessionRejection.STALE_SEQUENCE, client_id, sequence)
    return None


MUTANTS = (
    Mutant(
        "local-read-no-readindex",
        "a linearizable read is served from local state without confirming leadership",
        "kv",
        "Linearizability",
        False,
        patch(ReadQueue, "barrier", _barrier_local),
    ),
    Mutant(
        "watch-skips-compacted-event",
        "a watch from a compacted revision silently starts at the compaction point",
        "kv",
        "WatchDelivery",
        False,
        patch(WatchHub, "watch", _watch_from_compaction_point),
    ),
    Mutant(
        "follower-expires-leases",
        "a follower revokes leases its own clock says expired, locally, outside the log",
        "kv",
        "StateMachineAgreement",
        False,
        patch(LeaseExpiry, "run", _lease_loop_on_every_member),
    ),
    Mutant(
        "session-retry-applied-twice",
        "a session's retried write is applied again instead of answered from its cached result",
        "kv",
        "Linearizability",
        False,
        patch(SessionTable, "begin", _begin_without_cached_result),
    ),
)
