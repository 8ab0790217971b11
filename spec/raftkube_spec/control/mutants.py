"""Classic control-loop bugs, each a named replacement of one loop in one slice.

They exist to prove that the checks have teeth: ``raftkube spec check --kube --mutant NAME``
must exit 1 with a shortest counterexample for each. A mutant is the slice it shows in, with
one loop replaced by a variant that the loop's own module defines as a small wrapper or a
subclass overriding one decision, so the correct loops never change and nothing reaches a
mutant except by asking for it by name.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from raftkube_spec.control import endpoints, replicaset, scheduler, slices
from raftkube_spec.control.election import JudgesByRemoteClock
from raftkube_spec.control.gc import selects_by_label
from raftkube_spec.control.model import Loop
from raftkube_spec.control.nodelifecycle import IgnoresDisruption


@attrs.frozen
class Mutant:
    name: str
    description: str
    expected: str
    """The property whose violation catches it."""
    build: Callable[[], slices.Slice]
    esr: bool = True
    """Also check ESR. Off where the mutant's ESR failure shows in the initial state already
    and hides the safety violation, whose trace is the instructive one."""


def _rs_no_expectations() -> slices.Slice:
    sl = slices.workloads()
    return sl.with_loop(
        Loop(
            "replicaset",
            replicaset.sync_without_expectations,
            replicaset.Expectations(),
            watches=slices.RS_WATCHES,
        )
    )


def _scheduler_ignores_assumed() -> slices.Slice:
    return slices.workloads().with_loop(
        Loop("scheduler", scheduler.schedule_ignoring_assumed, (), watches=("Node", "Pod"))
    )


def _endpoints_include_unready() -> slices.Slice:
    return slices.endpoints_slice().with_loop(
        Loop("endpoints", endpoints.sync_including_unready, None, watches=slices.ENDPOINTS_WATCHES)
    )


def _eviction_ignores_disruption() -> slices.Slice:
    return slices.node_lifecycle(controller=IgnoresDisruption(grace=1, interval=1))


def _lease_judged_by_remote_clock() -> slices.Slice:
    return slices.leader_election(elector=JudgesByRemoteClock)


def _gc_selects_by_label() -> slices.Slice:
    return slices.garbage_collector(gc=selects_by_label())


MUTANTS: dict[str, Mutant] = {
    m.name: m
    for m in (
        Mutant(
            "rs-no-expectations",
            "the ReplicaSet controller trusts its lagging view's pod count and creates again",
            "NoOverCreation",
            _rs_no_expectations,
        ),
        Mutant(
            "scheduler-ignores-assumed",
            "the scheduler counts capacity from its view only, not from the pods it assumed",
            "NodeWithinAllocatable",
            _scheduler_ignores_assumed,
        ),
        Mutant(
            "endpoints-include-unready",
            "the endpoints controller lists pods that are not ready",
            "EndpointsListOnlyReady",
            _endpoints_include_unready,
            esr=False,
        ),
        Mutant(
            "eviction-ignores-disruption",
            "the node lifecycle controller taints and evicts when every node looks down",
            "NoTaintingInFullDisruption",
            _eviction_ignores_disruption,
        ),
        Mutant(
            "lease-judged-by-remote-clock",
            "leader election judges expiry by the holder's renewTime against the local clock",
            "AtMostOneLeader",
            _lease_judged_by_remote_clock,
        ),
        Mutant(
            "gc-selects-by-label",
            "the garbage collector finds dependents by the owner's selector, not ownerReferences",
            "GCDeletesOnlyDependents",
            _gc_selects_by_label,
        ),
    )
}
