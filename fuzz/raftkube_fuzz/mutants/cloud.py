"""The ``cluster`` suite's cloud mutants: bugs in the cloud-controller-manager's loops, which
act on what the cloud answers as much as on their caches."""

from __future__ import annotations

from raftkube.cloud.client import CloudError
from raftkube.cloud.nodes import NODES, CloudNodeLifecycleController, logger
from raftkube.controllers.events import NORMAL
from raftkube.controllers.nodehealth import ready_status
from raftkube.controllers.nodelifecycle import node_reference
from raftkube.controllers.synctrace import sync_started
from raftkube.kubeclient import KubeAPIError, KubeConnectionError
from raftkube_fuzz.mutants.base import CONTROL_PLANE, Mutant, patch

# --- ccm-deletes-node-on-cloud-error -------------------------------------------------------------


async def _monitor_nodes_deleting_on_error(self: CloudNodeLifecycleController) -> None:
    """``MonitorNodes``: one pass over the cached nodes (a pass is this loop's sync: it
    acts on the node cache as the pass begins)."""
    sync_started("cloud-node-lifecycle", "nodes", (self.informer,))
    for node in self.nodes.list():
        name = node["metadata"]["name"]
        try:
            if ready_status(node) == "True":
                await self._set_shutdown_taint(node, False)
                continue
            # MUTANT: a lookup that failed (the cloud API erring or timing out) is taken for
            # "no such instance", so a node that is only unreachable is deleted.
            try:
                instance = await self.cloud.instance(name)
            except CloudError:
                instance = None
            if instance is None:
                await self.recorder.event(
                    node_reference(node),
                    NORMAL,
                    "DeletingNode",
                    f"Deleting node {name} because it does not exist in the cloud provider",
                )
                await self.client.delete(NODES, name)
                continue
            await self._set_shutdown_taint(node, instance.get("state") == "shutdown")
        except (CloudError, KubeAPIError, KubeConnectionError) as exc:
            logger.warning("checking node %s in the cloud failed: %s", name, exc)


MUTANTS = (
    Mutant(
        "ccm-deletes-node-on-cloud-error",
        "the cloud node lifecycle controller deletes a node that is not Ready when the cloud's "
        "lookup of its instance fails, as if the instance did not exist",
        "cluster",
        "RequestConformance",
        False,
        patch(CloudNodeLifecycleController, "monitor_nodes", _monitor_nodes_deleting_on_error),
        {**CONTROL_PLANE, "cloud": "failing"},
    ),
)
