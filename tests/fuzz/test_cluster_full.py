"""The ``full=on`` setting of the ``cluster`` suite: every node holds two of ``rs-b``'s pods
before the first step, so a pod the user binds to a node by hand finds no room there. The
real kubelet refuses it at admission (the pod fails with ``OutOfcpu``) and the cluster
reconciles; with ``kubelet-skips-admission`` patched in, the kubelet starts it and the node's
pods ask for more than it has. A whole control plane per run: two short runs of two steps."""

from __future__ import annotations

import contextlib

from raftkube_fuzz.example import Run, run_steps
from raftkube_fuzz.mutants import MUTANTS
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite

STEPS = [Step.of("create_pinned", node="sim-0", via=0), Step.of("long_wait", seconds=10.0)]
CONFIG = {"servers": 1, "nodes": 2, "store_faults": "off", "full": "on"}


def _run(mutant: str | None) -> Run:
    suite = get_suite("cluster")
    with MUTANTS[mutant].patch() if mutant else contextlib.nullcontext():
        return run_steps(suite, {**suite.default_config, **CONFIG}, 7, STEPS, mutant=mutant)


def test_a_pod_bound_by_hand_to_a_full_node_is_refused_by_its_kubelet() -> None:
    run = _run(None)
    assert run.violation is None, run.violation
    texts = [line.text for line in run.trace().timeline]
    # The nodes were full (two pods each) before the first step.
    seen = texts.index("user: sees 4 pods of rs-b running")
    assert seen < next(i for i, t in enumerate(texts) if t.startswith("step 0:"))
    observer = run.extras["observer"]
    observer.follow(run.written)
    pinned = observer.of("Pod", "default")
    refused = [p for p in pinned if p["metadata"]["name"].startswith("pinned-")]
    assert [p["status"].get("reason") for p in refused] == ["OutOfcpu"]


def test_the_kubelet_that_forgets_its_pods_is_caught_overcommitting_the_node() -> None:
    violation = _run("kubelet-skips-admission").violation
    assert violation is not None
    assert getattr(violation, "prop", None) == "NodeWithinAllocatable", violation
