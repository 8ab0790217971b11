"""The namespace controller's finalize in the ``cluster`` suite: ``team-a`` deleted while
``rs-b``'s pods take seconds to stop (the ``team=workloads`` setting, which the
``namespace-finalized-early`` mutant's hunt pins), after ``sa-a``, whose token Secret the user
created at the start (``accounts=secrets``), was deleted. The real controller waits until its own
LISTs find the namespace empty; with the mutant patched in, request conformance names the
``finalize`` PUT sent while the sync's last LIST of pods still showed one (it is judged after
the step, before ``NamespaceEmptiedBeforeFinalized`` sees the namespace go on the store's
revisions). A whole control plane per run: two short runs of two steps."""

from __future__ import annotations

import contextlib

from raftkube_fuzz.example import Run, run_steps
from raftkube_fuzz.mutants import MUTANTS
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite

STEPS = [
    Step.of("delete_account", name="sa-a"),
    Step.of("delete_namespace", name="team-a"),
    Step.of("long_wait", seconds=10.0),
]
CONFIG = {
    "servers": 1, "nodes": 2, "store_faults": "off", "team": "workloads", "accounts": "secrets",
}  # fmt: skip


def _run(mutant: str | None) -> Run:
    suite = get_suite("cluster")
    with MUTANTS[mutant].patch() if mutant else contextlib.nullcontext():
        return run_steps(suite, {**suite.default_config, **CONFIG}, 7, STEPS, mutant=mutant)


def test_the_namespace_is_finalized_only_after_its_own_lists_showed_it_empty() -> None:
    run = _run(None)
    assert run.violation is None, run.violation
    texts = [line.text for line in run.trace().timeline]
    judged = next(t for t in texts if t.startswith("request conformance:"))
    # the namespace controller's deletes and finalize, the account controller's creates, the
    # token controller's filling in of the user's two token Secrets (accounts=secrets) and
    # its delete of sa-a's once sa-a went
    for loop in ("namespace", "serviceaccount"):
        assert f" {loop} " in judged, judged
    assert "serviceaccount-tokens-secret 2," in judged, judged
    assert "serviceaccount-tokens-service 1" in judged, judged


def test_the_early_finalizer_is_caught_finalizing_with_a_pod_listed() -> None:
    violation = _run("namespace-finalized-early").violation
    assert violation is not None
    assert getattr(violation, "prop", None) == "RequestConformance", violation
    text = str(violation)
    assert "namespace on" in text and "PUT /api/v1/namespaces/team-a/finalize" in text
    assert "still showed 1 object in it (Pod rs-b-" in text
