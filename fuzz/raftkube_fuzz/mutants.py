"""Named implementation bugs ("mutants") that the fuzz suites must find.

Each mutant swaps ONE method (or property) of the implementation for a copy with one realistic
mistake, for the duration of a ``with mutant.patch():`` block, and restores the original on
exit. A suite that passes on the real code but fails with a mutant patched in has shown it can
catch that class of bug; one that passes with it patched in has a blind spot.

The patches are reachable only from here: nothing in ``raftkube`` imports this module and no
flag enables them. Each replacement is the real code with the mistake marked ``# MUTANT:``,
so a reader can diff it against the original at a glance, and
``tests/fuzz/test_mutants.py`` does that diff: every difference must touch a marker, so a copy
that drifts from a changed original fails the test instead of silently testing old code.

Why one module: it is a catalogue, one small marked patch per planted bug, and
``tests/fuzz/test_mutants.py`` diffs each against its original; splitting the list would only
scatter it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

import attrs
import trio

from raftkube.controllers import endpoints
from raftkube.controllers.controller_utils import error_text, is_being_deleted, is_pod_active
from raftkube.controllers.endpoints import (
    Obj,
    endpoint_port,
    find_port,
    pod_address,
    repack_subsets,
    service_selects,
    should_pod_be_in_endpoints,
)
from raftkube.controllers.replicaset import ReplicaSetController, calculate_status, replicas_of
from raftkube.controllers.store import split_meta_namespace_key
from raftkube.kubelet.admission import admit, allocatable_of
from raftkube.kubelet.kubelet import Kubelet, _terminal, log
from raftkube.kubelet.podworker import NodeContext, pod_key
from raftkube.mvcc.index import decode_range
from raftkube.mvcc.sessions import SessionError, SessionRejection, SessionTable
from raftkube.mvcc.watch import WatchHub, _Watcher
from raftkube.raft.config import NodeConfig
from raftkube.raft.node import RaftNode
from raftkube.raft.ready_output import ReadyOutput
from raftkube.raft.replication import Replication
from raftkube.scheduler.cache import CacheError, SchedulerCache, _PodState, _with_node_name
from raftkube.scheduler.nodeinfo import PodInfo
from raftkube.server.leases import LeaseExpiry
from raftkube.server.outcomes import MemberError
from raftkube.server.reads import ReadQueue
from raftkube.storage.state import HardState
from raftkube_spec.kv.requests import LeaseRevokeRequest
from raftkube_spec.kv.responses import Result
from raftkube_spec.kv.watch import WatchCompacted, WatchFilter
from raftkube_spec.raft import events as ev
from raftkube_spec.raft.messages import AppendEntriesRequest, AppendEntriesResponse
from raftkube_spec.raft.types import Entry

SUITES = ("raft", "kv", "cluster")


@attrs.frozen
class Mutant:
    """One named bug: what it is, which suite and property are expected to catch it."""

    name: str
    description: str
    """One line: the bug."""
    suite: str = attrs.field(validator=attrs.validators.in_(SUITES))
    """The suite expected to find it: "raft", "kv" or "cluster"."""
    expected: str
    """The property expected to catch it, e.g. "Conformance" or "Linearizability"."""
    needs_clock_faults: bool
    """Only clock-rate faults can expose it (the suite must run with them on)."""
    patch: Callable[[], contextlib.AbstractContextManager[None]]
    """A fresh context manager that patches the bug in and restores the original on exit."""
    config: Mapping[str, Any] = attrs.field(factory=dict)
    """Suite configuration every example of the mutant's search uses: what the bug needs to be
    reachable at all (lease reads for a lease bug) and the scenario the mutated feature is
    about, as a user would pin it with ``--config`` (for the lease bug: a read load and the
    slow-leader clock nemesis, since a lease only ever answers reads and only drift can
    break it). Steps are always left to the search."""


@contextlib.contextmanager
def _swap(owner: type | ModuleType, name: str, replacement: Any) -> Iterator[None]:
    """Replace ``owner.name`` (which ``owner`` itself must define) and put it back on exit,
    exactly as it was (the raw class attribute, so a property stays a property). ``owner``
    may be a module, for a plain function its callers look up by its global name."""
    original = owner.__dict__[name]
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _patch(owner: type | ModuleType, name: str, replacement: Any) -> Callable[[], Any]:
    return functools.partial(_swap, owner, name, replacement)


# --- 1. commit-old-term-by-count ----------------------------------------------------------------


def _maybe_commit_any_term(self: RaftNode) -> None:
    matches = [self.match_index(j) for j in self.membership.voters]
    matches.sort(reverse=True)
    candidate = matches[len(matches) // 2]
    if candidate <= self.commit:  # MUTANT: no check that the entry is of the current term.
        return
    self.commit = candidate
    if self._observer is not None:
        self._observer(ev.AdvanceCommitIndex(self.id, candidate))


# --- 2. unsynced-vote ---------------------------------------------------------------------------


def _must_sync_ignoring_vote(self: ReadyOutput, hs: HardState | None, log_changed: bool) -> bool:
    if log_changed:  # noqa: SIM103 (shaped as the original but for the planted line)
        return True
    # MUTANT: the hard state is taken as advisory like the commit index, so a new term or vote
    # is answered (a vote granted) before it is durable.
    return False


# --- 3. no-conflict-truncation ------------------------------------------------------------------


def _merge_without_truncation(self: RaftNode, prev: int, entries: tuple[Entry, ...]) -> None:
    log = self.log
    for n, entry in enumerate(entries):  # noqa: B007 (the check that read it is gone)
        index = prev + 1 + n
        if index > log.last_index:
            log.entries.extend(entries[n:])
            self._membership.appended(index, entries[n:])
            return
        # MUTANT: an entry already held at ``index`` is kept even if the leader's term differs.


# --- 4. commit-beyond-match ---------------------------------------------------------------------


def _maybe_commit_by_next(self: RaftNode) -> None:
    # MUTANT: the optimistic next index (advanced on send with pipelining) instead of the
    # acknowledged match index.
    matches = [
        self.log.last_index if j == self.id else self.progress[j].next - 1
        for j in self.membership.voters
    ]
    matches.sort(reverse=True)
    candidate = matches[len(matches) // 2]
    if candidate <= self.commit or self.log.term_at(candidate) != self.term:
        return
    self.commit = candidate
    if self._observer is not None:
        self._observer(ev.AdvanceCommitIndex(self.id, candidate))


# --- 5. accept-stale-term-append ----------------------------------------------------------------


def _on_append_any_term(self: RaftNode, m: AppendEntriesRequest) -> None:
    # MUTANT: no rejection of a request from a leader of an older term.
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


# --- 5b. config-change-before-own-term-commit -----------------------------------------------------


def _may_change_membership_before_own_term(self: RaftNode) -> bool:
    """The spec's ``may_change_membership``: an entry of this term is committed (etcd's
    pendingConfIndex rule) and so is the last configuration change."""
    # MUTANT: a new leader may change the configuration before an entry of its own term is
    # committed (Ongaro, raft-dev 2015): its change and a deposed leader's uncommitted one
    # can then both commit with disjoint majorities.
    return self._membership.index <= self.commit


# --- 6. local-read-no-readindex -----------------------------------------------------------------


async def _barrier_local(self: ReadQueue) -> None:
    member = self._member
    if member.disk_fault is not None:
        raise MemberError("unavailable", member.disk_fault.message)
    if member.stopped:
        raise MemberError("unavailable", "raftkube: member stopped")
    # MUTANT: the local state is taken as current: no ReadIndex round, no leadership check.


# --- 7. lease-read-ignores-drift ----------------------------------------------------------------


def _lease_ticks_without_margin(self: NodeConfig) -> int:
    # MUTANT: a follower's protection is taken to last the whole election timeout of the
    # leader's own ticks, with no allowance for clock-rate drift.
    return self.election_timeout


# --- 8. watch-skips-compacted-event -------------------------------------------------------------


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


# --- 9. follower-expires-leases -----------------------------------------------------------------


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


# --- 10. session-retry-applied-twice ------------------------------------------------------------


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


# --- 11. rs-no-expectations ----------------------------------------------------------------------


async def _sync_without_expectations(self: ReplicaSetController, key: str) -> None:
    namespace, name = split_meta_namespace_key(key)
    owner = self.owners.get(name, namespace)
    if owner is None:
        self.expectations.delete_expectations(key)
        return
    # MUTANT: the creations and deletions this controller asked for are not awaited, so a
    # sync from a cache that has not yet seen them creates (or deletes) again.
    needs_sync = True
    active = [p for p in self.pods.list(namespace) if is_pod_active(p)]
    pods = await self.claim_pods(owner, active)
    manage_error: Exception | None = None
    if needs_sync and not is_being_deleted(owner):
        try:
            await self.manage_replicas(owner, pods)
        except Exception as exc:
            manage_error = exc
    status = calculate_status(
        owner, pods, error_text(manage_error) if manage_error else None, self.wall()
    )
    updated = await self.update_status(owner, status)
    spec, new_status = updated.get("spec") or {}, updated.get("status") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    replicas = replicas_of(updated)
    if (
        manage_error is None
        and min_ready > 0
        and int(new_status.get("readyReplicas") or 0) == replicas
        and int(new_status.get("availableReplicas") or 0) != replicas
    ):
        self.queue.add_after(key, min_ready)
    if manage_error is not None:
        raise manage_error


# --- 12. endpoints-include-unready ---------------------------------------------------------------


def _subsets_including_unready(service: Obj, pods: list[Obj]) -> list[Obj]:
    spec = service.get("spec") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    subsets: list[Obj] = []
    for pod in pods:
        if not service_selects(service, pod):
            continue
        if not should_pod_be_in_endpoints(pod, publish_not_ready):
            continue
        address = pod_address(service, pod)
        if address is None:
            continue
        # MUTANT: readiness is not looked at: every pod with an IP is a ready address.
        field = "addresses"
        service_ports = spec.get("ports") or []
        if not service_ports:
            if spec.get("clusterIP") == "None":
                subsets.append({field: [address]})
            continue
        for service_port in service_ports:
            number = find_port(pod, service_port)
            if number is None:
                continue
            subsets.append({field: [address], "ports": [endpoint_port(service_port, number)]})
    return repack_subsets(subsets)


# --- 13. scheduler-ignores-assumed ----------------------------------------------------------------


def _assume_without_counting(self: SchedulerCache, info: PodInfo, node_name: str) -> None:
    if info.key in self._pods:
        raise CacheError(f"pod {info.key} is in the cache, so can't be assumed")
    assumed = attrs.evolve(info, pod=_with_node_name(info.pod, node_name))
    # MUTANT: the assumption is remembered but not counted on its node, so until the binding
    # comes back through the informer the next decisions see the node's room as it was.
    self._pods[info.key] = _PodState(assumed, node_name, assumed=True)


# --- 14. kubelet-skips-admission -----------------------------------------------------------------


async def _handle_without_admission(
    self: Kubelet, nursery: trio.Nursery, node: NodeContext, pod: dict[str, Any], deleted: bool
) -> None:
    uid = pod["metadata"]["uid"]
    worker = self.workers.get(uid)
    if worker is not None:
        worker.update(None if deleted else pod)
        return
    if deleted or (_terminal(pod) and not pod["metadata"].get("deletionTimestamp")):
        return
    if pod["metadata"].get("deletionTimestamp"):
        self._start(nursery, node, pod)
        return
    active = [w.pod for w in self.workers.values() if not w.finished and not _terminal(w.pod)]  # noqa: F841
    allocatable = allocatable_of(self.config.capacity())
    # MUTANT: the pod is judged against the node's allocatable alone, not beside the pods
    # already admitted, so a pod that fits an empty node is started on a full one.
    rejection = None if await self._has(uid) else admit(pod, [], allocatable)
    if rejection is not None:
        log.info("pod %s rejected: %s", pod_key(pod), rejection.message)
        await self._reject(pod, rejection.reason, rejection.message)
        return
    self._start(nursery, node, pod)


# --- the registry -------------------------------------------------------------------------------

_ALL = (
    Mutant(
        "commit-old-term-by-count",
        "the leader commits an entry of an earlier term by counting its replicas (Figure 8)",
        "raft",
        "Conformance",
        False,
        _patch(Replication, "_maybe_commit", _maybe_commit_any_term),
    ),
    Mutant(
        "unsynced-vote",
        "a member answers a vote request before the new term and vote are durable",
        "raft",
        "Durability",
        False,
        _patch(ReadyOutput, "_must_sync", _must_sync_ignoring_vote),
    ),
    Mutant(
        "no-conflict-truncation",
        "a follower keeps its own entries where the leader's conflict instead of cutting them",
        "raft",
        "Conformance",
        False,
        _patch(Replication, "_merge", _merge_without_truncation),
    ),
    Mutant(
        "commit-beyond-match",
        "the leader's commit rule counts next indexes (sent) instead of match indexes (acked)",
        "raft",
        "Conformance",
        False,
        _patch(Replication, "_maybe_commit", _maybe_commit_by_next),
    ),
    Mutant(
        "accept-stale-term-append",
        "a follower accepts AppendEntries from a leader of an older term",
        "raft",
        "Conformance",
        False,
        _patch(Replication, "_on_append", _on_append_any_term),
    ),
    Mutant(
        "config-change-before-own-term-commit",
        "a new leader changes the membership before an entry of its own term is committed",
        "raft",
        "Conformance",
        False,
        _patch(RaftNode, "_may_change_membership", _may_change_membership_before_own_term),
        {"membership": "on"},
    ),
    Mutant(
        "local-read-no-readindex",
        "a linearizable read is served from local state without confirming leadership",
        "kv",
        "Linearizability",
        False,
        _patch(ReadQueue, "barrier", _barrier_local),
    ),
    Mutant(
        "lease-read-ignores-drift",
        "lease mode lasts a whole election timeout, with no margin for clock-rate drift",
        "raft",
        "LeaseSafety",
        True,
        _patch(NodeConfig, "lease_ticks", property(_lease_ticks_without_margin)),
        {"read_mode": "lease", "load": "reads", "clocks": "slow_leader"},
    ),
    Mutant(
        "watch-skips-compacted-event",
        "a watch from a compacted revision silently starts at the compaction point",
        "kv",
        "WatchDelivery",
        False,
        _patch(WatchHub, "watch", _watch_from_compaction_point),
    ),
    Mutant(
        "follower-expires-leases",
        "a follower revokes leases its own clock says expired, locally, outside the log",
        "kv",
        "StateMachineAgreement",
        False,
        _patch(LeaseExpiry, "run", _lease_loop_on_every_member),
    ),
    Mutant(
        "session-retry-applied-twice",
        "a session's retried write is applied again instead of answered from its cached result",
        "kv",
        "Linearizability",
        False,
        _patch(SessionTable, "begin", _begin_without_cached_result),
    ),
    Mutant(
        "rs-no-expectations",
        "the ReplicaSet controller syncs without waiting for its own creations to be observed",
        "cluster",
        "NoOverCreation",
        False,
        _patch(ReplicaSetController, "sync", _sync_without_expectations),
        {"store_faults": "off", "slow": "managers"},
    ),
    Mutant(
        "endpoints-include-unready",
        "the endpoints controller lists pods that are not Ready among a Service's addresses",
        "cluster",
        "EndpointsListOnlyReady",
        False,
        _patch(endpoints, "desired_subsets", _subsets_including_unready),
        {"store_faults": "off"},
    ),
    Mutant(
        "scheduler-ignores-assumed",
        "the scheduler places a pod on room its own assumed, not yet bound pods already hold",
        "cluster",
        "NodeWithinAllocatable",
        False,
        _patch(SchedulerCache, "assume_pod", _assume_without_counting),
        {"store_faults": "off", "slow": "schedulers"},
    ),
    Mutant(
        "kubelet-skips-admission",
        "the kubelet admits a pod by the node's allocatable alone, forgetting the pods it runs",
        "cluster",
        "NodeWithinAllocatable",
        False,
        _patch(Kubelet, "_handle", _handle_without_admission),
        {"store_faults": "off"},
    ),
)

MUTANTS: dict[str, Mutant] = {m.name: m for m in _ALL}
"""Every mutant by name, in a fixed order."""

__all__ = ["MUTANTS", "Mutant"]
