"""Cloud instances shut down and deleted in the ``cluster`` suite (``instances=delete``): the
machine of a deleted instance is gone for good, so the cloud node lifecycle controller deletes
its node once it is not Ready and the pod garbage collector its pods, whose ReplicaSet replaces
them on the other nodes; a shut-down instance's node is tainted
``node.cloudprovider.kubernetes.io/shutdown`` until the final heal starts it again. One run of
the whole control plane, and the machine's power switch alone."""

from __future__ import annotations

from raftkube_fuzz.cluster.cloud import CloudSide, PoweredOff
from raftkube_fuzz.example import run_steps
from raftkube_fuzz.faults.cluster import plane_of
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite

STEPS = [
    Step.of("apply_rs", name="rs-b", replicas=3),
    Step.of("long_wait", seconds=5.0),
    Step.of("instance_delete", host="192.168.1.10"),
    Step.of("instance_shutdown", host="192.168.1.12"),
    Step.of("long_wait", seconds=30.0),
]
"""One of ``rs-b``'s pods on each node; ``sim-0``'s instance deleted and ``sim-2``'s shut down,
then 30 s: past the node monitor's 20 s grace, so both nodes are not Ready for a few of the
cloud node lifecycle controller's 5 s passes before the end."""
CONFIG = {"servers": 1, "nodes": 3, "store_faults": "off", "instances": "delete"}


def test_a_deleted_instances_node_goes_and_its_pods_are_replaced_elsewhere() -> None:
    suite = get_suite("cluster")
    run = run_steps(suite, {**suite.default_config, **CONFIG}, 7, STEPS)
    assert run.violation is None, run.violation  # reconciled within the bound, and judged
    observer = run.extras["observer"]
    assert [n["metadata"]["name"] for n in observer.of("Node")] == ["sim-1", "sim-2"]
    pods = [p for p in observer.of("Pod", "default") if p["metadata"]["name"].startswith("rs-b")]
    assert len(pods) == 3 and {p["spec"]["nodeName"] for p in pods} <= {"sim-1", "sim-2"}
    judged = plane_of(run).conformance.judged
    # the shutdown taint on sim-2, sim-0's delete, the taint off once sim-2 is Ready again
    assert judged["cloud-node-lifecycle"] == 3
    assert judged["replicaset"] == 4  # three pods, then sim-0's replaced
    texts = [line.text for line in run.timeline.lines()]
    assert "sim-2's instance started" in texts  # by the final heal


class Machine:
    """A host's boot, as :meth:`CloudSide.power` wraps it."""

    def __init__(self) -> None:
        self.boot = lambda env: "kubelet"


def test_a_machine_boots_its_programs_only_while_its_instance_runs() -> None:
    side = CloudSide()
    side.add_instance("n1", "192.168.1.10")
    machine = Machine()
    side.power(machine, "n1")  # type: ignore[arg-type]
    assert machine.boot(None) == "kubelet"
    side.set_state("n1", "shutdown")
    assert isinstance(machine.boot(None), PoweredOff)
    side.set_state("n1", "running")
    assert machine.boot(None) == "kubelet"
    side.delete_instance("n1")
    assert isinstance(machine.boot(None), PoweredOff) and side.deleted
