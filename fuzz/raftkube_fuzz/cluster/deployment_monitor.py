"""What the Deployment controller's ReplicaSet writes are judged on, gathered as they are sent.

The conformance monitor (:mod:`.conformance_monitor`) treats the Deployment controller as one
more judged loop (``deployment``, its work queue's name): each sync's view is its informers'
caches when the sync began (:class:`~.judged_loop.Sync`); the controller reads its Deployment
and lists its ReplicaSets before its first await, so that is the view it decides from. The
rules (:mod:`raftkube_fuzz.checks.deployment_conformance`) also read what the same sync wrote
before, which this module keeps per sync (:class:`Held`, weakly keyed by the sync, so that it
goes with it): from the view's ReplicaSets of the Deployment, each write answered 2xx replaces
the object by the body it sent (a PUT is the cached object with new fields under its
resourceVersion, so what the store holds after it is that body), and a create refused as
existing (409) by the object the controller then takes from its cache, read at the answer,
as the controller reads it. A write that failed otherwise ends the sync (the controller
raises), so no later write of it builds on one that did not happen.

A ReplicaSet create, PUT or DELETE is judged as it is sent, whatever its answer. Not judged: a
sync that adopted an orphan ReplicaSet (its PATCH answered 2xx; the adopted object is the
store's at the PATCH, which no cache held; the suite deletes no Deployment with
``--cascade=orphan``, so none is adopted there) and a sync of a Deployment whose selector has
``matchExpressions``.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from raftkube_fuzz.checks import deployment_conformance as rules
from raftkube_fuzz.checks.deployment_conformance import Path, SetState
from raftkube_fuzz.checks.views import StoreHistory
from raftkube_fuzz.cluster.judged_loop import LoopRules, Sync
from raftkube_spec.control.records import Deployment

Obj = dict[str, Any]

DEPLOYMENT_LOOP = "deployment"
DEPLOYMENTS = "deployments.apps"
REPLICA_SETS = "replicasets.apps"


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in _meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid") or "")
    return None


def _selects(selector: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    labels = _meta(obj).get("labels") or {}
    wanted = selector.get("matchLabels") or {}
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def _created_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    """Upstream's ``ReplicaSetsByCreationTimestamp`` (the API's RFC 3339 stamps, all in one
    format, sort as strings do)."""
    return str(_meta(obj).get("creationTimestamp") or ""), str(_meta(obj).get("name") or "")


@attrs.define(eq=False)
class Held:
    """What one sync of the controller holds: its Deployment, the path the view puts it on, and
    its ReplicaSets by name as its last write of each left them."""

    deployment: Obj
    record: Deployment
    path: Path
    sets: dict[str, Obj]
    new: str | None
    """The new ReplicaSet's name (the oldest with the Deployment's template, else the one the
    sync created)."""
    viewed: tuple[SetState, ...] = ()
    """Its ReplicaSets as its view showed them (upstream's cleanup reads those)."""
    judged: bool = True
    before_scale_down: tuple[SetState, ...] | None = None
    deletes: int = 0

    def states(self) -> tuple[SetState, ...]:
        return tuple(rules.set_state(obj, name == self.new) for name, obj in self.sets.items())


_HELD: weakref.WeakKeyDictionary[Sync, Held | None] = weakref.WeakKeyDictionary()
"""Per sync: what it holds (None: not a sync of a cached Deployment)."""


def held_by(sync: Sync) -> Held | None:
    """What ``sync`` holds, from its view the first time it is asked."""
    if sync in _HELD:
        return _HELD[sync]
    namespace, name = sync.key.partition("/")[::2]
    deployment = next((d for d in sync.items(DEPLOYMENTS)
                       if _meta(d).get("name") == name
                       and (_meta(d).get("namespace") or "") == namespace), None)  # fmt: skip
    held = None
    if deployment is not None:
        selector = (deployment.get("spec") or {}).get("selector") or {}
        uid = str(_meta(deployment).get("uid") or "")
        owned = sorted(
            (rs for rs in sync.items(REPLICA_SETS)
             if (_meta(rs).get("namespace") or "") == namespace
             and _controller_uid(rs) == uid and _selects(selector, rs)),
            key=_created_key,
        )  # fmt: skip
        new = next((rs for rs in owned if rules.same_template(rs, deployment)), None)
        held = Held(
            deployment,
            rules.spec_deployment(deployment),
            rules.path_of(deployment, owned),
            {str(_meta(rs).get("name")): rs for rs in owned},
            str(_meta(new).get("name")) if new is not None else None,
            judged=not selector.get("matchExpressions"),
        )
        held.viewed = held.states()
    _HELD[sync] = held
    return held


def _target(path: str, namespace: str) -> tuple[str, ...] | None:
    """``()`` for the sync's namespace's ReplicaSet collection, ``(name,)`` for one of its
    ReplicaSets, None for anything else."""
    parts = path.strip("/").split("/")
    if parts[:6] != ["apis", "apps", "v1", "namespaces", namespace, "replicasets"]:
        return None
    rest = tuple(parts[6:])
    return rest if len(rest) <= 1 else None


@attrs.frozen
class ReplicaSetWrite:
    """One ReplicaSet write and what its rule reads (see the module docstring)."""

    method: str
    name: str
    record: Deployment
    path: Path
    held: tuple[SetState, ...]
    to: int = 0
    before_scale_down: tuple[SetState, ...] | None = None
    created: Obj | None = None
    deployment: Obj | None = None
    history_limit: int | None = None
    deleted_before: int = 0

    def judge(self) -> str | None:
        if self.method == "POST":
            assert self.created is not None and self.deployment is not None
            why = rules.created_from_template(self.deployment, self.created)
            if why is not None:
                return why
            made = rules.set_state(self.created, True)
            return rules.replica_set_create(self.record, self.path, self.held, made)
        if self.method == "DELETE":
            return rules.replica_set_delete(
                self.record, self.path, self.held, self.name, self.history_limit,
                self.deleted_before,
            )  # fmt: skip
        return rules.replica_set_scale(
            self.record, self.path, self.held, self.name, self.to, self.before_scale_down
        )


def collect_sent(
    sync: Sync, method: str, path: str, body: Any, history: StoreHistory
) -> ReplicaSetWrite | None:
    """A ReplicaSet create, PUT or DELETE of a judged sync, with what it held then."""
    held = held_by(sync)
    if held is None or not held.judged or method not in ("POST", "PUT", "DELETE"):
        return None
    target = _target(path, sync.key.partition("/")[0])
    if target is None or (method == "POST") != (target == ()):
        return None
    states = held.states()
    if method == "POST":
        if not isinstance(body, Mapping):
            return None
        return ReplicaSetWrite(method, str(_meta(body).get("name") or ""), held.record,
                               held.path, states, created=dict(body),
                               deployment=held.deployment)  # fmt: skip
    name = target[0]
    if method == "DELETE":
        limit = (held.deployment.get("spec") or {}).get("revisionHistoryLimit")
        write = ReplicaSetWrite(method, name, held.record, held.path, held.viewed,
                                history_limit=None if limit is None else int(limit),
                                deleted_before=held.deletes)  # fmt: skip
        held.deletes += 1
        return write
    if not isinstance(body, Mapping):
        return None
    to = int((body.get("spec") or {}).get("replicas", 1))
    current = next((s for s in states if s.name == name), None)
    if (
        held.before_scale_down is None
        and held.path == "rolling"
        and current is not None
        and not current.new
        and to < current.replicas
    ):
        held.before_scale_down = states
    return ReplicaSetWrite(method, name, held.record, held.path, states, to=to,
                           before_scale_down=held.before_scale_down)  # fmt: skip


def collect_answered(
    sync: Sync, method: str, path: str, body: Any, outcome: int | BaseException,
    history: StoreHistory,
) -> None:  # fmt: skip
    """Keep what a write's answer tells the sync's later writes (nothing is judged here)."""
    held = _HELD.get(sync)
    if held is None or not isinstance(outcome, int):
        return
    target = _target(path, sync.key.partition("/")[0])
    if target is None or not isinstance(body, Mapping):
        return
    ok = 200 <= outcome < 300
    if method == "PATCH" and ok:
        held.judged = False  # an adoption (or a release): see the module docstring
    elif method == "PUT" and ok and target:
        held.sets[target[0]] = dict(body)
    elif method == "POST" and target == ():
        name = str(_meta(body).get("name") or "")
        if ok:
            held.sets[name], held.new = dict(body), name
        elif outcome == 409:
            found = _cached_now(sync, name)
            uid = _meta(held.deployment).get("uid")
            if (
                found is not None
                and _controller_uid(found) == uid
                and rules.same_template(found, held.deployment)
            ):
                held.sets[name], held.new = found, name


def _cached_now(sync: Sync, name: str) -> Obj | None:
    """ReplicaSet ``name`` of the sync's namespace in its cache now (the controller reads it
    there after a create refused as existing)."""
    cache = sync.caches.get(REPLICA_SETS)
    if cache is None:
        return None
    namespace = sync.key.partition("/")[0]
    objs: Sequence[Obj] = cache.informer.indexer.list()
    return next((o for o in objs if _meta(o).get("name") == name
                 and (_meta(o).get("namespace") or "") == namespace), None)  # fmt: skip


RULES = LoopRules(DEPLOYMENT_LOOP, sent=collect_sent, answered=collect_answered)
"""The Deployment controller as a judged loop."""
