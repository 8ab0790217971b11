"""Configuration entries at the member's storage boundary: the WAL form of a ``Membership``,
and the configuration that rides beside a snapshot's image (in the core and in the file)."""

from __future__ import annotations

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftkube.mvcc import MvccStore, dump_snapshot
from raftkube.server.cluster_members import MemberAttributes, MemberTable
from raftkube.server.entries import (
    EntryError,
    core_value,
    decode_entry,
    encode_entry,
    stored_value,
)
from raftkube.server.snapshots import (
    IMAGE_PREFIX,
    SnapshotContents,
    collapsed,
    core_snapshot_data,
    image_entry,
    membership_of,
    pack_stored,
    restore_store,
    unpack_stored,
)
from raftkube_spec.kv.requests import PutRequest, RangeRequest
from raftkube_spec.raft.types import Entry, Membership

memberships = st.lists(
    st.tuples(st.integers(0, 2**40), st.booleans()), max_size=7, unique_by=lambda p: p[0]
).map(
    lambda pairs: Membership(
        voters=tuple(sorted(j for j, learner in pairs if not learner)),
        learners=tuple(sorted(j for j, learner in pairs if learner)),
    )
)


@given(memberships)
def test_a_configuration_survives_the_wal_form(conf: Membership) -> None:
    assert core_value(stored_value(conf)) == conf


@given(st.binary(max_size=64))
def test_any_other_stored_bytes_are_a_request_value_as_they_are(data: bytes) -> None:
    """Requests, no-ops and session registrations stay bytes; only a conf array converts."""
    value = core_value(data)
    assert value == data or isinstance(value, Membership)


def test_requests_stay_bytes_and_a_configuration_is_never_applied() -> None:
    put = encode_entry(7, 1, PutRequest(b"k", b"v"))
    assert core_value(put) is put
    assert core_value(b"") == b""
    with pytest.raises(EntryError):
        decode_entry(stored_value(Membership((0, 1))))


def test_member_attributes_entries_round_trip_and_bad_ones_are_named() -> None:
    joiner = MemberAttributes(3, "d", ("http://127.0.0.1:2390",), ("127.0.0.1:2391",))
    decoded = decode_entry(encode_entry(7, 2, joiner))
    assert (decoded.attributes, decoded.request, decoded.proposal_id) == (joiner, None, 2)
    for body, complaint in (
        ({"id": -1}, "id must be a non-negative integer"),
        ({"id": 1, "peer_urls": "http://x"}, "peer_urls must be a list of strings"),
        ({"id": 1, "nick": "x"}, "unknown field nick"),
    ):
        data = msgpack.packb([7, 2, "member_attrs", body], use_bin_type=True)
        with pytest.raises(EntryError, match=complaint):
            decode_entry(data)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"voters": [0]}, "is not {voters, learners}"),
        ({"voters": [0, "1"], "learners": []}, "voters is not a list of member ids"),
        ({"voters": [0, 1], "learners": [1]}, "both vote and learn"),
        ([0, 1], "is not {voters, learners}"),
    ],
)
def test_a_malformed_stored_configuration_is_refused(body: object, complaint: str) -> None:
    data = msgpack.packb([0, 0, "conf_change", body], use_bin_type=True)
    with pytest.raises(EntryError, match=complaint.replace("{", r"\{").replace("}", r"\}")):
        core_value(data)


def store_with(key: bytes) -> MvccStore:
    store = MvccStore()
    store.apply(PutRequest(key, b"1"))
    return store


def table(*names: str) -> MemberTable:
    return MemberTable(
        {
            j: MemberAttributes(j, name, (f"http://127.0.0.1:{2380 + j}",))
            for j, name in enumerate(names)
        }
    )


def test_the_snapshot_file_carries_configuration_and_members_before_the_image() -> None:
    image = dump_snapshot(store_with(b"a"))
    conf = Membership((0, 1, 2), (3,))
    contents = SnapshotContents(image, conf, table("a", "b", "c", "d"))
    stored = pack_stored(contents)
    back = unpack_stored(stored)
    assert back == contents and back.members == contents.members
    # The file's bytes are the core's image entry's value, the very same object.
    assert stored.startswith(IMAGE_PREFIX) and image_entry(3, stored).value is stored
    assert pack_stored(SnapshotContents(image)) == IMAGE_PREFIX + image
    assert unpack_stored(pack_stored(SnapshotContents(image))) == SnapshotContents(image)
    # Files from before the prefix: the bare image (membership changes off), and the
    # configuration before the image; the entry gets the prefix in front.
    assert unpack_stored(image) == SnapshotContents(image)
    assert unpack_stored(stored[len(IMAGE_PREFIX) :]) == contents
    assert image_entry(3, image).value == IMAGE_PREFIX + image
    with pytest.raises(EntryError, match="ends inside its configuration header"):
        unpack_stored(stored[: len(IMAGE_PREFIX) + 10])
    with pytest.raises(EntryError, match="ends inside its configuration"):
        unpack_stored(stored[: len(IMAGE_PREFIX) + 20])


def test_the_configuration_beside_an_image_shifts_no_index() -> None:
    """Entries folded after the image keep their indexes (a register entry's index is the
    session id it opens) with a synthetic configuration between them and the image, and the
    member table is the snapshot's, updated by the attributes entries after it."""
    conf = Membership((0, 1, 2))
    later = Membership((0, 1, 2, 3))
    stored = pack_stored(SnapshotContents(dump_snapshot(store_with(b"a")), conf, table("a", "b")))
    data = core_snapshot_data(4, stored, conf)
    assert collapsed(data) == stored
    assert collapsed(core_snapshot_data(4, stored, None)) == stored
    joiner = MemberAttributes(3, "d", ("http://127.0.0.1:2390",), ("127.0.0.1:2391",))
    folded = (
        Entry(5, encode_entry(1, 1, joiner)),
        Entry(5, later),
        Entry(5, encode_entry(1, 2, None)),
        Entry(5, b""),
    )
    assert collapsed(data + folded) is None
    assert membership_of(data + folded) == later
    assert membership_of(core_snapshot_data(4, stored, None)) is None
    for snapshot_data in (data + folded, (data[0], *folded)):
        members = table("x")
        store = restore_store(snapshot_data, index=12, members=members)
        assert 11 in store.sessions and 12 not in store.sessions
        assert store.apply(RangeRequest(b"a")).kvs  # type: ignore[union-attr]
        assert [m.name for m in members] == ["a", "b", "d"]
        assert members.get(3) == joiner and members.next_id() == 4
