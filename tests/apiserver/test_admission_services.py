"""Service cluster IPs and node ports: allocation, upstream's refusals, updates, release, dry
runs, and two API servers racing for one range."""

from __future__ import annotations

import random
from typing import Any

import attrs
import pytest
import trio

from raftkube.apiserver import admission
from raftkube.apiserver.auth.user import UserInfo
from raftkube.apiserver.errors import APIError
from raftkube.apiserver.request_info import RequestInfo
from raftkube.apiserver.resources import ResourceInfo, lookup

NAMESPACES = lookup("", "v1", "namespaces")
SERVICES = lookup("", "v1", "services")


@attrs.frozen
class Call:
    info: RequestInfo
    resource: ResourceInfo
    user: UserInfo = attrs.field(factory=lambda: UserInfo("alice"))
    dry_run: bool = False


def _call(name: str = "", dry_run: bool = False, sub: str = "") -> Call:
    assert SERVICES is not None
    info = RequestInfo("/", "create", True, "/api", "", "v1", "ns", "services", sub, name)
    return Call(info, SERVICES, dry_run=dry_run)


def _ctx() -> admission.InMemoryContext:
    ctx = admission.InMemoryContext()
    assert NAMESPACES is not None
    ctx.put(NAMESPACES, {"metadata": {"name": "ns"}, "status": {"phase": "Active"}})
    return ctx


def _chain(
    ctx: admission.InMemoryContext,
    cidr: str = "127.96.0.0/12",
    ports: str = "30000-32767",
    seed: int = 0,
) -> admission.AdmissionChain:
    allocation = admission.ServiceAllocation(
        admission.ServiceIPRange.parse(cidr), admission.PortRange.parse(ports), random.Random(seed)
    )
    return admission.default_chain(ctx, allocation=allocation)


def _svc(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"},
        "spec": {"ports": [{"port": 80, "protocol": "TCP"}], **spec},
    }


async def _create(
    chain: admission.AdmissionChain, svc: dict[str, Any], dry_run: bool = False
) -> None:
    call = _call(dry_run=dry_run)
    with trio.fail_after(5):
        await chain.admit("CREATE", call, svc, None)
        await chain.validate("CREATE", call, svc, None)


async def _refused(chain: admission.AdmissionChain, svc: dict[str, Any], op: str = "CREATE",
                   old: dict[str, Any] | None = None) -> APIError:  # fmt: skip
    with trio.fail_after(5), pytest.raises(APIError) as info:
        await chain.validate(op, _call(svc["metadata"]["name"]), svc, old)
    return info.value


def test_the_default_range_is_loopback_and_leaves_127_0_0_1_alone() -> None:
    r = admission.ServiceIPRange.parse()
    assert r.cidr == "127.96.0.0/12" == admission.DEFAULT_SERVICE_CIDR
    assert r.kubernetes_ip == "127.96.0.1"
    assert not r.contains("127.0.0.1")
    assert r.contains("127.111.255.254") and not r.contains("127.111.255.255")
    assert not r.contains("127.96.0.0")
    assert str(admission.PortRange.parse()) == "30000-32767"


@pytest.mark.trio
async def test_a_cluster_ip_service_gets_a_free_ip_held_under_its_uid() -> None:
    ctx = _ctx()
    svc = _svc()
    await _create(_chain(ctx), svc)
    spec = svc["spec"]
    ip = spec["clusterIP"]
    assert admission.ServiceIPRange.parse().contains(ip)
    assert spec["clusterIPs"] == [ip]
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert "nodePort" not in spec["ports"][0]
    assert ctx.reservations == {f"serviceips/{ip}": "uid-web"}


