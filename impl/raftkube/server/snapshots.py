"""How a member carries its MVCC image through the Raft core's snapshots.

The sans-I/O core (:mod:`raftkube.raft`) models a snapshot as the *committed prefix of
entries*, because the specification's ``InstallSnapshotRequest`` carries ``entries`` and the
model compares what compaction discarded. A member cannot keep that prefix: the point of
compaction is to forget it (the WAL segments holding it are released). So the member encodes
its state-machine image as the value of **one synthetic entry** and makes that entry the
core's snapshot data:

* when it compacts, it saves ``dump_snapshot(mvcc)`` in a snapshot file, calls
  ``node.compact(index)`` and then replaces the core's in-memory snapshot data by
  ``(image_entry(term, image),)``; the core folds later compactions onto that tuple;
* on restart it builds the node with ``Snapshot(index, term, (image_entry(...),))``;
* a leader's ``InstallSnapshotRequest`` therefore carries ``entries=(image entry,)`` - still
  exactly the spec's message shape, with the image as its single value - and the follower
  rebuilds its store with :func:`restore_store`.

Why not keep images beside the core and send them out of band? The peer transport only
speaks the spec's messages, so the image would need a second channel and a rendezvous
between "snapshot message arrived" and "image arrived"; riding inside the message keeps
installation atomic and the transport unchanged. Why not keep the prefix? Memory and the
released WAL. The cost is a documented departure from the spec's *content* of the snapshot
(an image instead of the literal entries), not from its protocol.

:func:`restore_store` accepts any tuple the core might hand over - an image entry followed by
ordinary committed entries (a compaction the member had not yet collapsed), or only ordinary
entries (a peer that never compacted) - and replays the ordinary ones after the image.

**The configuration beside the image.** With membership changes on, the image alone cannot say
which configuration was in force at the snapshot (etcd keeps a ``ConfState`` in its snapshot
metadata for the same reason), and the configuration entries it stands for are gone. So the
core's data is ``(image entry, configuration entry)`` (:func:`core_snapshot_data`); the
configuration entry is synthetic, like the image, and never counts as a log position. On disk
the snapshot file's bytes are the image entry's value: :data:`IMAGE_PREFIX`, the
configuration, the image (:func:`stored_parts`), so the core holds the file's own bytes and a
30-40 MB image is not copied again to become an entry, nor sliced out of one to be saved. A
file without the prefix or the configuration (written before either was added, or with
membership changes off) still unpacks.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

import attrs
import msgpack  # type: ignore[import-untyped]

from raftkube.mvcc import MvccStore, load_snapshot
from raftkube.server.cluster_members import MemberTable
from raftkube.server.entries import EntryError, apply_entry, core_value, decode_entry, stored_value
from raftkube_spec.raft.types import Entry, Membership

IMAGE_PREFIX: Final = b"\x00RKIMAGE1\x00"
"""Marks a synthetic image entry. Ordinary values are empty (no-op) or start with a msgpack
array header (0x94/0x95), so they can never be taken for an image."""


def image_entry(term: int, stored: bytes) -> Entry:
    """The synthetic entry whose value is a snapshot file's bytes (:func:`pack_stored`): the
    very same bytes object when the file already starts with :data:`IMAGE_PREFIX`, as every
    file written now does, so the core's copy of a 30-40 MB image is the file's, not a second
    one made on the event loop; a file written before that gets the prefix put in front."""
    if stored.startswith(IMAGE_PREFIX):
        return Entry(term, stored)
    return Entry(term, IMAGE_PREFIX + stored)


def image_of(entry: Entry) -> bytes | None:
    """The snapshot file bytes carried by ``entry`` (its value, as it is: see
    :func:`image_entry`), or None if it is an ordinary entry."""
    value = entry.value
    if isinstance(value, bytes) and value.startswith(IMAGE_PREFIX):
        return value
    return None


@attrs.frozen
class SnapshotContents:
    """What a member's snapshot holds: the MVCC image and, with membership changes on, the
    configuration in force at it and the member table (:mod:`raftkube.server.cluster_members`).
    Unpacked from a file, the image is a view into the file's bytes, not a copy."""

    image: bytes | memoryview
    membership: Membership | None = None
    members: MemberTable | None = attrs.field(default=None, eq=False)


def core_snapshot_data(
    term: int, stored: bytes, membership: Membership | None
) -> tuple[Entry, ...]:
    """The core's snapshot data for a snapshot file's bytes ``stored``: the image entry, and
    the configuration in force at it when membership changes are on (``membership`` not
    None), where the core's tracker finds it."""
    if membership is None:
        return (image_entry(term, stored),)
    return (image_entry(term, stored), Entry(term, membership))


