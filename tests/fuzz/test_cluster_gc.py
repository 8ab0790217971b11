"""The garbage collector in the ``cluster`` suite: ``rs-a`` deleted in the foreground beside
``rs-a-canary``, whose pods ``rs-a``'s selector matches but the canary owns. The real collector
leaves the canary's pods (and the cluster reconciles); with ``gc-selects-by-label`` patched in,
request conformance names the canary pod's DELETE as one the spec's collector does not send
from what the collector had read (it is judged before ``GCDeletesOnlyDependents``, which the
store's revisions would break next). The pair is the ``canary=on`` setting's, applied before
the first step (the mutant's hunt pins it). A whole control plane per run: two short runs of
two steps."""

from __future__ import annotations

import contextlib

from raftkube_fuzz.example import Run, run_steps
from raftkube_fuzz.mutants import MUTANTS
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite

STEPS = [
    Step.of("delete", resource="ReplicaSet", name="rs-a", cascade="foreground"),
    Step.of("long_wait", seconds=10.0),
]
CONFIG = {"servers": 1, "nodes": 2, "store_faults": "off", "canary": "on"}


def _run(mutant: str | None) -> Run:
    suite = get_suite("cluster")
    with MUTANTS[mutant].patch() if mutant else contextlib.nullcontext():
        return run_steps(suite, {**suite.default_config, **CONFIG}, 7, STEPS, mutant=mutant)


def test_a_foreground_deletion_leaves_pods_another_owner_owns() -> None:
    run = _run(None)
    assert run.violation is None, run.violation
    # canary=on waited for the pair's three pods before the first step, so the delete found
    # the canary's pod there to be left alone.
    texts = [line.text for line in run.trace().timeline]
    seen = texts.index("user: sees 3 pods of rs-a, rs-a-canary running")
    assert seen < next(i for i, t in enumerate(texts) if t.startswith("step 0:"))


def test_the_label_selecting_collector_is_caught_deleting_the_canarys_pod() -> None:
    violation = _run("gc-selects-by-label").violation
    assert violation is not None
    assert getattr(violation, "prop", None) == "RequestConformance", violation
    text = str(violation)
    assert (
        "garbagecollector on" in text
        and "DELETE /api/v1/namespaces/default/pods/rs-a-canary-" in text
    )
    assert "ReplicaSet rs-a-canary" in text and ": live" in text
