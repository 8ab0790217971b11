"""The cluster suite's timeline puts each component fault and user action on its host's lane
(issue 15 item 2), so the HTML timeline draws them where they happened."""

from __future__ import annotations

from raftkube_fuzz.example import run_steps
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite
from raftkube_fuzz.timeline_model import build

STEPS = [
    Step.of("host_pause", host="kcm-1", hold=1.0),
    Step.of("host_crash", host="192.168.1.10", hold=1.0),
    Step.of("apply_rs", name="rs-a", replicas=1),
    Step.of("host_cut", host="sched-0", hold=1.0),
    Step.of("host_slow", host="kcm-0", seconds=0.5),
    Step.of("host_resume", host="kcm-1", hold=1.0),
    Step.of("host_restart", host="192.168.1.10", hold=1.0),
    Step.of("long_wait", seconds=2.0),
]


def test_component_faults_and_user_actions_are_on_their_hosts_lanes() -> None:
    config = {"servers": 1, "nodes": 2, "managers": 2, "schedulers": 2, "store_faults": "off"}
    run = run_steps(get_suite("cluster"), config, 3, STEPS)
    assert run.violation is None, run.violation
    model = build(list(run.timeline.lines()))
    spans = {(s.lane, s.fault): s.end is not None for s in model.spans}
    assert spans[("kcm-1", "paused")] is True  # resumed
    assert spans[("192.168.1.10", "down")] is True  # restarted
    assert ("sched-0", "cut") in spans  # healed only by the final heal-all
    assert ("kcm-0", "slow") in spans
    user = [a for a in model.arrows if a.flow.startswith("user-")]
    assert {(a.source, a.target, a.outcome) for a in user} == {
        ("user", "192.168.0.2", "call"),
        ("192.168.0.2", "user", "answer"),
    }
    assert {"kcm-1", "192.168.1.10", "sched-0", "user"} <= {lane.name for lane in model.lanes}
