"""Named implementation bugs ("mutants") that the fuzz suites must find.

Each mutant swaps ONE method (or property) of the implementation for a copy with one realistic
mistake, for the duration of a ``with mutant.patch():`` block, and restores the original on
exit. A suite that passes on the real code but fails with a mutant patched in has shown it can
catch that class of bug; one that passes with it patched in has a blind spot.

The patches are reachable only from here: nothing in ``raftkube`` imports this module and no
flag enables them. Each replacement is the real code with the mistake marked ``# MUTANT:``,
so a reader can diff it against the original at a glance, and
``tests/fuzz/test_mutants.py`` does that diff: every difference must touch a marker, so a copy
that drifts from a changed original fails the test instead of silently testing old code.

The catalogue is split by the part of the system a bug lives in: :mod:`.raft` (the Raft
core), :mod:`.kv` (the member's reads, watches, leases and sessions) and :mod:`.workloads`
(the control loops and the kubelet that place and serve pods), :mod:`.traffic` (what tells
clients where a Service's pods are), :mod:`.objects` (the loops that decide when an object
goes with another), :mod:`.leases` (leader election), :mod:`.nodes` (node lifecycle),
:mod:`.namespaces` (the namespace controller), :mod:`.cloud` (the cloud-controller-manager),
:mod:`.rollouts` (the Deployment controller), :mod:`.reads` (the API server's reads);
:mod:`.base` holds what a mutant is.
"""

from __future__ import annotations

from raftkube_fuzz.mutants import (
    cloud,
    kv,
    leases,
    namespaces,
    nodes,
    objects,
    raft,
    reads,
    rollouts,
    traffic,
    workloads,
)
from raftkube_fuzz.mutants.base import SUITES, Mutant

MUTANTS: dict[str, Mutant] = {
    m.name: m
    for m in (
        *raft.MUTANTS,
        *kv.MUTANTS,
        *workloads.MUTANTS,
        *traffic.MUTANTS,
        *objects.MUTANTS,
        *leases.MUTANTS,
        *nodes.MUTANTS,
        *namespaces.MUTANTS,
        *cloud.MUTANTS,
        *rollouts.MUTANTS,
        *reads.MUTANTS,
    )
}
"""Every mutant by name, in a fixed order: the store's suites first, then the cluster's."""

__all__ = ["MUTANTS", "SUITES", "Mutant"]
