"""Behaviour scenarios of the node mutants (:mod:`raftkube_fuzz.mutants.nodes`): each patch
changes what a small deterministic scenario does, and is fully undone on exit. The marker diff
of every mutant is in ``test_mutants.py``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio

from raftkube.controllers.nodehealth import ZoneState
from raftkube.controllers.nodelifecycle import NodeLifecycleConfig, NodeLifecycleController
from tests.helpers.mutant_scenarios import Scenario, check_scenario

# --- scenarios: each returns what the mutant changes ---------------------------------------------


def every_node_falls() -> tuple[list[str], dict[str, float]]:
    """The controller's end of a monitoring pass in which both nodes of the only zone, Ready
    until now, were found Unknown: the nodes whose NoExecute taints it takes off, and the
    tainting rate it gives the zone."""
    untainted: list[str] = []
    rates: dict[str, float] = {}

    async def mark_node_as_reachable(node: dict[str, Any]) -> bool:
        untainted.append(node["metadata"]["name"])
        return False

    controller: Any = SimpleNamespace(
        zone_states={"": ZoneState.NORMAL},
        config=NodeLifecycleConfig(),
        clock=SimpleNamespace(now=lambda: 100.0),
        health={},
        tainters={"": SimpleNamespace(swap_limiter=lambda qps, now: rates.__setitem__("", qps))},
        mark_node_as_reachable=mark_node_as_reachable,
    )
    nodes: list[dict[str, Any]] = [{"metadata": {"name": "n1"}}, {"metadata": {"name": "n2"}}]
    zone_ready: dict[str, list[str | None]] = {"": ["Unknown", "Unknown"]}
    trio.run(NodeLifecycleController._handle_disruption, controller, zone_ready, nodes)
    return untainted, rates


SCENARIOS: dict[str, Scenario] = {
    "eviction-ignores-disruption": (
        every_node_falls,
        (["n1", "n2"], {"": 0.0}),
        ([], {"": 0.1}),
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_patch_changes_behavior_and_is_undone(name: str) -> None:
    check_scenario(name, SCENARIOS[name])
