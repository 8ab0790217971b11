"""The kubelet's pure parts: admission, crash-loop back-off, phases, environments."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import trio

from raftkube.kubelet.admission import Rejection, admit, allocatable_of
from raftkube.kubelet.backoff import CrashLoopBackOff, go_duration
from raftkube.kubelet.env import ConfigError, container_env
from raftkube.kubelet.node import NodeConfig, node_status
from raftkube.kubelet.pleg import changed_pods
from raftkube.kubelet.probes import ProbeSettings, ProbeState
from raftkube.kubelet.status import get_phase
from raftkube.runtime import ContainerState

Obj = dict[str, Any]
NODE = allocatable_of({"cpu": "1", "memory": "1Gi", "pods": "2"})


def requesting(cpu: str = "", memory: str = "") -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    return {"spec": {"containers": [{"name": "c", "resources": {"requests": requests}}]}}


def test_admission_reasons_and_messages() -> None:
    assert admit(requesting("500m"), [requesting("500m")], NODE) is None
    assert admit(requesting("600m"), [requesting("500m")], NODE) == Rejection(
        "OutOfcpu",
        "Node didn't have enough resource: cpu, requested: 600, used: 500, capacity: 1000",
    )
    assert admit(requesting(memory="2Gi"), [], NODE) == Rejection(
        "OutOfmemory",
        "Node didn't have enough resource: memory, requested: 2147483648, used: 0, "
        "capacity: 1073741824",
    )
    rejection = admit(requesting(), [requesting(), requesting()], NODE)
    assert rejection is not None and rejection.reason == "OutOfpods"


def test_crash_loop_delays_double_to_five_minutes_and_reset() -> None:
    backoff, now, waits = CrashLoopBackOff(), 0.0, []
    for _ in range(8):
        until = backoff.until("c", now, now)
        waits.append(0 if until is None else until - now)
        now = now if until is None else until
        backoff.next("c", now)
    assert waits == [0, 10, 20, 40, 80, 160, 300, 300]
    assert go_duration(300) == "5m0s" and go_duration(10) == "10s"
    assert backoff.until("c", now + 601, now + 601) is None


def test_a_back_off_ends_at_its_instant_whatever_the_rounding() -> None:
    """A clock read at the instant a back-off ends is out of it, even where ``finished +
    delay - now`` leaves a rounding error far below the time's resolution (a livelock: the pod
    worker waited that "remaining" time, which added back to now was now itself)."""
    backoff = CrashLoopBackOff()
    backoff.next("c", 25.0)
    backoff.next("c", 26.0)  # the delay is 20 s now
    finished = 59.56034271889249
    until = backoff.until("c", finished, 60.0)
    assert until == 79.56034271889249
    # The seconds left as the old arithmetic computed them: positive, yet nothing once added.
    left = 20.0 - (until - finished)
    assert left > 0 and until + left == until
    assert backoff.until("c", finished, until) is None


def state(kind: str, **fields: Any) -> Obj:
    return {"state": {kind: fields}, "lastState": {}}


@pytest.mark.parametrize(
    ("policy", "containers", "phase"),
    [
        ("Always", [state("running")], "Running"),
        ("Always", [state("waiting", reason="ContainerCreating")], "Pending"),
        ("Never", [state("terminated", exitCode=0)], "Succeeded"),
        ("Never", [state("terminated", exitCode=1)], "Failed"),
        ("OnFailure", [state("terminated", exitCode=1)], "Running"),
        ("Always", [state("terminated", exitCode=0)], "Running"),
    ],
)
def test_phase_as_upstream_get_phase(policy: str, containers: list[Obj], phase: str) -> None:
    assert get_phase({"restartPolicy": policy}, [], containers) == phase


def test_a_failed_init_container_fails_a_never_restarting_pod() -> None:
    failed = [state("terminated", exitCode=3)]
    assert get_phase({"restartPolicy": "Never"}, failed, []) == "Failed"
    assert get_phase({"restartPolicy": "Always"}, failed, []) == "Pending"


def test_probe_results_flip_after_their_thresholds() -> None:
    settings = ProbeSettings.of({"failureThreshold": 2, "successThreshold": 2})
    assert settings.period == 10 and settings.timeout == 1
    probe = ProbeState(result=False, next_at=0)
    outcomes = []
    for ok in (True, True, False, True, False, False):
        probe.observe(ok, settings, 0)
        outcomes.append(probe.result)
    assert outcomes == [False, True, True, True, True, False]


@pytest.mark.trio
async def test_environment_from_downward_api_and_refs() -> None:
    objects = {
        ("configmaps", "cm"): {"metadata": {"namespace": "ns"}, "data": {"A": "1", "B": "2"}},
        ("secrets", "s"): {
            "metadata": {"namespace": "ns"},
            "data": {"pw": base64.b64encode(b"x").decode()},
        },
    }

    async def fetch(resource: str, name: str) -> Obj | None:
        await trio.lowlevel.checkpoint()
        return objects.get((resource, name))

    pod = {"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}}, "spec": {}}
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        "env": [
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
            {"name": "URL", "value": "http://$(IP):80/$(NOPE)$$"},
        ],
    }
    env = dict(await container_env(pod, container, "127.1.0.5", "127.0.0.1", fetch))
    assert env == {
        "CM_A": "1",
        "CM_B": "2",
        "POD": "p",
        "IP": "127.1.0.5",
        "APP": "web",
        "PW": "x",
        "URL": "http://127.1.0.5:80/$(NOPE)$",
    }
    missing = {
        "name": "c",
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "no", "key": "k"}}}],
    }
    with pytest.raises(ConfigError, match='configmap "no" not found'):
        await container_env(pod, missing, "", "", fetch)


def test_the_relist_reports_pods_whose_containers_changed() -> None:
    running, exited = ContainerState.RUNNING, ContainerState.EXITED
    before = {"a1": ("A", running), "b1": ("B", running), "c1": ("C", running)}
    after = {"a1": ("A", running), "b1": ("B", exited), "d1": ("D", running)}
    assert changed_pods(before, after) == {"B", "C", "D"}
    assert changed_pods(after, after) == set()


def test_node_conditions_keep_transition_times_and_report_the_runtime() -> None:
    config = NodeConfig("n1", "127.1.0.0/24")
    first = {"status": node_status(config, None, "T1")}
    again = node_status(config, first, "T2", ready=False)
    ready = next(c for c in again["conditions"] if c["type"] == "Ready")
    memory = next(c for c in again["conditions"] if c["type"] == "MemoryPressure")
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == (
        "False",
        "KubeletNotReady",
        "T2",
    )
    assert (memory["lastTransitionTime"], memory["lastHeartbeatTime"]) == ("T1", "T2")
