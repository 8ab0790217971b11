"""kube-proxy in the cluster suite: each node's proxier follows its Service's Endpoints, the
timeline shows its table on the node's lane, and the end check catches a proxier that keeps
an address its Endpoints dropped (the ``proxy-keeps-removed-endpoint`` mutant), on one short
deterministic scenario: a Service over two replicas, scaled to one."""

from __future__ import annotations

from raftkube_fuzz.example import Run, run_steps
from raftkube_fuzz.mutants import MUTANTS
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite
from raftkube_fuzz.timeline import CHECK
from raftkube_fuzz.timeline_model import build

CONFIG = {"servers": 1, "nodes": 2, "managers": 1, "schedulers": 1, "store_faults": "off"}
STEPS = [
    Step.of("apply_rs", name="rs-a", replicas=2),
    Step.of("apply_service", target="rs-a"),
    Step.of("long_wait", seconds=5.0),
    Step.of("apply_rs", name="rs-a", replicas=1),
    Step.of("long_wait", seconds=5.0),
]
NODES = ("192.168.1.10", "192.168.1.11")


def _routes_of_the_service(run: Run) -> dict[str, list[int]]:
    """Per node lane, how many endpoints each change of its table gave ``svc-rs-a``."""
    model = build(list(run.timeline.lines()))
    seen: dict[str, list[int]] = {}
    for mark in model.marks:
        if mark.kind == CHECK and mark.text.startswith("kube-proxy routes"):
            for part in mark.text.removeprefix("kube-proxy routes ").split("; "):
                if part.startswith("default/svc-rs-a:"):
                    seen.setdefault(mark.lane, []).append(part.count(":8080"))
    return seen


def test_every_proxier_follows_the_endpoints_and_is_on_its_nodes_lane() -> None:
    run = run_steps(get_suite("cluster"), CONFIG, 5, STEPS)
    assert run.violation is None, run.violation
    seen = _routes_of_the_service(run)
    assert set(seen) == set(NODES)
    for counts in seen.values():
        assert 2 in counts and counts[-1] == 1


def test_a_proxier_keeping_a_removed_endpoint_fails_reconciliation() -> None:
    """With the mutant's own setting, ``services=all``: the Service is the user's first
    request, before any step."""
    name = "proxy-keeps-removed-endpoint"
    config = {**CONFIG, **MUTANTS[name].config}
    steps = [s for s in STEPS if s.kind != "apply_service"]
    with MUTANTS[name].patch():
        run = run_steps(get_suite("cluster"), config, 5, steps, mutant=name)
    assert run.violation is not None
    assert run.violation.prop == "EventualStableReconciliation"
    assert "kube-proxy on sim-" in str(run.violation)
    assert "routes default/svc-rs-a:" in str(run.violation)
