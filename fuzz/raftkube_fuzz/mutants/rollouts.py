"""The ``cluster`` suite's rollout mutants: bugs in the Deployment controller, which replaces
one ReplicaSet's pods by another's within the bounds its strategy sets."""

from __future__ import annotations

from collections.abc import Sequence

from raftkube.controllers import deployment_util
from raftkube.controllers.deployment_util import (
    Obj,
    _rolling,
    is_rolling_update,
    replica_count,
    replicas,
    resolve_fenceposts,
    scaled_value,
)
from raftkube_fuzz.mutants.base import CONTROL_PLANE, Mutant, patch

# --- deployment-ignores-surge --------------------------------------------------------------------


def _new_rs_new_replicas_ignoring_surge(
    deployment: Obj, all_rss: Sequence[Obj | None], new_rs: Obj
) -> int:
    if not is_rolling_update(deployment):
        return replicas(deployment)
    surge = scaled_value(_rolling(deployment).get("maxSurge", 0), replicas(deployment), True)
    most = replicas(deployment) + surge
    current = replica_count(all_rss)
    if current >= most:
        return replicas(new_rs)
    # MUTANT: the new ReplicaSet grows straight to the Deployment's replicas, however many
    # pods the old ones still ask for: room left under replicas + maxSurge is not looked at.
    grow = replicas(deployment) - replicas(new_rs)
    return replicas(new_rs) + grow


# --- deployment-swaps-fenceposts -----------------------------------------------------------------


def _max_unavailable_from_surge(deployment: Obj) -> int:
    if not is_rolling_update(deployment) or replicas(deployment) == 0:
        return 0
    # MUTANT: ResolveFenceposts' (maxSurge, maxUnavailable) pair read the wrong way round, so
    # the minimum availability counts maxSurge pods as ones that may be unavailable.
    return min(resolve_fenceposts(deployment)[0], replicas(deployment))


MUTANTS = (
    Mutant(
        "deployment-ignores-surge",
        "the Deployment controller sizes a new ReplicaSet to replicas, ignoring maxSurge",
        "cluster",
        "RequestConformance",
        False,
        patch(deployment_util, "new_rs_new_replicas", _new_rs_new_replicas_ignoring_surge),
        {**CONTROL_PLANE, "rollout": "on"},
    ),
    Mutant(
        "deployment-swaps-fenceposts",
        "the Deployment controller takes maxSurge for maxUnavailable when scaling old pods down",
        "cluster",
        "RequestConformance",
        False,
        patch(deployment_util, "max_unavailable", _max_unavailable_from_surge),
        {**CONTROL_PLANE, "rollout": "on"},
    ),
)
