"""Raft snapshots of the whole state machine: ``dump_snapshot`` / ``load_snapshot``.

What is saved is exactly what a client could observe, plus the sessions that
make retries idempotent: the revision and compaction point, every retained
record of every key (tombstones included, so reads at old revisions and watch
backlogs survive), the leases, and the client sessions with their cached
results in expiry order. Derived structures are rebuilt on load rather than
saved — which keys a lease holds (the live records naming it), the ordered key
list and the compaction triggers — so they can never disagree with the data.

The encoding is canonical: keys ascending, leases by id, sessions oldest first.
Two stores that no client can tell apart therefore dump to the same bytes,
which lets replicas compare snapshots byte for byte.

msgpack holds integers up to 64 bits; lease ids, TTLs and revisions are int64
in etcd's API, and a larger value makes :func:`dump_snapshot` fail loudly.
Watchers are not state-machine state: a member installing a snapshot builds a
fresh :class:`~raftkube.mvcc.watch.WatchHub` and its clients re-watch.

Dumping is split in two so that a member can encode off its event loop:
:func:`capture` takes a :class:`StoreView` (cheap: the key list is copied, the
records are read later from the live histories, below the view's revision) and
:func:`encode_view` turns it into bytes (the expensive part, safe in another thread;
:func:`encode_parts` gives the same bytes in parts, for a caller that writes them behind
headers of its own without copying the image again).
"""

from __future__ import annotations

from bisect import bisect_right
from operator import attrgetter
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]

from raftkube.mvcc.index import KeyHistory, KeyIndex, first_retained
from raftkube.mvcc.lease import Lessor
from raftkube.mvcc.sessions import ClientSession, SessionTable
from raftkube.mvcc.store import MvccStore
from raftkube_spec.kv.errors import ErrorCode, KVError
from raftkube_spec.kv.responses import (
    CompactionResponse,
    DeleteRangeResponse,
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseRevokeResponse,
    LeaseTimeToLiveResponse,
    PutResponse,
    RangeResponse,
    ResponseOp,
    Result,
    TxnResponse,
)
from raftkube_spec.kv.types import KeyValue, ResponseHeader

_MOD_REVISION = attrgetter("mod_revision")
_RECORD_FIELDS = attrgetter("create_revision", "mod_revision", "version", "value", "lease")
"""A record as saved: everything but its key, which the key's entry holds once."""

FORMAT_VERSION = 1
"""Bumped on any incompatible change; a loader refuses versions it does not know."""


class SnapshotFormatError(ValueError):
    """The bytes are not a snapshot this version can load (corrupt, truncated or foreign)."""


# -- results ------------------------------------------------------------------------------
# Cached session results are saved as small tagged lists: [tag, header revision, fields...].

_ERROR, _RANGE, _PUT, _DELETE, _TXN, _COMPACT = 0, 1, 2, 3, 4, 5
_LEASE_GRANT, _LEASE_REVOKE, _LEASE_KEEP_ALIVE, _LEASE_TTL = 6, 7, 8, 9


def _kv_out(kv: KeyValue) -> list[Any]:
    return [kv.key, kv.create_revision, kv.mod_revision, kv.version, kv.value, kv.lease]


def _kv_in(raw: list[Any]) -> KeyValue:
    key, create, mod, version, value, lease = raw
    return KeyValue(key, create, mod, version, value, lease)


def _result_out(result: Result) -> list[Any]:
    rev = result.header.revision
    match result:
        case KVError():
            return [_ERROR, rev, result.code.name]
        case RangeResponse():
            return [_RANGE, rev, [_kv_out(kv) for kv in result.kvs], result.more, result.count]
        case PutResponse():
            prev = None if result.prev_kv is None else _kv_out(result.prev_kv)
            return [_PUT, rev, prev]
        case DeleteRangeResponse():
            return [_DELETE, rev, result.deleted, [_kv_out(kv) for kv in result.prev_kvs]]
        case TxnResponse():
            return [_TXN, rev, result.succeeded, [_result_out(r) for r in result.responses]]
        case CompactionResponse():
            return [_COMPACT, rev]
        case LeaseGrantResponse():
            return [_LEASE_GRANT, rev, result.id, result.ttl]
        case LeaseRevokeResponse():
            return [_LEASE_REVOKE, rev]
        case LeaseKeepAliveResponse():
            return [_LEASE_KEEP_ALIVE, rev, result.id, result.ttl]
        case LeaseTimeToLiveResponse():
            return [_LEASE_TTL, rev, result.id, result.ttl, result.granted_ttl, list(result.keys)]
    raise TypeError(f"not a KV result: {result!r}")


