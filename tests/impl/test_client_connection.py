"""The client's pipelined connection: answers matched by id, one timer for every deadline,
and every waiting call released when the connection dies."""

from __future__ import annotations

import msgpack  # type: ignore[import-untyped]
import pytest
import trio
import trio.testing

from raftkube.client.connection import BrokenError, Connection
from raftkube.net.framing import FrameReader, encode_frame


async def _answer(stream: trio.abc.Stream, rid: int) -> None:
    await stream.send_all(encode_frame(msgpack.packb({"id": rid, "ok": True}, use_bin_type=True)))


@pytest.mark.trio
async def test_answers_reach_their_callers_in_any_order() -> None:
    client_side, server_side = trio.testing.memory_stream_pair()
    conn = Connection("test", client_side, timeout=10)
    got: dict[int, int] = {}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.run)

        async def call(rid: int) -> None:
            got[rid] = (await conn.call(rid, {"id": rid, "op": "status", "body": {}}).wait())["id"]

        for rid in (1, 2, 3):
            nursery.start_soon(call, rid)
        reader = FrameReader(server_side)
        asked = [msgpack.unpackb(await reader.receive_frame())["id"] for _ in range(3)]
        for rid in reversed(asked):
            await _answer(server_side, rid)
        await trio.testing.wait_all_tasks_blocked()
        assert got == {1: 1, 2: 2, 3: 3}
        assert not conn.calls
        conn.close()


@pytest.mark.trio
async def test_an_unanswered_call_times_out_and_a_later_one_still_works(
    autojump_clock: trio.abc.Clock,
) -> None:
    client_side, server_side = trio.testing.memory_stream_pair()
    conn = Connection("test", client_side, timeout=5)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.run)
        start = trio.current_time()
        with pytest.raises(trio.TooSlowError):
            await conn.call(1, {"id": 1, "op": "status", "body": {}}).wait()
        assert trio.current_time() - start == pytest.approx(5)
        assert not conn.calls
        reply = conn.call(2, {"id": 2, "op": "status", "body": {}})
        await _answer(server_side, 2)
        assert (await reply.wait())["id"] == 2
        conn.close()


@pytest.mark.trio
async def test_a_dead_connection_releases_every_waiting_call() -> None:
    client_side, server_side = trio.testing.memory_stream_pair()
    conn = Connection("test", client_side, timeout=10)
    failures: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.run)

        async def call(rid: int) -> None:
            with pytest.raises(BrokenError):
                await conn.call(rid, {"id": rid, "op": "status", "body": {}}).wait()
            failures.append("broken")

        for rid in (1, 2):
            nursery.start_soon(call, rid)
        await trio.testing.wait_all_tasks_blocked()
        await server_side.aclose()
    assert failures == ["broken", "broken"]
    assert conn.broken
    with pytest.raises(BrokenError):
        conn.call(3, {"id": 3, "op": "status", "body": {}})
