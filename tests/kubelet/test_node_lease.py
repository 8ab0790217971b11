"""The node Lease's renewal against a real API server: one PUT from the copy the last write
returned, and a fresh read only when someone else changed the Lease or removed it."""

from __future__ import annotations

import itertools

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.kubelet.node import NodeConfig, NodeStatusReporter
from tests.helpers.api_server import APIHarness

LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1"


@pytest.mark.trio
async def test_renewals_put_the_last_copy_and_recover_from_a_conflict(api: APIHarness) -> None:
    ticks = itertools.count(1_700_000_000)
    with trio.fail_after(20):
        async with api.client_for("system:node:n1", ("system:nodes",)) as client:
            config = NodeConfig("n1", "127.1.0.0/24", lease_duration=4)
            reporter = NodeStatusReporter(client, config, TrioClock(), lambda: float(next(ticks)))
            await reporter.register()
            await reporter.renew_lease()  # created
            first = await api.admin.get(LEASE)
            assert first["spec"]["leaseDurationSeconds"] == 4
            await reporter.renew_lease()  # from the copy the create returned
            second = await api.admin.get(LEASE)
            assert second["spec"]["renewTime"] > first["spec"]["renewTime"]
            # Someone else writes the Lease: the kept copy is stale (409), so it is read again.
            second["spec"]["holderIdentity"] = "intruder"
            await api.admin.call("PUT", LEASE, body=second)
            await reporter.renew_lease()
            third = await api.admin.get(LEASE)
            assert third["spec"]["holderIdentity"] == "n1"
            assert third["spec"]["renewTime"] > second["spec"]["renewTime"]
            # Deleted: recreated.
            await api.admin.call("DELETE", LEASE)
            await reporter.renew_lease()
            fourth = await api.admin.get(LEASE)
            assert fourth["metadata"]["uid"] != third["metadata"]["uid"]