def _result_in(raw: list[Any]) -> Result:
    tag, rev, *rest = raw
    header = ResponseHeader(rev)
    if tag == _ERROR:
        return KVError(ErrorCode[rest[0]], header)
    if tag == _RANGE:
        kvs, more, count = rest
        return RangeResponse(header, tuple(_kv_in(kv) for kv in kvs), more, count)
    if tag == _PUT:
        return PutResponse(header, None if rest[0] is None else _kv_in(rest[0]))
    if tag == _DELETE:
        deleted, prev_kvs = rest
        return DeleteRangeResponse(header, deleted, tuple(_kv_in(kv) for kv in prev_kvs))
    if tag == _TXN:
        succeeded, responses = rest
        ops: list[ResponseOp] = []
        for r in responses:
            op = _result_in(r)
            if not isinstance(op, RangeResponse | PutResponse | DeleteRangeResponse | TxnResponse):
                raise SnapshotFormatError(f"not a txn op response: {op!r}")
            ops.append(op)
        return TxnResponse(header, succeeded, tuple(ops))
    if tag == _COMPACT:
        return CompactionResponse(header)
    if tag == _LEASE_GRANT:
        return LeaseGrantResponse(header, rest[0], rest[1])
    if tag == _LEASE_REVOKE:
        return LeaseRevokeResponse(header)
    if tag == _LEASE_KEEP_ALIVE:
        return LeaseKeepAliveResponse(header, rest[0], rest[1])
    if tag == _LEASE_TTL:
        lease_id, ttl, granted, keys = rest
        return LeaseTimeToLiveResponse(header, lease_id, ttl, granted, tuple(keys))
    raise SnapshotFormatError(f"unknown result tag {tag!r}")


# -- the store ----------------------------------------------------------------------------


@attrs.frozen
class StoreView:
    """A store's state at one instant, for :func:`encode_view` to encode while the store
    goes on changing (in another thread, on a member). Taking it copies only the key list,
    the leases and the sessions (records and results are immutable values); each key's
    records are read when encoding, from its live history, up to ``revision`` (see
    :meth:`KeyIndex.view`). The view holds its compaction point in the index so that no
    trimming removes what it encodes: :meth:`release` it once encoded."""

    revision: int
    compact_revision: int
    keys: list[bytes]
    histories: dict[bytes, KeyHistory]
    """The store's live histories: read only through :func:`encode_view`."""
    leases: list[list[int]]
    session_capacity: int
    sessions: list[tuple[int, int, list[tuple[int, Result]]]]
    index: KeyIndex

    def release(self) -> None:
        """Let trimming go past this view's compaction point again (call once, on the
        store's own thread)."""
        self.index.release(self.compact_revision)


def capture(store: MvccStore) -> StoreView:
    """The view of ``store`` now (see :class:`StoreView`); release it once encoded. Costs a
    copy of the key list: on the event loop, a few milliseconds for 100,000 keys, where
    copying every key's record list as well took 70 ms of CPU (300 ms of wall time on a
    loaded machine, long enough to cost the leader its term)."""
    keys, histories = store.index.view()
    store.index.hold(store.compact_revision)
    return StoreView(
        store.revision,
        store.compact_revision,
        keys,
        histories,
        [[lease.id, lease.ttl, lease.expiry_ms] for lease in store.lessor.leases()],
        store.sessions.capacity,
        [
            (s.client_id, s.lowest_unacked, sorted(s.results.items()))
            for s in store.sessions.sessions()
        ],
        store.index,
    )


def encode_view(view: StoreView) -> bytes:
    """Serialise a captured view to canonical msgpack bytes (the snapshot image): the
    :func:`encode_parts` joined."""
    return b"".join(encode_parts(view))


