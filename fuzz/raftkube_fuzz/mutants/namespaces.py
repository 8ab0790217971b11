"""The ``cluster`` suite's namespace mutant: a namespace controller that finalizes a namespace
being deleted before what it held is gone."""

from __future__ import annotations

import copy

from raftkube.controllers.namespace import (
    NamespaceController,
    failure_conditions,
    is_being_deleted,
    is_finalized,
    logger,
    updated_conditions,
    with_terminating_phase,
)
from raftkube.controllers.resources import NAMESPACES
from raftkube.kubeclient import KubeAPIError
from raftkube_fuzz.mutants.base import CONTROL_PLANE, Mutant, patch

# --- namespace-finalized-early -------------------------------------------------------------------


async def _sync_namespace_finalizing_early(self: NamespaceController, name: str) -> None:
    try:
        namespace = await self.client.get(NAMESPACES, name)
    except KubeAPIError as exc:
        if exc.code == 404:
            return
        raise
    if not is_being_deleted(namespace):
        return
    terminating = with_terminating_phase(namespace)
    if terminating is not None:
        namespace = await self.client.update(NAMESPACES, terminating, subresource="status")
    if is_finalized(namespace):
        return
    report = await self.delete_all_content(name)
    conditions = updated_conditions(
        (namespace.get("status") or {}).get("conditions") or [],
        failure_conditions(report),
        self.wall(),
    )
    if conditions is not None:
        body = copy.deepcopy(namespace)
        body.setdefault("status", {})["conditions"] = conditions
        try:
            namespace = await self.client.update(NAMESPACES, body, subresource="status")
        except KubeAPIError as exc:
            logger.warning("couldn't update status condition for namespace %r: %s", name, exc)
    if report.errors:
        raise RuntimeError(f"deletion of namespace {name} failed: {report.errors}")
    # MUTANT: the deletes were sent, so the namespace is finalized at once: content still
    # remaining (pods in their grace period, objects finalizers hold) is not waited for.
    await self.finalize(name)


MUTANTS = (
    Mutant(
        "namespace-finalized-early",
        "the namespace controller removes its finalizer from a namespace being deleted once it "
        "has sent the deletes, without waiting for the content that remains (pods still "
        "terminating) to go",
        "cluster",
        "RequestConformance",
        False,
        patch(NamespaceController, "sync_namespace", _sync_namespace_finalizing_early),
        {**CONTROL_PLANE, "team": "workloads"},
    ),
)
