"""The cloud node lifecycle controller in the ``cluster`` suite, judged by request conformance:
the control plane loses every node while every cloud request fails (503). The real controller
deletes no node (a failed lookup proves nothing) and the cluster reconciles after the heal;
with ``ccm-deletes-node-on-cloud-error`` patched in, the first node DELETE is named, with the
failed lookup it came from. A whole control plane per run: two short runs of two steps."""

from __future__ import annotations

import contextlib

from raftkube_fuzz.example import Run, run_steps
from raftkube_fuzz.faults.cluster import plane_of
from raftkube_fuzz.mutants import MUTANTS
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite

STEPS = [Step.of("cloud_fail", share=1.0), Step.of("nodes_cut", hold=30.0)]
"""30 s without the nodes: past the node lifecycle controller's 20 s grace, so the nodes are
not Ready in the cloud controllers' caches for a few of their 5 s passes."""
CONFIG = {"servers": 1, "nodes": 2, "store_faults": "off"}


def _run(mutant: str | None) -> Run:
    suite = get_suite("cluster")
    with MUTANTS[mutant].patch() if mutant else contextlib.nullcontext():
        return run_steps(suite, {**suite.default_config, **CONFIG}, 7, STEPS, mutant=mutant)


def test_a_failed_instance_lookup_deletes_no_node() -> None:
    run = _run(None)
    assert run.violation is None, run.violation
    # the route controller's writes were judged (its passes' NetworkUnavailable and routes)
    assert plane_of(run).conformance.judged.get("route", 0) > 0


def test_the_controller_deleting_on_a_cloud_error_is_named() -> None:
    violation = _run("ccm-deletes-node-on-cloud-error").violation
    assert violation is not None
    assert getattr(violation, "prop", None) == "RequestConformance", violation
    text = str(violation)
    assert "cloud-node-lifecycle on ccm-" in text and "DELETE /api/v1/nodes/sim-" in text
    assert "answered 503" in text
