"""When and how a member snapshots its state machine, installs a leader's, and compacts.

:class:`Snapshotter` owns the member's snapshot bookkeeping. Every ``snapshot_every``
applied entries (and, with ``snapshot_image_ratio``, once the entries applied since the last
snapshot add up to that multiple of its image, so a large store is not re-encoded every few
thousand writes), between two Readys (the core only compacts what it knows is applied), it
captures a view of the MVCC store (cheap), encodes it and writes its file durably
(``Storage.stage_snapshot``; both in a worker thread when the member has ``run_encode``, while
writes go on), saves it with ``Storage.save_snapshot`` (off the event loop when it has
``run_sync``), which records it in the log and releases the WAL segments and older snapshot
files it covers, and then calls ``node.compact(index)``. A leader's snapshot arriving in a
Ready is persisted and installed here too: it replaces the store and re-attaches the
watchers (:mod:`raftkube.server.watches`).

The core's snapshot *content* is the spec's committed prefix of entries; the member replaces
it by one synthetic entry holding the MVCC image (:mod:`raftkube.server.snapshots` says why),
so a leader's ``InstallSnapshotRequest`` carries the image in the spec's ``entries`` field
and nothing in ``raftkube.raft`` or the spec changes.

**Auto-compaction** (etcd's flags, :mod:`raftkube.server.compactor`) runs on the leader and
proposes compaction requests through the log, which keeps the retained MVCC history, and
with it every image, proportional to the retention. Kept with snapshots because the two
together bound what a member keeps: the history in the store, the log on disk.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeVar

import trio

from raftkube.mvcc import MvccStore, dump_snapshot
from raftkube.mvcc.snapshot import StoreView, capture, encode_parts
from raftkube.raft import RejectedError, Snapshot
from raftkube.server.cluster_members import MemberTable
from raftkube.server.compactor import run_auto_compaction
from raftkube.server.disk_faults import DISK_ERRORS
from raftkube.server.outcomes import MemberError
from raftkube.server.snapshots import (
    SnapshotContents,
    collapsed,
    core_snapshot_data,
    membership_of,
    pack_stored,
    restore_store,
    stored_parts,
)
from raftkube.storage.state import Snapshot as StoredSnapshot
from raftkube.storage.state import SnapshotMeta
from raftkube_spec.kv.errors import ErrorCode, KVError
from raftkube_spec.kv.requests import CompactionRequest
from raftkube_spec.raft.types import Entry, Membership

if TYPE_CHECKING:
    from raftkube.server.member import EncodeRunner, Member, SyncRunner

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Snapshotter:
    """The member's snapshots: taking, saving, installing, and compacting the core's log."""

    def __init__(
        self,
        member: Member,
        *,
        index: int,
        image_size: int,
        run_sync: SyncRunner | None,
        run_encode: EncodeRunner | None,
    ) -> None:
        """``index`` and ``image_size``: the snapshot the member recovered (0 for none)."""
        self._member = member
        self._run_sync = run_sync
        self._run_encode = run_encode
        self.nursery: trio.Nursery | None = None
        """Where a background encoding runs (the member's, while it runs)."""
        self.index = index
        """The index of the last snapshot saved or installed."""
        self._image_size = image_size
        self._bytes_since_snapshot = 0
        """Bytes of entry values applied since the last snapshot (see ``snapshot_image_ratio``)."""
        self._encoding = False
        """A snapshot image is being encoded in the background."""
        self.encoded: tuple[StoredSnapshot, float] | None = None
        """An encoded snapshot waiting to be saved, and the seconds its encoding took."""
        self._encode_cpu = 0.0
        """CPU seconds the worker thread spent encoding and staging it (logged at the save)."""
        self.taken = 0
        self.installed = 0
        self.auto_compactions = 0
        """Compactions this member proposed as leader and saw applied (a statistic)."""
        self._head: tuple[Membership | None, MemberTable] = (None, MemberTable())
        """The configuration and member table of the snapshot being encoded."""
        self._installed_table: MemberTable | None = None
        """The member table of a leader's snapshot persisted but not installed yet."""

    def applied_bytes(self, size: int) -> None:
        """An entry value of ``size`` bytes was applied."""
        self._bytes_since_snapshot += size

    def from_leader(self, snap: Snapshot) -> bool:
        """Whether a snapshot handed over by the node came from a leader (and so needs
        :meth:`persist`): the member's own are saved when taken, so one at or below the last
        saved index is one of those and needs nothing."""
        return snap.index > self.index

    async def persist(self, snap: Snapshot) -> MvccStore | None:
        """Persist a snapshot handed over by the node; returns the store to install if it
        came from a leader (see :meth:`from_leader`). Decoding the image, seconds for tens of
        megabytes, runs in ``run_encode``'s worker thread when the member has one, so the
        event loop keeps answering heartbeats and clients meanwhile; the caller holds back
        messages that could rewrite the log until this Ready is advanced."""
        if not self.from_leader(snap):
            return None
        data = snap.data
        table = self._member.reconfig.table.copy()
        decode = functools.partial(restore_store, data, index=snap.index, members=table)
        if self._run_encode is None:
            store = decode()
        else:
            store, _cpu = await self._run_encode(functools.partial(in_worker, decode))
        conf = self._conf_in(data)
        stored = collapsed(data)
        if stored is None:
            stored = pack_stored(SnapshotContents(dump_snapshot(store), conf, table))
        self._member.storage.save_snapshot(
            StoredSnapshot(SnapshotMeta(snap.index, snap.term), stored)
        )
        self.index = snap.index
        self._image_size, self._bytes_since_snapshot = len(stored), 0
        self._installed_table = table
        self._collapse_core_snapshot(snap.index, snap.term, stored, conf)
        return store

    def _conf_in(self, data: tuple[Entry, ...]) -> Membership | None:
        """The configuration a snapshot's data leaves in force (None: membership off)."""
        node = self._member.node
        if not node.config.membership:
            return None
        return membership_of(data) or node.config.initial_membership

    def _conf_at(self, index: int) -> Membership | None:
        """The configuration in force at applied ``index`` (None: membership off): the last
        one in the log up to there (the core's own, unless a later entry changed it)."""
        node = self._member.node
        if not node.config.membership:
            return None
        if node.membership_index <= index:
            return node.membership
        log = node.log
        for k in range(index - log.snapshot.index - 1, -1, -1):
            value = log.entries[k].value
            if isinstance(value, Membership):
                return value
        return self._conf_in(log.snapshot.data)

    def install(self, store: MvccStore, index: int) -> None:
        """Replace the state machine by a leader's snapshot at ``index``."""
        member = self._member
        member.mvcc = store
        member.watches.replace_store(store)
        member.applied = index
        member.leases.forget_all()
        member.proposals.fail_up_to(index)
        if self._installed_table is not None:
            member.reconfig.table.replace(self._installed_table)
            self._installed_table = None
            member.reconfig.table_replaced()
        member.reconfig.replaced_up_to(index)
        self.installed += 1
        logger.info("member %d: installed a snapshot at index %d", member.id, index)
        if member.hooks.store_replaced is not None:
            member.hooks.store_replaced(store, index)

    def due(self) -> bool:
        """Time for a snapshot: none in progress, ``snapshot_every`` entries and
        ``snapshot_image_ratio`` times the last image's bytes applied since the last one, and
        the node knows all of it is applied (an entry applied during a sync may not be
        reported to it yet: then a later Ready's turn takes the snapshot)."""
        member = self._member
        config = member.config
        return (
            not self._encoding
            and self.encoded is None
            and member.applied - self.index >= config.snapshot_every
            and self._bytes_since_snapshot >= config.snapshot_image_ratio * self._image_size
            and member.applied <= member.node.applied
        )

    def start(self) -> None:
        """Snapshot the state machine at the applied index, between two Readys.

        Only a detached view of the store is taken here (:func:`raftkube.mvcc.snapshot.capture`,
        references only); encoding it and writing its file, the expensive parts, run in
        ``run_encode``'s thread when the member has one, while the ready loop goes on applying
        writes. The ready loop saves the snapshot once it is ready (:meth:`save`)."""
        member = self._member
        index = member.applied
        meta = SnapshotMeta(index, member.node.log.term_at(index))
        view = capture(member.mvcc)
        # The configuration and member table as of ``index`` ride with the image.
        self._head = (self._conf_at(index), member.reconfig.table.copy())
        self._bytes_since_snapshot = 0
        if self._run_encode is None or self.nursery is None:
            try:
                self.encoded = (_encode(meta, view, self._head, None), 0.0)
            finally:
                view.release()
            return
        self._encoding = True
        self.nursery.start_soon(self._encode_in_background, meta, view, self._head)

    async def _encode_in_background(
        self, meta: SnapshotMeta, view: StoreView, head: tuple[Membership | None, MemberTable]
    ) -> None:
        assert self._run_encode is not None
        member = self._member
        started = member.clock.now()
        encode = functools.partial(_encode, meta, view, head, member.storage.stage_snapshot)
        try:
            snapshot, self._encode_cpu = await self._run_encode(
                functools.partial(in_worker, encode)
            )
        finally:
            self._encoding = False
            # Back on the store's thread (a cancelled encoding may still be reading the
            # histories, but the member is stopping: nothing trims them any more).
            view.release()
        self.encoded = (snapshot, member.clock.now() - started)
        member.kick()

    async def save(self, snapshot: StoredSnapshot, encoding: float) -> None:
        """Save an encoded snapshot and compact log and WAL up to its index.

        What is left to do here is short when the file was staged with the encoding (a
        rename, a log record and one fsync; otherwise the whole image is written and synced
        too); it runs through ``run_sync`` when the member has one, so the event loop keeps
        stepping messages meanwhile. The ready loop, the only writer of the storage, waits,
        and with it every Ready that carries entries, heartbeats included: that wait used to
        include writing and fsyncing the whole image, 0.3-0.7 s for 30-40 MB on a loaded
        machine, on every member at once (they snapshot at the same index), longer than the
        election timeout. The core is told to compact only once the file is durable, so until
        then it keeps the entries (and sends no snapshot that does not exist yet)."""
        member = self._member
        self.encoded = None
        index, term = snapshot.meta.index, snapshot.meta.term
        if index <= self.index:
            return  # A leader's newer snapshot was installed while this one was encoded.
        started = member.clock.now()
        conf = self._head[0]
        image = snapshot.data
        if self._run_sync is None:
            member.storage.save_snapshot(snapshot)
        else:
            await self._run_sync(lambda: member.storage.save_snapshot(snapshot))
        self.index = index
        self._image_size = len(image)
        self.taken += 1
        logger.info(
            "member %d: saved snapshot at index %d (%d bytes; encoded in %.3f s, %.3f s of CPU; "
            "saved in %.3f s)",
            member.id,
            index,
            len(image),
            encoding,
            self._encode_cpu,
            member.clock.now() - started,
        )
        try:
            member.node.compact(index)
        except RejectedError as exc:
            # A leader's newer snapshot was stepped in meanwhile: the core's log is already
            # past ``index``, and the next Ready persists that snapshot.
            logger.info("member %d: not compacting to %d: %s", member.id, index, exc)
            return
        self._collapse_core_snapshot(index, term, image, conf)

    def _collapse_core_snapshot(
        self, index: int, term: int, stored: bytes, conf: Membership | None
    ) -> None:
        """Make the core's snapshot data the single image entry, with the configuration
        beside it when membership changes are on (see the module docstring): the committed
        prefix it would otherwise keep grows without bound and is what a leader would send
        in InstallSnapshot."""
        log = self._member.node.log
        if log.snapshot.index == index:
            log.snapshot = Snapshot(index, term, core_snapshot_data(term, stored, conf))

    async def run_auto_compaction(self) -> None:
        """etcd's auto-compactor (:mod:`raftkube.server.compactor`), on the member's clock."""
        member = self._member
        clock = member.clock
        await run_auto_compaction(
            member.config.auto_compaction,
            now=clock.now,
            sleep_until=clock.sleep_until,
            revision=lambda: member.mvcc.revision,
            leading=lambda: member.node.is_leader and not member.stopped,
            compact=self._auto_compact,
        )

    async def _auto_compact(self, revision: int) -> bool:
        """Propose a compaction at ``revision`` through Raft; True once applied (or already
        compacted), False to retry at the next check."""
        member = self._member
        try:
            result = await member.write(CompactionRequest(revision))
        except MemberError as exc:
            logger.warning("member %d: auto-compaction at %d failed: %s", member.id, revision, exc)
            return False
        if isinstance(result, KVError):
            if result.code is ErrorCode.COMPACTED:
                return True
            logger.warning("member %d: auto-compaction at %d: %s", member.id, revision, result)
            return False
        self.auto_compactions += 1
        logger.info("member %d: finished auto-compaction at revision %d", member.id, revision)
        return True


WORKER_SWITCH_INTERVAL: Final = 0.001
"""The interpreter's switch interval while a snapshot is encoded or decoded in a worker
thread (CPython's default is 0.005 s). Encoding is Python code holding the GIL; each time the
event loop gives the GIL up for a system call (every send, receive and poll), it waits for
the worker to reach the interval before it runs again, so a loop that makes many short
calls gets a small share of the interpreter while a 30-40 MB image is encoded (CPython's
"convoy effect"). Measured with ``raftkube bench snapshot`` (round trips of a socket pair on
the loop while 100,000 keys are encoded): about a quarter of the loop's rate alone at
0.005 s, about half at 0.001 s (docs/performance.md); the price is more switches, in the
worker's wall time only while it runs."""

_NORMAL_SWITCH_INTERVAL: Final = sys.getswitchinterval()


def in_worker(work: Callable[[], T], interval: float = WORKER_SWITCH_INTERVAL) -> tuple[T, float]:
    """``work()`` run with the switch ``interval`` (:data:`WORKER_SWITCH_INTERVAL`; the
    benchmark tries others), and the CPU seconds of the thread
    that ran it (the log shows what an encoding cost apart from its wall time, which on a
    busy machine is mostly waiting for a core and for the GIL). Two overlapping workers
    restore the normal interval when the first ends, which only costs the second the
    shorter interval."""
    sys.setswitchinterval(interval)
    started = time.thread_time()
    try:
        return work(), time.thread_time() - started
    finally:
        sys.setswitchinterval(_NORMAL_SWITCH_INTERVAL)


def _encode(
    meta: SnapshotMeta,
    view: StoreView,
    head: tuple[Membership | None, MemberTable],
    stage: Callable[[StoredSnapshot], None] | None,
) -> StoredSnapshot:
    """The stored snapshot of ``view`` with the configuration and member table ``head``; with
    ``stage`` (``Storage.stage_snapshot``), its file is also written ahead of the save. Runs
    in the encode worker thread. A disk error while staging is only logged: the save writes
    the file again on the ready loop, where a disk fault fences the member as any other."""
    conf, table = head
    # One join of the image's parts behind the file's own headers: the image is copied once.
    snapshot = StoredSnapshot(meta, b"".join(stored_parts(encode_parts(view), conf, table)))
    if stage is not None:
        try:
            stage(snapshot)
        except DISK_ERRORS as exc:
            logger.warning("snapshot at index %d not written ahead: %s", meta.index, exc)
    return snapshot
