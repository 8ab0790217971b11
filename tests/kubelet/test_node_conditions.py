"""The kubelet's node status updates leave the conditions other components own, as
upstream's strategic merge patch of the status does (conditions merge by type)."""

from __future__ import annotations

import itertools

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.kubelet.node import NodeConfig, NodeStatusReporter
from tests.helpers.api_server import APIHarness

NODE = "/api/v1/nodes/n1"


@pytest.mark.trio
async def test_a_status_update_keeps_the_route_controllers_condition(api: APIHarness) -> None:
    ticks = itertools.count(1_700_000_000)
    with trio.fail_after(20):
        async with api.client_for("system:node:n1", ("system:nodes",)) as client:
            config = NodeConfig("n1", "127.1.0.0/24")
            reporter = NodeStatusReporter(client, config, TrioClock(), lambda: float(next(ticks)))
            await reporter.register()
            node = await api.admin.get(NODE)
            network = {
                "type": "NetworkUnavailable",
                "status": "False",
                "reason": "RouteCreated",
                "message": "RouteController created a route",
            }
            conditions = [*node["status"]["conditions"], network]
            patch = {"status": {"conditions": conditions}}
            await api.admin.patch(f"{NODE}/status", "", patch, patch_type="merge")
            await reporter.update_status(force=True)
            after = await api.admin.get(NODE)
            by_type = {c["type"]: c for c in after["status"]["conditions"]}
            assert by_type["NetworkUnavailable"]["reason"] == "RouteCreated"
            assert by_type["Ready"]["status"] == "True"
            assert len(after["status"]["conditions"]) == 5
