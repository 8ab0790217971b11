"""Behaviour scenarios of the cloud mutants (:mod:`raftkube_fuzz.mutants.cloud`): each patch
changes what a small deterministic scenario does, and is fully undone on exit. The marker diff
of every mutant is in ``test_mutants.py``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio

from raftkube.cloud.client import CloudError
from raftkube.cloud.nodes import CloudNodeLifecycleController
from tests.helpers.mutant_scenarios import Scenario, check_scenario

# --- scenarios: each returns what the mutant changes ---------------------------------------------


def lookup_fails_for_a_lost_node() -> list[str]:
    """One monitoring pass over a node that is not Ready while every cloud lookup fails
    (503): the nodes the controller deletes."""
    deleted: list[str] = []

    async def instance(name: str) -> Any:
        raise CloudError(503, "injected failure")

    async def delete(resource: Any, name: str) -> None:
        deleted.append(name)

    async def event(*args: Any) -> None:
        return None

    node = {
        "metadata": {"name": "n1", "resourceVersion": "3"},
        "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]},
    }
    controller: Any = SimpleNamespace(
        informer=None,
        nodes=SimpleNamespace(list=lambda: [node]),
        cloud=SimpleNamespace(instance=instance),
        client=SimpleNamespace(delete=delete),
        recorder=SimpleNamespace(event=event),
    )
    trio.run(CloudNodeLifecycleController.monitor_nodes, controller)
    return deleted


SCENARIOS: dict[str, Scenario] = {
    "ccm-deletes-node-on-cloud-error": (lookup_fails_for_a_lost_node, [], ["n1"]),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_patch_changes_behavior_and_is_undone(name: str) -> None:
    check_scenario(name, SCENARIOS[name])
