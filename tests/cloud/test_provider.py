"""The simulated cloud's HTTP API, through the controllers' client."""

from __future__ import annotations

import ipaddress

import pytest
import trio

from raftkube.cloud.client import CloudError
from raftkube.cloud.provider import SimulatedCloud
from tests.helpers.cloud import CloudHarness


def test_load_balancer_range_must_be_local() -> None:
    with pytest.raises(ValueError, match=r"not inside 127\.0\.0\.0/8"):
        SimulatedCloud("10.0.0.0/24")


@pytest.mark.trio
async def test_instances_routes_and_load_balancers(cloud: CloudHarness) -> None:
    c = cloud.client
    with trio.fail_after(10):
        made = await c.put_instance(
            "n1",
            {
                "zone": "z1",
                "region": "r1",
                "addresses": [{"type": "InternalIP", "address": "127.0.10.1"}],
            },
        )
        assert made["providerID"] == "raftkube://z1/n1" and made["state"] == "running"
        assert await c.instance("n1") == made
        assert await c.instance("missing") is None
        assert [i["name"] for i in await c.instances()] == ["n1"]

        await c.create_route("k", "uid-1", "n1", "10.244.1.0/24")
        await c.create_route("other", "uid-9", "n1", "10.245.1.0/24")
        routes = await c.routes("k")
        assert [(r["name"], r["targetNode"], r["blackhole"]) for r in routes] == [
            ("k-uid-1", "n1", False)
        ]
        with pytest.raises(CloudError) as bad:
            await c.create_route("k", "x", "n1", "not-a-cidr")
        assert bad.value.status == 400

        first = await c.ensure_load_balancer("k", "a1", "default/web", ["n1"], [{"port": 80}])
        second = await c.ensure_load_balancer("k", "a2", "default/api", [], [])
        assert ipaddress.ip_address(first["ip"]) in ipaddress.ip_network("127.240.0.0/29")
        assert first["ip"] != second["ip"]
        again = await c.ensure_load_balancer("k", "a1", "default/web", ["n1", "n2"], [])
        assert again["ip"] == first["ip"] and again["nodes"] == ["n1", "n2"]
        await c.delete_load_balancer("a1")
        await c.delete_load_balancer("a1")  # gone already is fine
        assert await c.load_balancer("a1") is None
        third = await c.ensure_load_balancer("k", "a3", "default/db", [], [])
        assert third["ip"] == first["ip"]  # the freed address is handed out again

        await c.delete_instance("n1")
        assert (await c.routes("k"))[0]["blackhole"]


@pytest.mark.trio
async def test_faults_on_demand(cloud: CloudHarness) -> None:
    c = cloud.client
    with trio.fail_after(10):
        await c.set_faults(fail_next=2)
        for _ in range(2):
            with pytest.raises(CloudError) as failed:
                await c.instances()
            assert failed.value.status == 503
        assert await c.instances() == []
        await c.set_faults(delay=0.3)
        started = trio.current_time()
        await c.instances()
        assert trio.current_time() - started >= 0.3
        await c.set_faults(fail_rate=1.0, path_prefix="/v1/routes")
        assert await c.instances() == []
        with pytest.raises(CloudError):
            await c.routes("k")
        await c.set_faults()
        assert await c.routes("k") == []