def collapsed(data: Sequence[Entry]) -> bytes | None:
    """The snapshot file bytes of data that is exactly :func:`core_snapshot_data`'s form
    (nothing folded after it), or None."""
    if not 1 <= len(data) <= 2:
        return None
    stored = image_of(data[0])
    if stored is None or (len(data) == 2 and not isinstance(data[1].value, Membership)):
        return None
    return stored


def membership_of(data: Sequence[Entry]) -> Membership | None:
    """The last configuration in a snapshot's data (the one in force at its index), if any."""
    for entry in reversed(data):
        if isinstance(entry.value, Membership):
            return entry.value
    return None


CONF_PREFIX: Final = b"\x00RKCONF1\x00"
"""Marks a snapshot file that starts with its configuration and member table (then a 4-byte
length, a msgpack map ``{conf, members}``, the image). MVCC images start with a msgpack array
header, never this."""


def pack_stored(contents: SnapshotContents) -> bytes:
    """The bytes of a snapshot file (:func:`stored_parts` joined)."""
    return b"".join(stored_parts([contents.image], contents.membership, contents.members))


def stored_parts(
    image: list[bytes] | list[bytes | memoryview],
    membership: Membership | None,
    members: MemberTable | None,
) -> list[bytes | memoryview]:
    """The bytes of a snapshot file in parts, ``image`` being the MVCC image's (see
    :func:`raftkube.mvcc.snapshot.encode_parts`): :data:`IMAGE_PREFIX`, so that the file's
    bytes are the core's image entry's value as they are (:func:`image_entry`), then the
    configuration and member table when there is a configuration (membership changes on),
    then the image. A file written before the prefix (or the configuration) was added
    still unpacks (:func:`unpack_stored`)."""
    if membership is None:
        return [IMAGE_PREFIX, *image]
    table = members if members is not None else MemberTable()
    head: bytes = msgpack.packb(
        {"conf": stored_value(membership), "members": table.encode()}, use_bin_type=True
    )
    return [IMAGE_PREFIX, CONF_PREFIX, struct.pack("<I", len(head)), head, *image]


def unpack_stored(stored: bytes) -> SnapshotContents:
    """What a snapshot file's bytes hold (see :func:`stored_parts`; the image is a view into
    ``stored``). Raises :class:`~raftkube.server.entries.EntryError` if the configuration part
    is malformed."""
    data = memoryview(stored)
    if stored.startswith(IMAGE_PREFIX):
        data = data[len(IMAGE_PREFIX) :]
    if not stored.startswith(CONF_PREFIX, len(stored) - len(data)):
        return SnapshotContents(data)
    start = len(CONF_PREFIX) + 4
    if len(data) < start:
        raise EntryError("snapshot file ends inside its configuration header")
    (size,) = struct.unpack_from("<I", data, len(CONF_PREFIX))
    if len(data) < start + size:
        raise EntryError("snapshot file ends inside its configuration")
    try:
        head = msgpack.unpackb(data[start : start + size], raw=False)
        if not isinstance(head, dict) or set(head) != {"conf", "members"}:
            raise EntryError("snapshot file's configuration is not a {conf, members} map")
        conf = core_value(head["conf"])
        if not isinstance(conf, Membership):
            raise EntryError("snapshot file's configuration is not a configuration entry")
        members = MemberTable.decode(head["members"])
    except EntryError:
        raise
    except (ValueError, TypeError, msgpack.ExtraData) as exc:
        raise EntryError(f"snapshot file's configuration: {exc}") from exc
    return SnapshotContents(data[start + size :], conf, members)


def restore_store(
    data: Sequence[Entry], *, index: int, members: MemberTable | None = None
) -> MvccStore:
    """Rebuild the state machine at ``index`` from a core snapshot's ``data``; with
    ``members``, the member table too (replaced by the snapshot's, then updated by the
    member-attributes entries after it).

    The ordinary entries in ``data`` are the last ones before ``index`` (the image, if any,
    stands for everything before them), so the first of them is at
    ``index - len(ordinary) + 1``; their indexes matter because a register entry's index is
    the session id it opens. Counting from the end also makes the synthetic configuration
    beside an image harmless: it comes first, is not bytes, and is skipped like any
    configuration entry.
    """
    entries = list(data)
    store: MvccStore | None = None
    if entries:
        stored = image_of(entries[0])
        if stored is not None:
            contents = unpack_stored(stored)
            store = load_snapshot(contents.image)
            if members is not None and contents.members is not None:
                members.replace(contents.members)
            entries = entries[1:]
    if store is None:
        store = MvccStore()
    first = index - len(entries) + 1
    for k, entry in enumerate(entries):
        value = entry.value
        if not isinstance(value, bytes) or not value or image_of(entry) is not None:
            continue
        try:
            apply_entry(store, first + k, decode_entry(value), members)
        except EntryError:
            continue  # The live path skips undecodable entries too.
    return store