@pytest.mark.trio
async def test_a_requested_ip_is_honoured_once_and_checked_against_the_range() -> None:
    ctx = _ctx()
    chain = _chain(ctx)
    first = _svc("a", clusterIP="127.96.0.10")
    await _create(chain, first)
    assert first["spec"]["clusterIPs"] == ["127.96.0.10"]
    err = await _refused(chain, _svc("b", clusterIP="127.96.0.10"))
    assert (err.code, err.reason) == (422, "Invalid")
    assert err.message == (
        'Service "b" is invalid: spec.clusterIPs: Invalid value: []string{"127.96.0.10"}: '
        "failed to allocate IP 127.96.0.10: provided IP is already allocated"
    )
    for outside in ("10.0.0.1", "127.96.0.0"):
        err = await _refused(chain, _svc("c", clusterIPs=[outside]))
        assert err.message == (
            f'Service "c" is invalid: spec.clusterIPs: Invalid value: []string{{"{outside}"}}: '
            f"failed to allocate IP {outside}: the provided IP ({outside}) is not in the valid "
            "range. The range of valid IPs is 127.96.0.0/12"
        )
    assert list(ctx.reservations) == ["serviceips/127.96.0.10"]


@pytest.mark.trio
async def test_headless_and_external_name_services_hold_nothing() -> None:
    ctx = _ctx()
    chain = _chain(ctx)
    headless = _svc("h", clusterIP="None")
    await _create(chain, headless)
    assert headless["spec"]["clusterIPs"] == ["None"]
    external = _svc("e", type="ExternalName", externalName="example.com")
    await _create(chain, external)
    assert "clusterIP" not in external["spec"] and "ipFamilies" not in external["spec"]
    assert ctx.reservations == {}


@pytest.mark.trio
async def test_node_port_services_get_a_port_per_service_port() -> None:
    ctx = _ctx()
    chain = _chain(ctx)
    svc = _svc(
        type="NodePort",
        ports=[
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "web", "port": 80, "protocol": "TCP", "nodePort": 30080},
        ],
    )
    await _create(chain, svc)
    udp, tcp, web = svc["spec"]["ports"]
    assert 30000 <= udp["nodePort"] <= 32767
    assert tcp["nodePort"] == udp["nodePort"]  # one port number, two protocols: one node port
    assert web["nodePort"] == 30080
    keys = {k for k in ctx.reservations if k.startswith("servicenodeports/")}
    assert keys == {f"servicenodeports/{udp['nodePort']}", "servicenodeports/30080"}
    err = await _refused(chain, _svc("b", type="NodePort", ports=[{"port": 1, "nodePort": 30080}]))
    assert err.message == (
        'Service "b" is invalid: spec.ports[0].nodePort: Invalid value: 30080: '
        "provided port is already allocated"
    )
    err = await _refused(chain, _svc("c", type="NodePort", ports=[{"port": 1, "nodePort": 80}]))
    assert err.message == (
        'Service "c" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not '
        "in the valid range. The range of valid ports is 30000-32767"
    )


@pytest.mark.trio
async def test_load_balancers_node_ports_and_health_check_port() -> None:
    ctx = _ctx()
    chain = _chain(ctx)
    local = _svc("lb", type="LoadBalancer", externalTrafficPolicy="Local")
    await _create(chain, local)
    assert local["spec"]["ports"][0]["nodePort"] and local["spec"]["healthCheckNodePort"]
    bare = _svc("bare", type="LoadBalancer", allocateLoadBalancerNodePorts=False)
    await _create(chain, bare)
    assert "nodePort" not in bare["spec"]["ports"][0]
    assert "healthCheckNodePort" not in bare["spec"]


@pytest.mark.trio
async def test_a_refusal_part_way_gives_back_what_it_had_reserved() -> None:
    ctx = _ctx()
    chain = _chain(ctx)
    await _create(chain, _svc("a", type="NodePort", ports=[{"port": 1, "nodePort": 30001}]))
    before = dict(ctx.reservations)
    svc = _svc("b", type="NodePort", ports=[{"port": 2}, {"port": 3, "nodePort": 30001}])
    err = await _refused(chain, svc)
    assert err.code == 422
    assert ctx.reservations == before


@pytest.mark.trio
async def test_a_dry_run_reserves_nothing_but_is_refused_alike() -> None:
    ctx = _ctx()
    chain = _chain(ctx)
    await _create(chain, _svc("a", clusterIP="127.96.0.10"))
    before = dict(ctx.reservations)
    svc = _svc("b", type="NodePort", ports=[{"port": 1}, {"port": 2}])
    await _create(chain, svc, dry_run=True)
    assert svc["spec"]["clusterIP"] and svc["spec"]["ports"][0]["nodePort"]
    assert svc["spec"]["ports"][0]["nodePort"] != svc["spec"]["ports"][1]["nodePort"]
    assert ctx.reservations == before
    with trio.fail_after(5), pytest.raises(APIError) as info:
        await chain.validate(
            "CREATE", _call(dry_run=True), _svc("c", clusterIP="127.96.0.10"), None
        )
    assert info.value.code == 422


