"""A member's plain TCP client connections are all read by one task (raftkube.net.poller):
many connections are served side by side, and one that breaks the framing or goes away
costs only itself."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
import trio

from raftkube.client import Client
from raftkube.net.framing import HEADER
from raftkube.net.poller import ReadPoller
from raftkube.server.member import MemberConfig
from raftkube.server.service import serve_clients
from raftkube.server.wiring import open_member

SMALL_FRAME = 4096


@pytest.mark.trio
async def test_many_connections_are_served_and_a_bad_one_costs_only_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    polled: list[int] = []
    register = ReadPoller.register

    def counted(self: ReadPoller, fd: int, handler: Callable[[], None]) -> None:
        polled.append(fd)
        register(self, fd, handler)

    monkeypatch.setattr(ReadPoller, "register", counted)
    with trio.fail_after(30):
        cfg = MemberConfig(member_id=0, servers=1, cluster_id="polled")
        async with open_member(cfg, tmp_path / "m0") as rm, trio.open_nursery() as nursery:
            host, port = await nursery.start(
                partial(serve_clients, max_frame=SMALL_FRAME), rm.member, "127.0.0.1", 0
            )
            while not rm.member.is_leader:
                await trio.sleep(0.01)
            async with contextlib.AsyncExitStack() as stack:
                clients = [
                    await stack.enter_async_context(
                        Client([f"{host}:{port}"], retry_delay=0.01, attempts=1)
                    )
                    for _ in range(8)
                ]
                # A raw connection announcing a frame over the limit is dropped at its header.
                bad = await trio.open_tcp_stream(host, port)
                await bad.send_all(HEADER.pack(SMALL_FRAME + 1))
                assert await bad.receive_some(100) == b""
                await bad.aclose()
                # One that closes mid-frame is dropped too, quietly.
                half = await trio.open_tcp_stream(host, port)
                await half.send_all(HEADER.pack(100) + b"abc")
                await half.aclose()

                async def put(n: int) -> None:
                    for k in range(5):
                        await clients[n].put(b"k%d" % n, b"v%d" % k)

                async with trio.open_nursery() as writers:
                    for n in range(len(clients)):
                        writers.start_soon(put, n)
                for n, c in enumerate(clients):
                    got = await c.get(b"k%d" % n)
                    assert got.kvs[0].value == b"v4" and got.kvs[0].version == 5
            assert len(polled) >= 10, "the connections were not read by the poller"
            nursery.cancel_scope.cancel()
