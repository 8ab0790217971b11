"""Node health under Hypothesis: whatever the kubelet's clock says (any offset from the
controller's), a node is declared Unknown exactly when the controller itself has seen no
renewal for longer than the grace period."""

from __future__ import annotations

import datetime
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from raftkube.controllers.nodehealth import NodeHealth, update_node_health

Obj = dict[str, Any]

GRACE = 40.0
READY = {"type": "Ready", "status": "True", "lastHeartbeatTime": "h", "lastTransitionTime": "t"}


def lease_at(kubelet_time: float) -> Obj:
    moment = datetime.datetime.fromtimestamp(kubelet_time, datetime.UTC)
    return {"spec": {"renewTime": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}


@settings(max_examples=300)
@given(
    offset=st.floats(min_value=-1e6, max_value=1e6),
    gaps=st.lists(
        st.tuples(st.floats(min_value=0.01, max_value=60.0), st.booleans()),
        min_size=1,
        max_size=30,
    ),
)
@example(offset=0.0, gaps=[(24.557042553792677, True), (40.0, False)])
def test_unknown_exactly_after_a_silent_grace_period(
    offset: float, gaps: list[tuple[float, bool]]
) -> None:
    node = {"metadata": {"name": "n"}, "status": {"conditions": [dict(READY)]}}
    now, kubelet_clock = 0.0, 1_700_000_000.0 + offset
    lease = lease_at(kubelet_clock)
    first = update_node_health(
        node, lease, None, now, 0.0, grace_period=GRACE, startup_grace_period=60.0
    )
    health: NodeHealth = first.health  # the controller's first look, at its time 0
    last_seen_change = now
    for gap, renewed in gaps:
        now += gap
        if renewed:  # the kubelet renews at the controller's now, by its own clock
            kubelet_clock += gap
            lease = lease_at(kubelet_clock)
            last_seen_change = now
        verdict = update_node_health(
            node, lease, health, now, 0.0, grace_period=GRACE, startup_grace_period=60.0
        )
        went_unknown = verdict.status_update is not None
        # Upstream's form, probeTimestamp.Add(gracePeriod).Before(now): in floats it differs
        # from ``now - last > GRACE`` right at the boundary (24.557... + 40.0 == 64.557...,
        # yet 64.557... - 24.557... > 40.0).
        assert went_unknown == (last_seen_change + GRACE < now)
        if went_unknown:
            return  # the node is Unknown now; what follows is another story
        health = verdict.health
