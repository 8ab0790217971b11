"""Behaviour scenario of the namespace mutant (:mod:`raftkube_fuzz.mutants.namespaces`): the
patch changes what a small deterministic scenario does, and is fully undone on exit. The
marker diff of every mutant is in ``test_mutants.py``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio

from raftkube.controllers.controller import RequeueAfter
from raftkube.controllers.namespace import ContentReport, NamespaceController
from raftkube.controllers.resources import resource
from tests.helpers.mutant_scenarios import Scenario, check_scenario

PODS = resource("", "v1", "pods")


def a_namespace_whose_pod_is_still_terminating() -> str:
    """Namespace ``team-a`` being deleted; its content's deletes were sent and one pod is
    still in its 30 s grace period. What the controller's sync does next."""
    namespace = {
        "metadata": {"name": "team-a", "deletionTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Terminating"},
    }
    pod = {"metadata": {"name": "p", "deletionGracePeriodSeconds": 30}, "status": {}}
    done: list[str] = []

    async def get(resource: Any, name: str) -> dict[str, Any]:
        return namespace

    async def update(resource: Any, body: dict[str, Any], subresource: str) -> dict[str, Any]:
        return body

    async def delete_all_content(name: str) -> ContentReport:
        return ContentReport({PODS: [pod]})

    async def finalize(name: str) -> None:
        done.append(f"finalized {name}")

    controller: Any = SimpleNamespace(
        client=SimpleNamespace(get=get, update=update),
        delete_all_content=delete_all_content,
        finalize=finalize,
        wall=lambda: 1_767_225_600.0,
    )
    try:
        trio.run(NamespaceController.sync_namespace, controller, "team-a")
    except RequeueAfter as exc:
        done.append(f"requeued after {exc.delay} s")
    return ", ".join(done)


SCENARIOS: dict[str, Scenario] = {
    "namespace-finalized-early": (
        a_namespace_whose_pod_is_still_terminating,
        "requeued after 16 s",
        "finalized team-a",
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_patch_changes_behavior_and_is_undone(name: str) -> None:
    check_scenario(name, SCENARIOS[name])
