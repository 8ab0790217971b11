"""An exception raised inside ``async with Client(...)`` comes out as itself, not wrapped in
the ExceptionGroup of the client's internal nursery, so callers catch client errors as they
would from any client."""

from __future__ import annotations

import pytest
import trio

from raftkube.client import Client, ClientError


@pytest.mark.trio
async def test_the_body_exception_comes_out_unwrapped() -> None:
    cause = KeyError("cause")
    with pytest.raises(ClientError) as caught:
        async with Client(["127.0.0.1:1"]):
            try:
                raise cause
            except KeyError:
                raise ClientError("unavailable", "no answer") from cause
    assert type(caught.value) is ClientError
    assert caught.value.__cause__ is cause


@pytest.mark.trio
async def test_a_client_call_error_is_catchable_around_the_block() -> None:
    async def dead_port() -> int:
        sock = trio.socket.socket()
        await sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        sock.close()
        return port

    endpoint = f"127.0.0.1:{await dead_port()}"
    with pytest.raises(ClientError):
        async with Client([endpoint], attempts=2, retry_delay=0.01, request_timeout=1.0) as c:
            await c.get(b"k")


@pytest.mark.trio
async def test_a_clean_exit_raises_nothing() -> None:
    async with Client(["127.0.0.1:1"]) as c:
        assert c.endpoint == "127.0.0.1:1"
