"""The rollout mutants' behaviour scenarios (:mod:`raftkube_fuzz.mutants.rollouts`): each
patch changes what the Deployment controller's arithmetic answers, and is undone."""

from __future__ import annotations

from typing import Any

import pytest

from raftkube.controllers import deployment_util
from tests.helpers.mutant_scenarios import Scenario, check_scenario


def new_replica_set_size_beside_a_full_old_one() -> int:
    """The size ``getNewReplicaSet`` gives the new ReplicaSet of a 3-replica Deployment
    (maxSurge 1) whose old ReplicaSet still asks for 3 pods."""
    deployment: dict[str, Any] = {
        "metadata": {"name": "web", "namespace": "default", "uid": "u"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}},
                 "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}},
    }  # fmt: skip
    deployment["apiVersion"], deployment["kind"] = "apps/v1", "Deployment"
    old = {"metadata": {"name": "web-old", "annotations": {}}, "spec": {"replicas": 3}}
    return deployment_util.replicas(deployment_util.new_replica_set(deployment, [old]))


def old_pods_scaled_down_beside_an_unready_new_one() -> int:
    """How many old pods ``reconcileOldReplicaSets`` would let go beside a new ReplicaSet
    whose one pod is not available yet (3 replicas, maxSurge 1, maxUnavailable 0)."""
    deployment: dict[str, Any] = {
        "spec": {"replicas": 3,
                 "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}},
    }  # fmt: skip
    old = {"metadata": {"name": "web-old"}, "spec": {"replicas": 3},
           "status": {"availableReplicas": 3}}  # fmt: skip
    new = {"metadata": {"name": "web-new"}, "spec": {"replicas": 1},
           "status": {"availableReplicas": 0}}  # fmt: skip
    if deployment_util.max_scaled_down(deployment, [old, new], new) <= 0:
        return 0
    plan = deployment_util.scale_down_old_plan(deployment, [old, new], [old])
    return sum(deployment_util.replicas(rs) - size for rs, size in plan)


SCENARIOS: dict[str, Scenario] = {
    "deployment-ignores-surge": (new_replica_set_size_beside_a_full_old_one, 1, 3),
    "deployment-swaps-fenceposts": (old_pods_scaled_down_beside_an_unready_new_one, 0, 1),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_patch_changes_behavior_and_is_undone(name: str) -> None:
    check_scenario(name, SCENARIOS[name])
