"""The kubelets' requests in the ``cluster`` suite: ``rs-b``'s pods (``full=on`` starts them)
scaled away. The real kubelet stops each pod's containers and only then deletes its object for
good; with ``kubelet-deletes-before-stopping`` patched in, request conformance names the final
DELETE sent while the pod's container still ran. A whole control plane per run: two short runs
of two steps."""

from __future__ import annotations

import contextlib

from raftkube_fuzz.example import Run, run_steps
from raftkube_fuzz.mutants import MUTANTS
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite

STEPS = [
    Step.of("apply_rs", name="rs-b", replicas=0, namespace="default"),
    Step.of("long_wait", seconds=20.0),
]
CONFIG = {"servers": 1, "nodes": 2, "store_faults": "off", "full": "on"}


def _run(mutant: str | None) -> Run:
    suite = get_suite("cluster")
    with MUTANTS[mutant].patch() if mutant else contextlib.nullcontext():
        return run_steps(suite, {**suite.default_config, **CONFIG}, 7, STEPS, mutant=mutant)


def test_the_kubelets_delete_pods_only_once_their_containers_stopped() -> None:
    run = _run(None)
    assert run.violation is None, run.violation
    monitor = run.extras["plane"].conformance.kubelets
    # Four final deletes and their status writes were judged, not none.
    assert monitor.judged >= 4
    checks = [line.text for line in run.trace().timeline if "requests judged" in line.text]
    assert checks and "kubelet " in checks[-1]


def test_the_kubelet_deleting_first_is_caught_by_its_request() -> None:
    violation = _run("kubelet-deletes-before-stopping").violation
    assert violation is not None
    assert getattr(violation, "prop", None) == "RequestConformance", violation
    text = str(violation)
    assert "the kubelet of sim-" in text and "DELETE /api/v1/namespaces/default/pods/rs-b-" in text
    assert "still run on sim-" in text
