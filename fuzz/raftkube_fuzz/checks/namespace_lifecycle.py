"""``NamespaceEmptiedBeforeFinalized`` on the store's revisions: a namespace being deleted is
finalized only once everything that was in it when its deletion began is gone.

Upstream's contract (``pkg/controller/namespace``, the namespace registry): a delete only
marks the namespace (``deletionTimestamp``, phase ``Terminating``); the ``kubernetes`` entry
of its ``spec.finalizers`` holds it while the namespace controller deletes every namespaced
object in it and waits for them to go (pods through their graceful deletion, objects held by
finalizers); only then does the controller remove that entry (``PUT .../finalize``), after
which the API server deletes the namespace. The check follows every key the store writes:

* a **Namespace**'s writes give, per uid, the revision of its deletion mark (``m``) and the
  revision at which the ``kubernetes`` finalizer is gone from it or the namespace itself is
  (``f``, whichever comes first);
* any **other** key's value names its namespace (``metadata.namespace``, read once, at the
  key's creation: ``version`` 1), and its tombstone ends it.

At ``f`` nothing created in that namespace at or before ``m`` may remain, whatever its kind
(Pods, ReplicaSets, Services, Endpoints, ServiceAccounts, ConfigMaps, Events...): the
controller must have seen each of those, since its deletion began ``deletion_grace_period``
after the mark and its lists are reads after it.

What it cannot judge, and why: an object created *after* the mark. Upstream lets one in: the
NamespaceLifecycle admission reads the namespace before the create is written, with nothing
tying the two together, so a create admitted just before the mark may be written after it,
and one written after the controller's last list outlives the namespace (the controller's
5 s grace period makes that rare, not impossible). Such objects are left to eventual
reconciliation (:mod:`raftkube_fuzz.checks.reconciliation`), which wants a deleted namespace
gone with everything in it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import attrs

from raftkube_fuzz.violation import Violation
from raftkube_spec.kv.types import KeyValue

PREFIX = b"/registry/namespaces/"
FINALIZER = "kubernetes"
SHOWN = 10
"""How many of the objects left behind the violation lists."""


@attrs.define
class NamespaceLife:
    """One namespace (one uid): when its deletion began and when it was finalized."""

    name: str
    marked: int | None = None
    finalized: int | None = None


class NamespaceLog:
    """Every namespace's life and every namespaced key's namespace, from the store's writes;
    raises a Violation when a namespace is finalized before it was emptied (see the module
    docstring). Fed each revision's writes in order by
    :class:`~raftkube_fuzz.checks.cluster_state.ClusterObserver`."""

    def __init__(self) -> None:
        self.by_uid: dict[str, NamespaceLife] = {}
        self._uid_at: dict[bytes, str] = {}
        self.contents: dict[bytes, tuple[str, int]] = {}
        """Every live namespaced key: its namespace and creation revision."""

    def apply(self, revision: int, records: Iterable[KeyValue]) -> None:
        """Apply one revision's writes, then judge the namespaces it finalized."""
        finalized: list[NamespaceLife] = []
        for kv in records:
            if kv.key.startswith(PREFIX):
                life = self._namespace_written(revision, kv)
                if life is not None:
                    finalized.append(life)
            elif kv.version == 0:
                self.contents.pop(kv.key, None)
            elif kv.version == 1:
                namespace = _namespace_of(kv.value)
                if namespace:
                    self.contents[kv.key] = (namespace, kv.create_revision or revision)
        for life in finalized:
            self._judge(revision, life)

    def _namespace_written(self, revision: int, kv: KeyValue) -> NamespaceLife | None:
        """Follow a Namespace's write; the namespace if this write finalized it."""
        if kv.version == 0:
            uid = self._uid_at.pop(kv.key, None)
            life = self.by_uid.get(uid) if uid is not None else None
            if life is None or life.finalized is not None:
                return None
            life.finalized = revision
            return life
        obj = json.loads(kv.value)
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        self._uid_at[kv.key] = uid
        life = self.by_uid.setdefault(uid, NamespaceLife(str(meta.get("name", ""))))
        if meta.get("deletionTimestamp") and life.marked is None:
            life.marked = revision
        held = FINALIZER in ((obj.get("spec") or {}).get("finalizers") or [])
        if life.marked is not None and not held and life.finalized is None:
            life.finalized = revision
            return life
        return None

    def _judge(self, revision: int, life: NamespaceLife) -> None:
        marked = life.marked if life.marked is not None else revision
        left = sorted(
            key.decode(errors="replace")
            for key, (namespace, created) in self.contents.items()
            if namespace == life.name and created <= marked
        )
        if left:
            raise Violation(
                "NamespaceEmptiedBeforeFinalized",
                f"at revision {revision}: namespace {life.name} was finalized while "
                f"{len(left)} object(s) it held when its deletion began (revision {marked}) "
                f"were still there: {', '.join(left[:SHOWN])}",
                {"revision": revision, "namespace": life.name, "marked": marked,
                 "left": left[:SHOWN]},
            )  # fmt: skip

    def live(self) -> set[str]:
        """The namespaces (by name) the store holds."""
        return {self.by_uid[uid].name for uid in self._uid_at.values()}

    def orphans(self) -> list[str]:
        """Every namespaced key whose namespace was in the store and is gone (sorted). A
        namespace the store never held is not judged: the API refuses content in one, and
        the store's own bootstrap writes come from the API server, not from this suite."""
        live = self.live()
        gone = {life.name for life in self.by_uid.values()} - live
        return sorted(
            key.decode(errors="replace")
            for key, (namespace, _) in self.contents.items()
            if namespace in gone
        )

    def emptying(self, namespace: str) -> bool:
        """Whether ``namespace`` is being deleted or gone as of the revisions applied: its
        namespace controller may then delete anything in it."""
        return namespace in self.terminating() or namespace not in self.live()

    def terminating(self) -> Mapping[str, int]:
        """Namespaces (by name) whose deletion began and that are not finalized yet, with the
        revision of their mark."""
        return {
            life.name: life.marked
            for life in self.by_uid.values()
            if life.marked is not None and life.finalized is None
        }


def _namespace_of(value: bytes) -> str:
    """The ``metadata.namespace`` of a stored object ("" for a cluster-scoped one, or a value
    that is not a JSON object)."""
    try:
        obj = json.loads(value)
    except ValueError:
        return ""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return str(meta.get("namespace") or "") if isinstance(meta, dict) else ""
