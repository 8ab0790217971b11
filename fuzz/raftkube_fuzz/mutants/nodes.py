"""The ``cluster`` suite's node mutants: bugs in the node lifecycle controller, which judges
node health and decides how fast NoExecute taints (and so evictions) may spread."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from raftkube.controllers import nodelifecycle
from raftkube.controllers.nodehealth import (
    DisruptionConfig,
    DisruptionDecision,
    ZoneState,
    compute_zone_state,
    zone_qps,
)
from raftkube_fuzz.mutants.base import CONTROL_PLANE, Mutant, patch

# --- eviction-ignores-disruption -----------------------------------------------------------------


def _handle_disruption_ignoring_full(
    zone_states: Mapping[str, ZoneState],
    zone_ready: Mapping[str, Sequence[str | None]],
    config: DisruptionConfig,
) -> DisruptionDecision:
    new_states = {
        zone: compute_zone_state(statuses, config)[1] for zone, statuses in zone_ready.items()
    }
    # MUTANT: every zone fully disrupted is not told apart from one zone fully disrupted, so
    # a control plane cut off from all its nodes keeps tainting them (at the normal rate of a
    # fully disrupted zone) and lets their pods be evicted.
    all_are_full = False
    states = {z: s for z, s in zone_states.items() if z in zone_ready}
    for zone in zone_ready:
        states.setdefault(zone, ZoneState.INITIAL)
    # MUTANT: (the same mistake) nor was the previous pass's state.
    all_were_full = False
    if all_are_full and all_were_full:
        return DisruptionDecision(states, {})
    if all_are_full:
        return DisruptionDecision(
            {z: ZoneState.FULL_DISRUPTION for z in states},
            {z: 0.0 for z in states},
            enter_full_disruption=True,
        )
    sizes = {zone: len(statuses) for zone, statuses in zone_ready.items()}
    if all_were_full:
        return DisruptionDecision(
            dict(new_states),
            {z: zone_qps(new_states[z], sizes[z], config) for z in states},
            exit_full_disruption=True,
        )
    qps = {
        z: zone_qps(new_states[z], sizes[z], config)
        for z, old in states.items()
        if new_states[z] != old
    }
    return DisruptionDecision({z: new_states[z] for z in states}, qps)


MUTANTS = (
    Mutant(
        "eviction-ignores-disruption",
        "the node lifecycle controller taints every node NoExecute when all of them look down, "
        "instead of suspecting its own view (master disruption mode)",
        "cluster",
        "RequestConformance",
        False,
        patch(nodelifecycle, "handle_disruption", _handle_disruption_ignoring_full),
        dict(CONTROL_PLANE),
    ),
)