@pytest.mark.trio
async def test_updates_keep_drop_and_release_as_upstream() -> None:
    ctx = _ctx()
    chain = _chain(ctx)
    old = _svc(type="NodePort")
    await _create(chain, old)
    ip, node_port = old["spec"]["clusterIP"], old["spec"]["ports"][0]["nodePort"]
    held = dict(ctx.reservations)
    # A replace whose manifest has neither keeps both, and reserves nothing new.
    new = _svc(type="NodePort")
    with trio.fail_after(5):
        await chain.validate("UPDATE", _call("web"), new, old)
    assert new["spec"]["clusterIP"] == ip and new["spec"]["ports"][0]["nodePort"] == node_port
    assert ctx.reservations == held
    # Back to ClusterIP: the node port the update left as it was is dropped, and freed once
    # the update is committed.
    plain = _svc(type="ClusterIP", clusterIP=ip, ports=[{"port": 80, "nodePort": node_port}])
    with trio.fail_after(5):
        await chain.validate("UPDATE", _call("web"), plain, new)
        assert "nodePort" not in plain["spec"]["ports"][0]
        await chain.updated(_call("web"), plain, new)
    assert ctx.reservations == {f"serviceips/{ip}": "uid-web"}
    # An update that fails after admission gives back only what it reserved.
    again = _svc(type="NodePort", clusterIP=ip)
    with trio.fail_after(5):
        await chain.validate("UPDATE", _call("web"), again, plain)
        assert len(ctx.reservations) == 2
        await chain.abandoned(_call("web"), again, plain)
    assert ctx.reservations == {f"serviceips/{ip}": "uid-web"}
    with trio.fail_after(5):
        await chain.deleted(_call("web"), plain)
    assert ctx.reservations == {}


@pytest.mark.trio
async def test_release_frees_only_the_owners_keys() -> None:
    ctx = _ctx()
    chain = _chain(ctx)
    await _create(chain, _svc("a", clusterIP="127.96.0.10"))
    impostor = _svc("a", clusterIP="127.96.0.10")
    impostor["metadata"]["uid"] = "someone-else"
    with trio.fail_after(5):
        await chain.deleted(_call("a"), impostor)
    assert ctx.reservations == {"serviceips/127.96.0.10": "uid-a"}


@pytest.mark.trio
async def test_two_api_servers_racing_for_a_small_range_never_share_an_ip() -> None:
    ctx = _ctx()
    # Same seed: both servers draw the same candidates in the same order, so they collide.
    servers = [_chain(ctx, "127.96.0.0/29", seed=7), _chain(ctx, "127.96.0.0/29", seed=7)]
    services = [_svc(f"s{i}") for i in range(6)]
    async with trio.open_nursery() as nursery:
        for i, svc in enumerate(services):
            nursery.start_soon(_create, servers[i % 2], svc)
    ips = [s["spec"]["clusterIP"] for s in services]
    assert sorted(ips) == [f"127.96.0.{i}" for i in range(1, 7)]
    assert {ctx.reservations[f"serviceips/{s['spec']['clusterIP']}"] for s in services} == {
        f"uid-s{i}" for i in range(6)
    }
    err = await _refused(servers[0], _svc("full"))
    assert (err.code, err.reason) == (500, "InternalError")
    assert err.message == "Internal error occurred: failed to allocate a serviceIP: range is full"


@pytest.mark.trio
async def test_status_updates_and_other_resources_allocate_nothing() -> None:
    ctx = _ctx()
    chain = _chain(ctx)
    svc = _svc()
    with trio.fail_after(5):
        await chain.validate("UPDATE", _call("web", sub="status"), svc, svc)
    assert "clusterIP" not in svc["spec"] and ctx.reservations == {}
