"""Answers larger than a frame: a range is split into several frames and joined by the client;
other answers are refused by name, and so are oversized requests.

The frame limit of a second client listener is lowered (``serve_clients(max_frame=...)``) so
that a few hundred small keys exceed it, instead of writing the megabytes the default needs."""

from __future__ import annotations

import io
from functools import partial
from pathlib import Path

import msgpack  # type: ignore[import-untyped]
import pytest
import trio
import trio.testing

from raftkube.api import wire
from raftkube.client import Client, ClientError
from raftkube.client.connection import Connection
from raftkube.mvcc import MvccStore
from raftkube.mvcc.reader import RangeReader, open_range
from raftkube.net.framing import encode_frame
from raftkube.rkctl.commands import Context
from raftkube.rkctl.connection import Settings
from raftkube.rkctl.output import Printer
from raftkube.server.member import MemberConfig
from raftkube.server.service import KV_OVERHEAD, serve_clients
from raftkube.server.wiring import open_member
from raftkube_spec.kv import prefix_range_end
from raftkube_spec.kv.requests import PutRequest, RangeRequest, TxnRequest
from raftkube_spec.kv.responses import RangeResponse, TxnResponse
from raftkube_spec.kv.types import KeyValue

SMALL_FRAME = 4096
KEYS = 300


def _parts(store: MvccStore, req: RangeRequest, budget: int) -> list[list[KeyValue]]:
    reader = open_range(store, req, part_bytes=budget, overhead=KV_OVERHEAD)
    assert isinstance(reader, RangeReader)
    parts = []
    with reader:
        while not reader.done:
            part = reader.step()
            if part is not None:
                parts.append(part)
    return parts


def test_range_parts_respect_the_budget_and_keep_every_key_once() -> None:
    store = MvccStore()
    for i in range(200):
        store.apply(PutRequest(b"k%03d" % i, b"v" * (i % 50)))
    budget = 1024
    everything = RangeRequest(b"k", prefix_range_end(b"k"))
    parts = _parts(store, everything, budget)
    # Contiguous, in key order, no key twice or lost.
    assert [kv for part in parts for kv in part] == list(store.apply(everything).kvs)  # type: ignore[union-attr]
    for part in parts:
        cost = sum(len(kv.key) + len(kv.value) + KV_OVERHEAD for kv in part)
        assert part and (cost <= budget or len(part) == 1)
    # One KeyValue over the budget gets a part of its own rather than being dropped.
    store.apply(PutRequest(b"a", b"x" * 5000))
    store.apply(PutRequest(b"b", b"y"))
    big = _parts(store, RangeRequest(b"a", b"c"), budget)
    assert [[kv.key for kv in part] for part in big] == [[b"a"], [b"b"]]
    assert _parts(store, RangeRequest(b"none", b"nonf"), budget) == [[]]


@pytest.mark.trio
async def test_a_range_over_the_frame_limit_is_served_in_full_at_one_revision(
    tmp_path: Path,
) -> None:
    with trio.fail_after(30):
        cfg = MemberConfig(member_id=0, servers=1, cluster_id="large")
        async with open_member(cfg, tmp_path / "m0") as rm, trio.open_nursery() as nursery:
            host, port = await nursery.start(
                partial(serve_clients, max_frame=SMALL_FRAME), rm.member, "127.0.0.1", 0
            )
            async with Client([rm.client_endpoint], retry_delay=0.01) as c:
                while not rm.member.is_leader:
                    await trio.sleep(0.01)
                for i in range(KEYS):
                    await c.put(b"big/%04d" % i, b"value-%04d-" % i + b"." * 40)
                await c.put(b"other", b"x")
                expected = await c.get(b"big/", b"big0")
                revision = expected.header.revision

            async with Client([f"{host}:{port}"], retry_delay=0.01, attempts=2) as small:
                # Over ten frames' worth: served whole, in key order, at one revision.
                got = await small.get(b"big/", b"big0")
                assert got == expected and len(got.kvs) == KEYS and got.count == KEYS
                assert got.header.revision == revision
                # An older revision, a limit and keys-only are split the same way.
                at = expected.kvs[199].mod_revision
                old = await small.get(b"big/", b"big0", revision=at)
                assert old.kvs == expected.kvs[:200]
                limited = await small.get(b"big/", b"big0", limit=150)
                assert limited.kvs == expected.kvs[:150] and limited.more
                keys = await small.request(RangeRequest(b"big/", b"big0", keys_only=True))
                assert isinstance(keys, RangeResponse) and len(keys.kvs) == KEYS
                # A txn answer is not split: it is refused by name, and the connection serves
                # the next request.
                txn = TxnRequest(success=(RangeRequest(b"big/", b"big0"),))
                with pytest.raises(ClientError, match="--limit") as refused:
                    await small.txn(txn)
                assert refused.value.code == "response_too_large"
                small_txn = TxnRequest(success=(RangeRequest(b"big/", b"big0", limit=3),))
                answer = await small.txn(small_txn)
                assert isinstance(answer, TxnResponse) and answer.succeeded
                assert (await small.get(b"other")).kvs[0].value == b"x"

            async with Client([rm.client_endpoint], retry_delay=0.01, attempts=2) as c:
                # A request over etcd's --max-request-bytes is refused at once, touching nothing.
                with pytest.raises(ClientError, match="request is too large") as too_big:
                    await c.put(b"huge", b"x" * (wire.MAX_REQUEST_BYTES + 1))
                assert too_big.value.code == "request_too_large"
                assert (await c.get(b"huge")).count == 0
            nursery.cancel_scope.cancel()


