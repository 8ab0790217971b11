"""Container crashes in the ``cluster`` suite: the fault kills a running container on a
simulated node, the kubelet restarts it after its crash-loop back-off, and the example still
reconciles within a bound that allows for that back-off."""

from __future__ import annotations

from types import SimpleNamespace

import trio

from raftkube.clock import TrioClock
from raftkube.runtime import ContainerConfig, ContainerState, PodSandboxConfig, SimulatedRuntime
from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.example import run_steps
from raftkube_fuzz.faults.containers import CONTAINER_CRASH, crash_loop_allowance
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite

CONFIG = {"servers": 1, "nodes": 2, "store_faults": "off"}
STEPS = [
    Step.of("apply_rs", name="rs-b", replicas=1),
    Step.of("long_wait", seconds=5.0),
    Step.of(CONTAINER_CRASH, host="192.168.1.10", which=0),
    Step.of(CONTAINER_CRASH, host="192.168.1.11", which=3),
    Step.of("long_wait", seconds=2.0),
]
"""``rs-b``'s one pod runs on one of the two nodes; a crash is aimed at each node, so one
kills its container and the other finds nothing running (a no-op)."""


def test_a_crashed_container_is_restarted_and_the_cluster_reconciles() -> None:
    suite = get_suite("cluster")
    run = run_steps(suite, {**suite.default_config, **CONFIG}, 11, STEPS)
    assert run.violation is None, run.violation
    assert run.faults[CONTAINER_CRASH] == 1
    texts = [line.text for line in run.timeline.lines()]
    assert any(
        "container app of pod default/rs-b-" in t and "crashed (exit code 1)" in t for t in texts
    )
    assert any("no container runs there (no-op)" in t for t in texts)
    observer: ClusterObserver = run.extras["observer"]
    [pod] = [p for p in observer.of("Pod", "default") if p["metadata"]["name"].startswith("rs-b")]
    [status] = pod["status"]["containerStatuses"]
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert status["ready"] is True


async def _started(runtime: SimulatedRuntime) -> str:
    sandbox = await runtime.run_pod_sandbox(PodSandboxConfig("p", "default", "uid-p"))
    cid = await runtime.create_container(sandbox, ContainerConfig("c", "img"))
    await runtime.start_container(cid)
    return cid


def test_kill_container_exits_only_a_running_container() -> None:
    async def main() -> None:
        runtime = SimulatedRuntime(TrioClock())
        cid = await _started(runtime)
        assert [(p.name, c.id) for p, c in runtime.running_containers()] == [("p", cid)]
        runtime.kill_container(cid, 3)
        status = await runtime.container_status(cid)
        assert (status.state, status.exit_code, status.reason) == (
            ContainerState.EXITED,
            3,
            "Error",
        )
        assert runtime.running_containers() == []
        runtime.kill_container(cid, 9)  # already exited: left as it is
        assert (await runtime.container_status(cid)).exit_code == 3

    trio.run(main)


def test_the_allowance_follows_the_kubelet_s_back_off() -> None:
    def allowance(crashes: int) -> float:
        return crash_loop_allowance(SimpleNamespace(faults={CONTAINER_CRASH: crashes}))  # type: ignore[arg-type]

    assert [allowance(n) for n in (0, 1, 2, 3, 6, 40)] == [0.0, 10.0, 20.0, 40.0, 300.0, 300.0]
