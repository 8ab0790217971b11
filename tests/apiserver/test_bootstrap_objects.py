"""The API server's startup objects when another server creates them at the same time.

Found by the cluster suite with two API servers: both looked for the ``kubernetes`` Service
and found nothing, the first reserved its IP and created it, and the second's create was
refused by the IP reservation (422, "provided IP is already allocated") before the store
could say AlreadyExists; the second server then exited. Upstream's kubernetes-service
controller logs such a failure and tries again, so the server must look again, not exit.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing

from raftkube.apiserver.bootstrap_objects import (
    GIVE_UP_AFTER,
    RETRY_INTERVAL,
    ensure_bootstrap_objects,
    startup_objects,
)
from raftkube.apiserver.request import Request, Response
from raftkube.clock import TrioClock

SERVICE_PATH = "/api/v1/namespaces/default/services"
ALLOCATED = "failed to allocate IP 127.96.0.1: provided IP is already allocated"


class RacingAPI:
    """Every startup object is created on the first try, except the ``kubernetes`` Service,
    which another server creates first: its create is refused with upstream's 422 (the IP is
    held), ``losing_creates`` times, and it is there when looked for after the first."""

    def __init__(self, losing_creates: int, appears: bool = True) -> None:
        self.existing: set[str] = set()
        self.losing_creates = losing_creates
        self.appears = appears
        self.requests: list[tuple[str, str]] = []

    async def handle_as(self, user: Any, request: Request) -> Response:
        self.requests.append((request.method, request.path))
        if request.method == "GET":
            found = request.path in self.existing
            return Response(200 if found else 404, (), b"{}")
        obj = json.loads(request.body)
        path = f"{request.path}/{obj['metadata']['name']}"
        if path == f"{SERVICE_PATH}/kubernetes" and self.losing_creates > 0:
            self.losing_creates -= 1
            if self.appears:
                self.existing.add(path)
            return Response(422, (), json.dumps({"message": ALLOCATED}).encode())
        self.existing.add(path)
        return Response(201, (), b"{}")


@pytest.mark.trio
async def test_a_create_lost_to_another_server_is_looked_for_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = RacingAPI(losing_creates=1)
    start = trio.current_time()
    created = await ensure_bootstrap_objects(api, "127.96.0.1", "192.168.0.3", 6443, TrioClock())
    objects = startup_objects("127.96.0.1", "192.168.0.3", 6443)
    # Every object but the Service was created here; the Service was found on the second look.
    assert created == len(objects) - 1
    service_gets = [r for r in api.requests if r == ("GET", f"{SERVICE_PATH}/kubernetes")]
    assert len(service_gets) == 2
    assert api.requests.count(("POST", SERVICE_PATH)) == 1
    assert trio.current_time() - start == pytest.approx(RETRY_INTERVAL)


@pytest.mark.trio
async def test_an_object_neither_created_nor_found_ends_the_start_naming_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    api = RacingAPI(losing_creates=1_000, appears=False)
    start = trio.current_time()
    with pytest.raises(RuntimeError, match=r"cannot create Service kubernetes: 422 .*allocated"):
        await ensure_bootstrap_objects(api, "127.96.0.1", "192.168.0.3", 6443, TrioClock())
    waited = trio.current_time() - start
    assert GIVE_UP_AFTER - RETRY_INTERVAL <= waited <= GIVE_UP_AFTER
    # Nothing after the Service was tried: the Endpoints come after it.
    assert ("POST", "/api/v1/namespaces/default/endpoints") not in api.requests
