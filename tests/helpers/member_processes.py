"""What the tests of real ``raftkube member`` and ``raftkube up`` processes share: their
command lines, and waiting (bounded) for a leader over the client protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from raftkube.client import Client, ClientError
from tests.helpers.processes import free_ports


async def status_of(endpoint: str, **kwargs: Any) -> dict[str, Any] | None:
    try:
        with trio.move_on_after(1.0):
            async with Client([endpoint], attempts=1, request_timeout=1.0, **kwargs) as c:
                return await c.status()
    except (ClientError, ExceptionGroup):  # the Client's nursery wraps errors
        pass
    return None


async def wait_leader(endpoints: dict[int, str], timeout: float = 15.0, **kwargs: Any) -> int:
    """The id of the member that says it leads, once one does."""
    with trio.fail_after(timeout):
        while True:
            for mid, ep in endpoints.items():
                st = await status_of(ep, **kwargs)
                if st is not None and st["is_leader"]:
                    return mid
            await trio.sleep(0.05)


def member_args(mid: int, peer_ports: list[int], client_ports: list[int], data: Path) -> list[str]:
    peers = ",".join(f"{i}=127.0.0.1:{p}" for i, p in enumerate(peer_ports))
    clients = ",".join(f"{i}=127.0.0.1:{p}" for i, p in enumerate(client_ports))
    return [
        "member",
        "--id",
        str(mid),
        "--peers",
        peers,
        "--client-endpoints",
        clients,
        "--client-port",
        str(client_ports[mid]),
        "--data-dir",
        str(data / f"m{mid}"),
        "--cluster-id",
        "proc-test",
    ]


def up_args(data: Path, base: int, *extra: str) -> list[str]:
    """``raftkube up`` on free ports only: the API server's too, so a cluster a developer has
    running on 6443 does not fail the test; no kubelets (these tests are about the store and
    the control plane; the kubelets have tests of their own)."""
    (apiserver_port,) = free_ports(1)
    return [
        "up", "--data-dir", str(data), "--port-base", str(base),
        "--apiserver-port", str(apiserver_port), "--nodes", "0", "--stop-timeout", "5", *extra,
    ]  # fmt: skip
