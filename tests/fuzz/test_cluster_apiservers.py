"""Two API servers in the ``cluster`` suite (``apiservers=2``): each component is pinned to one
(``kcm-i``, ``sched-i`` and node ``i`` to server ``i mod 2``), the user's steps go through the
one they name, and a server that goes away and comes back costs its components nothing the
end check would see. One short run of the whole control plane with fixed steps, plus the
settings' bad values."""

from __future__ import annotations

import pytest

from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.cluster.components import (
    API_HOSTS,
    ControllerManagerProcess,
    KubeletProcess,
    SchedulerProcess,
)
from raftkube_fuzz.cluster.plane import ControlPlane, PlaneShape
from raftkube_fuzz.example import run_steps
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite

FIRST, SECOND = API_HOSTS
CONFIG = {"servers": 1, "nodes": 2, "store_faults": "off", "apiservers": 2}

STEPS = [
    Step.of("apply_rs", name="rs-a", replicas=2, via=1),
    Step.of("long_wait", seconds=5.0),
    Step.of("host_crash", host=SECOND, hold=1.0),
    Step.of("apply_rs", name="rs-b", replicas=1, via=0),
    Step.of("apply_rs", name="rs-a", replicas=3, via=1),
    Step.of("long_wait", seconds=30.0),
    Step.of("host_restart", host=SECOND, hold=1.0),
    Step.of("long_wait", seconds=10.0),
    Step.of("delete", resource="ReplicaSet", name="rs-b", via=1),
    Step.of("long_wait", seconds=5.0),
]
"""``rs-a`` through the second server; then that server is down for 30 s, longer than the node
grace period (20 s) and the leader Lease (15 s): node ``sim-1``, ``kcm-1`` and ``sched-1``,
pinned to it, lose the API server, and a write through it (``rs-a`` to 3) fails while one
through the first (``rs-b``) is made. After its restart, ``rs-b``'s deletion goes through it."""


def test_each_component_talks_to_its_own_server_and_survives_its_outage() -> None:
    suite = get_suite("cluster")
    run = run_steps(suite, {**suite.default_config, **CONFIG}, 7, STEPS)
    # The end check found the cluster as asked once the second server was back.
    assert run.violation is None, run.violation
    plane: ControlPlane = run.extras["plane"]
    assert [host.name for host in plane.apiservers] == [FIRST, SECOND]
    servers = {}
    for host in [*plane.managers, *plane.schedulers, *plane.kubelets]:
        process = host.process
        assert isinstance(process, ControllerManagerProcess | SchedulerProcess | KubeletProcess)
        servers[host.name] = process.server
    assert servers == {
        "kcm-0": f"https://{FIRST}:6443",
        "kcm-1": f"https://{SECOND}:6443",
        "sched-0": f"https://{FIRST}:6443",
        "sched-1": f"https://{SECOND}:6443",
        "192.168.1.10": f"https://{FIRST}:6443",
        "192.168.1.11": f"https://{SECOND}:6443",
    }
    observer: ClusterObserver = run.extras["observer"]
    names = sorted(rs["metadata"]["name"] for rs in observer.of("ReplicaSet", "default"))
    # rs-a's scale to 3 went to the server that was down; rs-b's deletion went through it.
    assert names == ["rs-a"]
    assert observer.of("ReplicaSet", "default")[0]["spec"]["replicas"] == 2
    lines = list(run.timeline.lines())
    calls = [line for line in lines if line.text.startswith("user: ")]
    to = {line.text: (line.info or {}).get("to") for line in calls}
    assert to["user: apply rs-a x2"] == SECOND and to["user: apply rs-b x1"] == FIRST
    assert to["user: delete ReplicaSet rs-b"] == SECOND
    outcomes = [line.text for line in lines if line.text.startswith("user: apply rs-a x3: ")]
    assert outcomes and "connect" in outcomes[0], outcomes


def test_only_one_or_two_api_servers() -> None:
    with pytest.raises(ValueError, match="apiservers must be between 1 and 2, not 3"):
        PlaneShape(apiservers=3)
