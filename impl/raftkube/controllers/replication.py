"""The replication manager: ReplicationControllers, by the ReplicaSet controller's code.

Upstream's ``pkg/controller/replication`` converts each RC to a ReplicaSet and runs
``replica_set.go`` on it; here :class:`~raftkube.controllers.replicaset.ReplicaSetController`
takes a :class:`~raftkube.controllers.replicaset.ReplicaKind` instead, and the RC's kind reads
its plain-map selector as ``matchLabels``, writes ``replicationcontrollers/status`` and records
Events as ``replication-controller``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from raftkube.clock import Clock
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.replicaset import (
    BURST_REPLICAS,
    REPLICATION_CONTROLLER_KIND,
    ReplicaSetController,
)
from raftkube.kubeclient import KubeClient


def replication_manager(
    client: KubeClient,
    factory: SharedInformerFactory,
    clock: Clock,
    *,
    wall: Callable[[], float] = time.time,
    burst_replicas: int = BURST_REPLICAS,
) -> ReplicaSetController:
    """upstream's ``NewReplicationManager``."""
    return ReplicaSetController(
        client,
        factory,
        clock,
        kind=REPLICATION_CONTROLLER_KIND,
        wall=wall,
        burst_replicas=burst_replicas,
    )
