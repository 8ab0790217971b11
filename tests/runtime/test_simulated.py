"""The simulated runtime: CRI calls over scripted containers, on a virtual clock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from raftkube.clock import TrioClock, sleep_for
from raftkube.runtime import (
    ContainerConfig,
    ContainerScript,
    ContainerState,
    CreateContainerError,
    IPAllocator,
    PodCIDRExhausted,
    PodSandboxConfig,
    SandboxState,
    SimulatedRuntime,
)

SCRIPTS = {
    "crash": ContainerScript(exit_after=3.0, exit_code=2),
    "slow-stop": ContainerScript(stop_takes=50.0),
    "late-ready": ContainerScript(ready_after=5.0, live_for=20.0),
    "broken": ContainerScript(fail_create="no such image"),
}


def runtime() -> SimulatedRuntime:
    return SimulatedRuntime(TrioClock(), "127.1.0.0/29", SCRIPTS)


async def started(rt: SimulatedRuntime, image: str) -> tuple[str, str]:
    sandbox = await rt.run_pod_sandbox(PodSandboxConfig("p", "ns", "uid-1"))
    cid = await rt.create_container(sandbox, ContainerConfig("c", image, attempt=0))
    await rt.start_container(cid)
    return sandbox, cid


@pytest.mark.trio
async def test_a_crash_follows_its_script(autojump_clock: trio.testing.MockClock) -> None:
    rt = runtime()
    _, cid = await started(rt, "crash")
    assert (await rt.container_status(cid)).state is ContainerState.RUNNING
    await sleep_for(TrioClock(), 2.9)
    assert (await rt.container_status(cid)).state is ContainerState.RUNNING
    await sleep_for(TrioClock(), 0.2)
    status = await rt.container_status(cid)
    assert (status.state, status.exit_code, status.reason) == (ContainerState.EXITED, 2, "Error")
    assert status.started_at is not None and status.finished_at == status.started_at + 3.0


@pytest.mark.trio
async def test_stop_kills_at_the_grace_period(autojump_clock: trio.testing.MockClock) -> None:
    rt = runtime()
    _, slow = await started(rt, "slow-stop")
    _, quick = await started(rt, "plain")
    t0 = TrioClock().now()
    await rt.stop_container(slow, timeout=30)
    status = await rt.container_status(slow)
    assert (status.exit_code, status.finished_at) == (137, t0 + 30)
    await rt.stop_container(quick, timeout=30)
    assert (await rt.container_status(quick)).exit_code == 0


@pytest.mark.trio
async def test_exec_follows_readiness_and_liveness(autojump_clock: trio.testing.MockClock) -> None:
    rt = runtime()
    _, cid = await started(rt, "late-ready")
    codes = []
    for _ in range(5):
        codes.append((await rt.exec_sync(cid, ("true",), 1)).exit_code)
        await sleep_for(TrioClock(), 6)
    assert codes == [1, 0, 0, 0, 1]


@pytest.mark.trio
async def test_sandboxes_get_ips_and_release_them(autojump_clock: trio.testing.MockClock) -> None:
    rt = runtime()
    sandbox, cid = await started(rt, "plain")
    with pytest.raises(CreateContainerError, match="no such image"):
        await rt.create_container(sandbox, ContainerConfig("bad", "broken"))
    [listed] = await rt.list_pod_sandboxes()
    assert (listed.ip, listed.state) == ("127.1.0.2", SandboxState.READY)
    await rt.stop_pod_sandbox(sandbox)
    assert (await rt.container_status(cid)).state is ContainerState.EXITED
    await rt.remove_pod_sandbox(sandbox)
    assert await rt.list_containers() == []
    again = await rt.run_pod_sandbox(PodSandboxConfig("q", "ns", "uid-2"))
    assert [s.ip for s in await rt.list_pod_sandboxes() if s.id == again] == ["127.1.0.2"]


def test_the_allocator_skips_network_and_gateway_and_runs_out() -> None:
    ips = IPAllocator("127.1.0.0/30")
    assert ips.allocate() == "127.1.0.2"
    with pytest.raises(PodCIDRExhausted):
        ips.allocate()


@pytest.mark.trio
async def test_a_stopped_sandbox_gives_its_ip_back_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rt = runtime()
    first = await rt.run_pod_sandbox(PodSandboxConfig("a", "ns", "uid-a"))
    await rt.stop_pod_sandbox(first)
    second = await rt.run_pod_sandbox(PodSandboxConfig("b", "ns", "uid-b"))
    await rt.remove_pod_sandbox(first)  # must not free the address the second one now holds
    third = await rt.run_pod_sandbox(PodSandboxConfig("c", "ns", "uid-c"))
    ips = {s.id: s.ip for s in await rt.list_pod_sandboxes()}
    assert (ips[second], ips[third]) == ("127.1.0.2", "127.1.0.3")