def test_a_key_value_is_decoded_fast_when_well_formed_and_refused_by_field_when_not() -> None:
    kv = KeyValue(b"k", 2, 3, 1, b"v", 7)
    assert wire.decode_kv(wire.encode_kv(kv)) == kv
    bad = {**wire.encode_kv(kv), "version": "1"}
    with pytest.raises(wire.WireError, match=r"kvs\[0\]\.version: expected an integer"):
        wire.decode_kv(bad, "kvs[0]")
    with pytest.raises(wire.WireError, match=r"kv\.mod_revision: must be >= 0"):
        wire.decode_kv({**wire.encode_kv(kv), "mod_revision": -1})
    with pytest.raises(wire.WireError, match=r"kv\.extra: unknown field"):
        wire.decode_kv({**wire.encode_kv(kv), "extra": 1})


@pytest.mark.trio
async def test_a_malformed_answer_part_fails_its_call_by_name_and_the_connection_goes_on() -> None:
    client_side, server_side = trio.testing.memory_stream_pair()
    conn = Connection("test", client_side, timeout=10)
    header = {"cluster_id": "c", "member_id": 0, "revision": 5, "raft_term": 1}
    good = wire.encode_kv(KeyValue(b"a", 2, 2, 1, b"x"))

    async def send(frame: dict[str, object]) -> None:
        await server_side.send_all(encode_frame(msgpack.packb(frame, use_bin_type=True)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.run)
        bad_call = conn.call(1, {"id": 1, "op": "range", "body": {}})
        ok_call = conn.call(2, {"id": 2, "op": "range", "body": {}})
        bad_part = {**good, "version": "one"}
        part = {"id": 1, "ok": True, "header": header, "body": {"kvs": [bad_part]}}
        await send({**part, "partial": True})
        await send({"id": 1, "ok": True, "header": header, "body": {"kvs": [], "more": False}})
        await send(
            {"id": 2, "ok": True, "header": header, "body": {"kvs": [good]}, "partial": True}
        )
        await send({"id": 2, "ok": True, "header": header, "body": {"kvs": [good], "count": 2}})
        refused = await bad_call.wait()
        assert refused["error"]["code"] == "bad_request"
        assert "body.kvs[0].version" in refused["error"]["message"]
        answer = await ok_call.wait()
        resp = wire.decode_response("range", answer["body"], 5)
        assert isinstance(resp, RangeResponse) and [kv.key for kv in resp.kvs] == [b"a", b"a"]
        conn.close()


@pytest.mark.trio
async def test_each_part_of_an_answer_restarts_its_timeout_and_a_stalled_one_still_expires(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client_side, server_side = trio.testing.memory_stream_pair()
    conn = Connection("test", client_side, timeout=10)
    header = {"cluster_id": "c", "member_id": 0, "revision": 5, "raft_term": 1}
    part = {
        "id": 1,
        "ok": True,
        "header": header,
        "body": {"kvs": [wire.encode_kv(KeyValue(b"a", 2, 2, 1, b"x"))]},
        "partial": True,
    }

    async def send(frame: dict[str, object]) -> None:
        await server_side.send_all(encode_frame(msgpack.packb(frame, use_bin_type=True)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.run)
        slow = conn.call(1, {"id": 1, "op": "range", "body": {}})
        stalled = conn.call(2, {"id": 2, "op": "range", "body": {}})
        for _ in range(5):  # 30 s of parts, 6 s apart: longer than the 10 s timeout
            await trio.sleep(6)
            await send(part)
        await send({**part, "partial": False, "body": {"kvs": [], "count": 5}})
        answer = await slow.wait()
        resp = wire.decode_response("range", answer["body"], 5)
        assert isinstance(resp, RangeResponse) and len(resp.kvs) == 5
        with pytest.raises(trio.TooSlowError):  # call 2 got nothing: it expired at 10 s
            await stalled.wait()
        conn.close()


@pytest.mark.trio
async def test_rkctl_command_timeout_bounds_each_wait_for_a_part_not_the_whole_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    out = io.StringIO()
    ctx = Context(Settings(("127.0.0.1:1",), command_timeout=5.0), Printer(out), out, out, out)
    start = trio.current_time()
    async with ctx.progress_deadline() as progress:
        for _ in range(6):  # 24 s in all, a part every 4 s
            await trio.sleep(4)
            progress()
    assert trio.current_time() - start == 24
    with pytest.raises(trio.TooSlowError):
        async with ctx.progress_deadline() as progress:
            await trio.sleep(4)
            progress()
            await trio.sleep(100)  # stalled: cut off 5 s after the last part
    assert trio.current_time() - start == 24 + 4 + 5