def encode_parts(view: StoreView) -> list[bytes | memoryview]:
    """The snapshot image of a captured view as consecutive parts, to be joined once into
    whatever buffer holds them (a member joins them behind its file's headers) or written
    one after another: a 30-40 MB image is then copied once, not once per layer.

    Each key's records are those of its live history up to the view's revision (later writes
    only append records of higher revisions; a key created later has none; a key whose
    history trimming removed had nothing the compaction rule keeps at the view's point).
    The keys are packed one at a time, as ``[key, records]``, into one growing buffer (a
    view of it is the middle part): the bytes are exactly those of packing the whole
    document at once, but neither a per-record temporary nor a per-key bytes object
    outlives its key, so a large store neither fills the collector's older generations nor
    scatters 100,000 short-lived strings among the records the event loop allocates
    meanwhile (memory the allocator could then not give back). A record is taken as a
    tuple by one C-level ``attrgetter`` call (msgpack packs a tuple as the same array a
    list gives)."""
    keys_packer = msgpack.Packer(use_bin_type=True, autoreset=False)
    pack_key = keys_packer.pack
    revision, compact = view.revision, view.compact_revision
    histories = view.histories
    count = 0
    for key in view.keys:
        history = histories.get(key)
        if history is None:
            continue
        kvs = history.kvs  # one read: compaction replaces the list, never edits it
        length = len(kvs)
        if not length:
            continue  # trimmed empty (up to the view's held point) while this encoded
        if kvs[-1].mod_revision > revision:
            length = bisect_right(kvs, revision, key=_MOD_REVISION)
        # Records the compaction rule drops may still await their (batched) trim.
        start = first_retained(kvs, length, compact) if compact else 0
        if start == length:
            continue
        pack_key((key, list(map(_RECORD_FIELDS, kvs[start:length]))))
        count += 1
    sessions = [
        [client_id, lowest_unacked, [[seq, _result_out(r)] for seq, r in results]]
        for client_id, lowest_unacked, results in view.sessions
    ]
    packer = msgpack.Packer(use_bin_type=True)
    pack = packer.pack
    return [
        packer.pack_array_header(6),
        pack(FORMAT_VERSION),
        pack(view.revision),
        pack(compact),
        packer.pack_array_header(count),
        keys_packer.getbuffer(),
        pack(view.leases),
        pack([view.session_capacity, sessions]),
    ]


def dump_snapshot(store: MvccStore) -> bytes:
    """Serialise ``store`` (history, leases, sessions) to canonical msgpack bytes."""
    view = capture(store)
    try:
        return encode_view(view)
    finally:
        view.release()


def load_snapshot(data: bytes | memoryview) -> MvccStore:
    """Rebuild a store equal in every observable way to the one :func:`dump_snapshot` saw
    (``data`` may be a view into a larger buffer, such as a snapshot file's bytes)."""
    try:
        doc = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated exception types
        raise SnapshotFormatError(f"snapshot is not valid msgpack: {exc}") from exc
    if not isinstance(doc, list) or not doc or doc[0] != FORMAT_VERSION:
        raise SnapshotFormatError("unknown snapshot format")
    try:
        return _build(doc)
    except SnapshotFormatError:
        raise
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise SnapshotFormatError(f"malformed snapshot: {exc}") from exc


def _build(doc: list[Any]) -> MvccStore:
    _, revision, compact_revision, raw_keys, raw_leases, (capacity, raw_sessions) = doc
    lessor = Lessor()
    for lease_id, ttl, expiry_ms in raw_leases:
        lessor.grant(lease_id, ttl, expiry_ms)
    histories = []
    # One pass: each key's records, and its live record's lease attached as it is built.
    for key, records in raw_keys:
        kvs = [KeyValue(key, c, m, v, value, lease) for c, m, v, value, lease in records]
        if kvs:
            kv = kvs[-1]
            if kv.lease and kv.version:
                if kv.lease not in lessor:
                    raise SnapshotFormatError(f"key {kv.key!r} names missing lease {kv.lease}")
                lessor.attach(kv.lease, kv.key)
            histories.append(kvs)
    index = KeyIndex.from_histories(histories)
    sessions = SessionTable(capacity)
    for client_id, lowest_unacked, results in raw_sessions:
        session = ClientSession(client_id, lowest_unacked)
        for seq, raw in results:
            session.results[seq] = _result_in(raw)
        sessions.restore(session)
    return MvccStore.restored(
        revision=revision,
        compact_revision=compact_revision,
        index=index,
        lessor=lessor,
        sessions=sessions,
    )
