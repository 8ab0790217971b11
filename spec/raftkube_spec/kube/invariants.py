"""What must hold in every reachable state, as a list of violations (empty when all hold).

These are the store-level facts the rest of the system leans on: one object per key, one write
per revision, resourceVersions that name the write that made them, uids that identify one
object's whole life, a history that replays to the live objects, and no object left behind
that nothing holds any more.
"""

from __future__ import annotations

from raftkube_spec.kube.objects import Object, ObjectKey
from raftkube_spec.kube.state import KubeState


def _object_problems(key: ObjectKey, obj: Object, revision: int) -> list[str]:
    meta = obj.metadata
    found = []
    if meta.get("name") != key.name or meta.get("namespace", "") != key.namespace:
        found.append(f"{key}: metadata names {meta.get('namespace')}/{meta.get('name')}")
    rv = obj.resource_version
    if not (rv.isdigit() and 2 <= int(rv) <= revision):
        found.append(f"{key}: resourceVersion {rv!r} is not a revision in 2..{revision}")
    if not obj.uid:
        found.append(f"{key}: no uid")
    if not (isinstance(meta.get("generation"), int) and meta["generation"] >= 1):
        found.append(f"{key}: generation {meta.get('generation')!r}")
    if "deletionTimestamp" in meta:
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            found.append(f"{key}: deletionTimestamp without deletionGracePeriodSeconds")
        elif grace == 0 and not obj.finalizers:
            found.append(f"{key}: deleted, nothing holds it, yet it is still stored")
    return found


def _history_problems(state: KubeState) -> list[str]:
    found = []
    revisions = [c.revision for c in state.changes]
    first = max(state.compact_revision, 2)
    if revisions != list(range(first, state.revision + 1)):
        found.append(f"history holds revisions {revisions}, not exactly {first}..{state.revision}")
    last: dict[ObjectKey, Object | None] = {}
    for change in state.changes:
        if change.before is None and change.after is None:
            found.append(f"revision {change.revision} changes nothing")
        if change.after is not None and change.after.resource_version != str(change.revision):
            found.append(f"revision {change.revision} wrote {change.after.resource_version}")
        before, after = change.before, change.after
        if before is not None and after is not None and before.uid != after.uid:
            found.append(f"revision {change.revision} changed the uid of {change.key}")
        if change.key in last and last[change.key] != change.before:
            found.append(f"revision {change.revision} starts from a state {change.key} was not in")
        last[change.key] = change.after
    for key, after in last.items():
        if state.get(key) != after:
            found.append(f"{key}: history ends in a state other than the stored object")
    return found


def invariants(state: KubeState) -> list[str]:
    """Every violated invariant of ``state``, described."""
    found = []
    sort_keys = [key.sort_key for key, _ in state.objects]
    if sort_keys != sorted(set(sort_keys)):
        found.append("objects are not in strictly increasing store order (a key twice?)")
    if not 0 <= state.compact_revision <= state.revision:
        found.append(f"compacted at {state.compact_revision}, beyond revision {state.revision}")
    for key, obj in state.objects:
        found.extend(_object_problems(key, obj, state.revision))
    rvs = [obj.resource_version for _, obj in state.objects]
    if len(set(rvs)) != len(rvs):
        found.append("two objects carry one resourceVersion")
    uids = [obj.uid for _, obj in state.objects]
    if len(set(uids)) != len(uids):
        found.append("two objects carry one uid")
    found.extend(_history_problems(state))
    return found
