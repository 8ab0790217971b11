"""The ``cluster`` suite's object-lifecycle mutants: bugs in the loops that decide when an
object goes with another (the garbage collector's ownership graph)."""

from __future__ import annotations

from raftkube.controllers.controller_utils import is_being_deleted, labels_of, selects
from raftkube.controllers.garbagecollector import (
    FOREGROUND,
    GarbageCollector,
    Node,
    Obj,
    is_deleting_dependents,
)
from raftkube_fuzz.mutants.base import Mutant, patch

# --- gc-selects-by-label -------------------------------------------------------------------------


async def _process_deleting_dependents_by_label(
    self: GarbageCollector, node: Node, latest: Obj
) -> None:
    waiting_on = []
    # MUTANT: an owner's dependents are the objects of its namespace that its selector matches,
    # not the objects naming it (by uid) in their ownerReferences.
    selector = (latest.get("spec") or {}).get("selector")
    for dependent in sorted(self.nodes):
        dep = self.nodes.get(dependent)
        # MUTANT: matched by labels, so a pod another owner owns is among them.
        if (
            dep is not None
            and dep.namespace == node.namespace
            and selects(selector, labels_of(dep.obj))
        ):
            waiting_on.append(dependent)
    if not waiting_on:
        await self.remove_finalizer(node, FOREGROUND)
        return
    for dependent in waiting_on:
        dep = self.nodes[dependent]
        if not is_being_deleted(dep.obj) or is_deleting_dependents(dep.obj):
            # MUTANT: a selected object is deleted as the owner's, without judging its own
            # ownerReferences (attempt_to_delete would find its real owner solid).
            await self._delete(dep, "Background")


MUTANTS = (
    Mutant(
        "gc-selects-by-label",
        "the garbage collector deletes, with an owner deleted in the foreground, every object "
        "its selector matches, not only those that name it as owner",
        "cluster",
        "GCDeletesOnlyDependents",
        False,
        patch(
            GarbageCollector, "process_deleting_dependents", _process_deleting_dependents_by_label
        ),
        {"store_faults": "off"},
    ),
)
