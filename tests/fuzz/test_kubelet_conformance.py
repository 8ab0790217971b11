"""The kubelets' request rules on hand-built facts: each allowed case and each refusal."""

from __future__ import annotations

import attrs

from raftkube_fuzz.checks.kubelet_conformance import final_delete, status_write
from raftkube_fuzz.checks.views import PodFact

POD = PodFact("u1", "rs", 3, node="sim-0", deleting=True, phase="Running")


def test_a_final_delete_needs_a_deleting_pod_of_this_node_with_nothing_running() -> None:
    assert final_delete("sim-0", POD, "u1", ()) is None
    assert "still run" in str(final_delete("sim-0", POD, "u1", ("app",)))
    assert "not being deleted" in str(
        final_delete("sim-0", attrs.evolve(POD, deleting=False), "u1", ())
    )
    assert "bound to sim-0, not to sim-1" in str(final_delete("sim-1", POD, "u1", ()))


def test_a_delete_that_removes_nothing_is_not_judged() -> None:
    # Gone, or another pod of the same name: the precondition makes it a 404 or a 409.
    assert final_delete("sim-0", None, "u1", ("app",)) is None
    assert final_delete("sim-0", attrs.evolve(POD, deleting=False), "u2", ("app",)) is None


def test_a_status_write_never_leaves_a_terminal_phase() -> None:
    assert status_write("sim-0", POD, "u1", "Running") is None
    assert status_write("sim-0", POD, "u1", "Failed") is None
    failed = attrs.evolve(POD, phase="Failed")
    assert status_write("sim-0", failed, "u1", "Failed") is None
    assert "from phase Failed back to Running" in str(
        status_write("sim-0", failed, "u1", "Running")
    )
    assert "not to sim-1" in str(status_write("sim-1", POD, "u1", "Running"))
    assert status_write("sim-1", POD, "u2", "Running") is None
