"""A client's plain TCP connections are read by the run's one poller task
(raftkube.net.poller.shared_poller): answers reach their calls over many connections at once,
the end of a connection releases its calls, and a failure in handling an answer is raised in
the connection's own task, not in the poller's (which would crash the whole run)."""

from __future__ import annotations

from collections.abc import Callable

import msgpack  # type: ignore[import-untyped]
import pytest
import trio
import trio.testing

from raftkube.client.connection import BrokenError, Connection
from raftkube.net.framing import FrameReader, encode_frame
from raftkube.net.poller import ReadPoller


async def _tcp_pair(listener: trio.SocketListener) -> tuple[trio.SocketStream, trio.abc.Stream]:
    host, port = listener.socket.getsockname()[:2]
    client = await trio.open_tcp_stream(host, port)
    server = await listener.accept()
    return client, server


@pytest.mark.trio
async def test_answers_over_many_connections_come_through_the_poller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    polled: list[int] = []
    register = ReadPoller.register

    def counted(self: ReadPoller, fd: int, handler: Callable[[], None]) -> None:
        polled.append(fd)
        register(self, fd, handler)

    monkeypatch.setattr(ReadPoller, "register", counted)
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    pairs = [await _tcp_pair(listener) for _ in range(4)]
    conns = [Connection("test", client, timeout=10) for client, _ in pairs]
    got: dict[int, dict[str, object]] = {}
    async with trio.open_nursery() as nursery:
        for conn in conns:
            nursery.start_soon(conn.run)

        async def call(n: int) -> None:
            got[n] = await conns[n].call(7, {"id": 7, "op": "status", "body": {}}).wait()

        for n in range(len(conns)):
            nursery.start_soon(call, n)
        for n, (_, server) in enumerate(pairs):
            asked = msgpack.unpackb(await FrameReader(server).receive_frame())
            assert asked["id"] == 7
            answer = {"id": 7, "ok": True, "n": n}
            await server.send_all(encode_frame(msgpack.packb(answer, use_bin_type=True)))
        await trio.testing.wait_all_tasks_blocked()
        assert got == {n: {"id": 7, "ok": True, "n": n} for n in range(len(conns))}
        assert len(polled) == len(conns)
        # The server side going away ends its connection and fails what waits on it.
        waiting = conns[0].call(8, {"id": 8, "op": "status", "body": {}})
        await pairs[0][1].aclose()
        with pytest.raises(BrokenError):
            await waiting.wait()
        for conn in conns:
            conn.close()
    await listener.aclose()


@pytest.mark.trio
async def test_a_failure_in_handling_an_answer_is_raised_by_its_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    client, server = await _tcp_pair(listener)
    conn = Connection("test", client, timeout=10)

    def broken(self: Connection, frame: bytes) -> None:
        raise RuntimeError("a bug in handling an answer")

    monkeypatch.setattr(Connection, "_take", broken)
    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="a bug"), flatten_subgroups=True):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.run)
            await server.send_all(encode_frame(msgpack.packb({"id": 1}, use_bin_type=True)))
    await server.aclose()
    await listener.aclose()
