"""The Deployment controller in the ``cluster`` suite: ``dep-a`` created with three replicas,
its template updated (version 2) while its first pods are still warming up, so the rollout
starts before the first one is done. The real controller keeps the ReplicaSets within
``replicas + maxSurge`` (3 + 1) and its available pods at ``replicas - maxUnavailable`` (3 - 0),
and passes; with ``deployment-ignores-surge`` patched in, the new ReplicaSet is created asking
for all three pods beside the old one's three, and with ``deployment-swaps-fenceposts`` an old
pod is let go while the new one is still warming up; request conformance names that create,
and that scale down. A whole control plane per run: three short runs of four steps."""

from __future__ import annotations

import contextlib
import re

from raftkube_fuzz.example import Run, run_steps
from raftkube_fuzz.mutants import MUTANTS
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite

STEPS = [
    Step.of("apply_deployment", name="dep-a", replicas=3, version=1),
    Step.of("long_wait", seconds=5.0),
    Step.of("apply_deployment", name="dep-a", replicas=3, version=2),
    Step.of("long_wait", seconds=10.0),
]
CONFIG = {"servers": 1, "nodes": 2, "store_faults": "off"}


def _run(mutant: str | None) -> Run:
    suite = get_suite("cluster")
    with MUTANTS[mutant].patch() if mutant else contextlib.nullcontext():
        return run_steps(suite, {**suite.default_config, **CONFIG}, 7, STEPS, mutant=mutant)


def test_a_rollout_keeps_within_the_surge_bound() -> None:
    run = _run(None)
    assert run.violation is None, run.violation
    # the rollout's writes were judged: v1's create, v2's create, its scale ups and the old
    # one's scale downs (seven at this seed)
    texts = [line.text for line in run.trace().timeline]
    summary = next(t for t in texts if t.startswith("request conformance:"))
    judged = re.search(r"deployment (\d+)", summary)
    assert judged is not None and int(judged.group(1)) >= 5, summary


def test_the_surge_ignoring_controller_is_caught_creating_the_new_replica_set() -> None:
    violation = _run("deployment-ignores-surge").violation
    assert violation is not None
    assert getattr(violation, "prop", None) == "RequestConformance", violation
    text = str(violation)
    assert (
        "deployment on" in text and "sent POST /apis/apps/v1/namespaces/default/replicasets" in text
    )
    assert "would ask for 6 pods" in text and "replicas + maxSurge = 3 + 1" in text


def test_the_fencepost_swapping_controller_is_caught_scaling_the_old_one_down_too_soon() -> None:
    violation = _run("deployment-swaps-fenceposts").violation
    assert violation is not None
    assert getattr(violation, "prop", None) == "RequestConformance", violation
    text = str(violation)
    assert (
        "deployment on" in text
        and "sent PUT /apis/apps/v1/namespaces/default/replicasets/dep-a-" in text
    )
    assert "maxScaledDown is 0" in text and "1 of the new ReplicaSet unavailable" in text
