"""The simulated cloud served over HTTP in the test's own Trio run: the ``cloud`` fixture
(registered by ``tests/conftest.py``) yields a :class:`CloudHarness`."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import attrs
import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.cloud.client import CloudClient
from raftkube.cloud.provider import SimulatedCloud
from raftkube.cloud.server import CloudService, serve_cloud


@attrs.define(eq=False)
class CloudHarness:
    service: CloudService
    url: str
    client: CloudClient

    @property
    def state(self) -> SimulatedCloud:
        return self.service.cloud


@pytest.fixture
async def cloud(nursery: trio.Nursery) -> AsyncIterator[CloudHarness]:
    service = CloudService(SimulatedCloud("127.240.0.0/29"), TrioClock(), random.Random(1))
    port = await nursery.start(serve_cloud, service)
    url = f"http://127.0.0.1:{port}"
    async with CloudClient(url, timeout=5.0) as client:
        yield CloudHarness(service, url, client)
