"""Collects what the request-conformance and view checks judge, while the components run.

Two hooks per judged component (controller manager, scheduler), installed by
:meth:`ConformanceMonitor.watch` in the component's root task:

* the **sync listener** (:mod:`raftkube.controllers.synctrace`): when a judged loop
  (:data:`LOOPS`) starts a sync, the monitor takes its view, each informer's cached objects
  with the resourceVersion they are at (a list copy: the cache's objects are never changed in
  place), and makes it the current sync of that task in :data:`CURRENT`, which the tasks the
  sync starts inherit;
* the **request tracer and observer** (the client's
  :data:`~raftkube.kubeclient.client.RequestTracer`, told as a request is sent, and
  :data:`~raftkube.kubeclient.RequestObserver`, told of its outcome, both in the requesting
  task): a request of a current sync is kept with that sync, a binding or an Endpoints write
  as it is sent, a ReplicaSet controller's pod create or delete once it is answered 2xx, with
  what the store holds at that moment where a rule needs it (the pods a create counts, from
  :class:`~raftkube_fuzz.checks.views.StoreHistory`, fed live); a failed binding's assumption
  is forgotten from then on. The other judged loops come in as plugs (:data:`PLUGGED`, each a
  :class:`~.judged_loop.LoopRules` of its own module): their collectors pick the requests
  they judge and gather the facts the rule reads, as the request is sent or answered; a plug
  may ask for its syncs' GETs too (the garbage collector's, :mod:`.gc_monitor`, which reads
  owners live).

Nothing is judged inside a component (an exception there would be the component's): after
every step :meth:`ConformanceMonitor.check` judges the views and the requests collected, with
the rules of :mod:`raftkube_fuzz.checks.request_conformance`,
:mod:`raftkube_fuzz.checks.gc_conformance` and :mod:`raftkube_fuzz.checks.views`, and raises the
first violation. A ReplicaSet controller's
request is collected when its answer comes, so one whose answer is still on its way when a
step ends is judged after the next step.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from raftkube.controllers.informer import SharedIndexInformer
from raftkube.controllers.synctrace import listen_to_syncs
from raftkube.kubeclient import RequestDone, RequestObserver, RequestTracer, ignore_outcome
from raftkube_fuzz.checks import request_conformance as rules
from raftkube_fuzz.checks.views import StoreHistory, controller_of, scope_of, view_mismatch
from raftkube_fuzz.cluster import accounts_monitor as accounts
from raftkube_fuzz.cluster import cloud_monitor as cloud
from raftkube_fuzz.cluster import deployment_monitor as deployment
from raftkube_fuzz.cluster import gc_monitor as gc
from raftkube_fuzz.cluster import nodelifecycle_monitor as nodelifecycle
from raftkube_fuzz.cluster.ambiguous import AmbiguousCreates, is_pod_create
from raftkube_fuzz.cluster.judged_loop import Cache, Facts, LoopRules, Sync, read_of
from raftkube_fuzz.cluster.kubelet_monitor import KubeletMonitor
from raftkube_fuzz.violation import Violation
from raftkube_spec.control.records import ReplicaSet, Service
from raftkube_spec.control.replicaset import active_pods
from raftkube_spec.control.world import World
from raftkube_spec.kv.types import KeyValue

Obj = dict[str, Any]

PLUGGED: Mapping[str, LoopRules] = {
    plug.loop: plug
    for plug in (gc.RULES, *cloud.RULES, *accounts.PLUGS, deployment.RULES, *nodelifecycle.RULES)
}
"""The loops whose rules come in through :class:`~.judged_loop.LoopRules`."""

LOOPS = ("replicaset", "endpoint", "scheduler", *PLUGGED)
"""The loops judged (their work queues' names; the scheduler's decisions)."""


CURRENT: contextvars.ContextVar[Sync | None] = contextvars.ContextVar(
    "raftkube_fuzz_current_sync", default=None
)


@attrs.define(eq=False)
class Request:
    sync: Sync
    method: str
    path: str
    body: Any
    outcome: int | BaseException | str
    """The answer's status code or the exception, or :data:`SENT`."""
    created_since: tuple[str, ...] = ()
    """For a pod create: uids of the owner's active pods the store created after the view's
    pod revision, as the store held them when the answer came."""
    deleted: frozenset[str] = frozenset()
    """For a pod delete: uids of the pods this loop incarnation had deleted (2xx) when the
    answer came, this one included."""
    facts: Facts | None = None
    """For a plugged loop's (:data:`PLUGGED`): what its rule reads, gathered as it was sent or
    answered."""


@attrs.define(eq=False)
class Assumption:
    seq: int
    uid: str
    node: str
    forgotten_at: int | None
    """The decision count when its binding failed (the scheduler forgets it then)."""


SENT = "sent"
"""The outcome of a request judged as it was sent."""


def _ok(outcome: int | BaseException) -> bool:
    return isinstance(outcome, int) and 200 <= outcome < 300


def _parts(path: str) -> list[str]:
    return path.strip("/").split("/")


@attrs.define(eq=False)
class ConformanceMonitor:
    """See the module docstring."""

    ambiguous: AmbiguousCreates | None = None
    history: StoreHistory = attrs.field(factory=StoreHistory)
    requests: list[Request] = attrs.field(factory=list)
    """Requests not judged yet."""
    latest: dict[tuple[str, str], Sync] = attrs.field(factory=dict)
    """The last sync of each (host, loop), whose view is checked after every step."""
    decisions: dict[SharedIndexInformer, int] = attrs.field(factory=dict)
    assumed: dict[SharedIndexInformer, list[Assumption]] = attrs.field(factory=dict)
    binding: dict[tuple[SharedIndexInformer, str], Assumption] = attrs.field(factory=dict)
    """The bindings sent and not answered yet, by scheduler incarnation and path."""
    deleted: dict[SharedIndexInformer, set[str]] = attrs.field(factory=dict)
    """Uids of the pods each ReplicaSet controller incarnation deleted (2xx)."""
    versions: dict[SharedIndexInformer, int] = attrs.field(factory=dict)
    """The last resourceVersion each informer was read at."""
    found: list[Violation] = attrs.field(factory=list)
    judged: dict[str, int] = attrs.field(factory=dict)
    """Requests judged so far, by loop."""
    kubelets: KubeletMonitor = attrs.field(
        default=attrs.Factory(lambda self: KubeletMonitor(self.history), takes_self=True)
    )
    """The kubelets' final deletes and status writes (:mod:`.kubelet_monitor`)."""
    views: int = 0
    """Caches compared with the store so far."""

    def follow(
        self,
        written: Mapping[int, Sequence[KeyValue]],
        hooks: list[Callable[[int, tuple[KeyValue, ...]], None]],
    ) -> None:
        """Take every revision ``written`` holds so far, then each new one as it is applied
        (``hooks``: the run listener's ``on_written``)."""
        for revision in sorted(written):
            self.history.written(revision, written[revision])
        hooks.append(self.history.written)

    def watch(self, host: str, also: RequestObserver | None = None) -> RequestObserver:
        """Install the sync listener in the calling task (a component's root) and return the
        observer its clients must be given (calling ``also`` first); the clients must be given
        :meth:`tracer` too."""
        listen_to_syncs(functools.partial(self._sync_started, host))

        def observe(method: str, path: str, body: Any, outcome: int | BaseException) -> None:
            if also is not None:
                also(method, path, body, outcome)
            self._request(method, path, body, outcome)

        return observe

    def tracer(self, also: RequestTracer | None = None) -> RequestTracer:
        """The request tracer a watched component's clients must be given (calling ``also``
        first): it sees each request as it is sent."""

        def trace(method: str, path: str, query: Any, body: Any) -> RequestDone:
            done = also(method, path, query, body) if also is not None else ignore_outcome
            self._sent(method, path, body)
            sync = CURRENT.get()
            plug = PLUGGED.get(sync.loop) if sync is not None else None
            if sync is None or plug is None or not plug.keeps_reads or method != "GET":
                return done

            def read(outcome: int | BaseException, data: bytes) -> None:
                done(outcome, data)
                sync.reads.append(read_of(path, outcome, data))

            return read

        return trace

    # --- collecting (inside the components' tasks: quick, never raises) ---------------------

    def _sync_started(
        self, host: str, loop: str, key: str, informers: Sequence[SharedIndexInformer]
    ) -> None:
        if loop not in LOOPS or not informers:
            CURRENT.set(None)
            return
        incarnation = informers[0]
        seq = self.decisions[incarnation] = self.decisions.get(incarnation, 0) + 1
        caches = {}
        for informer in informers:
            version = informer.last_sync_resource_version
            caches[informer.name] = Cache(
                informer.name,
                version,
                informer.indexer.list(),
                scope_of(informer.reflector.lister_watcher),
                informer,
            )
            if version.isdigit():
                last = self.versions.get(informer, 0)
                if int(version) < last:
                    self.found.append(Violation(
                        "ViewIsAPIState",
                        f"{loop} on {host}: its {informer.name} cache went back from "
                        f"resourceVersion {last} to {version}",
                        {"host": host, "loop": loop, "resource": informer.name},
                    ))  # fmt: skip
                self.versions[informer] = max(last, int(version))
        sync = Sync(host, loop, key, seq, incarnation, caches)
        self.latest[(host, loop)] = sync
        CURRENT.set(sync)
        if loop in PLUGGED:
            PLUGGED[loop].started(sync)

    def _request(self, method: str, path: str, body: Any, outcome: int | BaseException) -> None:
        sync = CURRENT.get()
        if sync is None:
            return
        parts = _parts(path)
        plug = PLUGGED.get(sync.loop)
        if plug is not None:
            facts = plug.answered(sync, method, path, body, outcome, self.history)
            if facts is not None:
                self.requests.append(Request(sync, method, path, body, outcome, facts=facts))
        elif sync.loop == "replicaset" and is_pod_create(method, path):
            if _ok(outcome) and isinstance(body, Mapping):
                owner = controller_of(body)
                since = sync.revision("pods")
                created = tuple(
                    sorted(
                        fact.uid
                        for fact in self.history.pods.values()
                        if fact.controller == owner and fact.created > since and fact.active
                    )
                )
                self.requests.append(Request(sync, method, path, body, outcome, created))
        elif sync.loop == "replicaset" and method == "DELETE" and parts[-2:-1] == ["pods"]:
            if _ok(outcome):
                namespace, name = parts[3], parts[5]
                uid = next((str(p["metadata"].get("uid")) for p in sync.items("pods")
                            if p["metadata"].get("name") == name
                            and p["metadata"].get("namespace") == namespace), "")  # fmt: skip
                gone = self.deleted.setdefault(sync.incarnation, set())
                gone.add(uid)
                request = Request(sync, method, path, body, outcome, deleted=frozenset(gone))
                self.requests.append(request)
        elif sync.loop == "scheduler" and (sync.incarnation, path) in self.binding:
            assumption = self.binding.pop((sync.incarnation, path))
            if not _ok(outcome):  # upstream forgets the assumption of a failed binding
                assumption.forgotten_at = self.decisions.get(sync.incarnation, 0)

    def _sent(self, method: str, path: str, body: Any) -> None:
        """A request is being sent: the bindings and Endpoints writes of a current sync are
        collected now, so that one whose answer comes late is judged after the step it was
        made in (their rules need no answer)."""
        sync = CURRENT.get()
        if sync is None:
            return
        parts = _parts(path)
        if sync.loop == "scheduler" and parts[-1:] == ["binding"] and isinstance(body, Mapping):
            node = str((body.get("target") or {}).get("name") or "")
            uid = str((body.get("metadata") or {}).get("uid") or "")
            assumption = Assumption(sync.seq, uid, node, None)
            self.assumed.setdefault(sync.incarnation, []).append(assumption)
            self.binding[(sync.incarnation, path)] = assumption
            self.requests.append(Request(sync, method, path, body, SENT))
        elif sync.loop == "endpoint" and "endpoints" in parts[-2:] and method != "GET":
            self.requests.append(Request(sync, method, path, body, SENT))
        elif sync.loop in PLUGGED:
            facts = PLUGGED[sync.loop].sent(sync, method, path, body, self.history)
            if facts is not None:
                self.requests.append(Request(sync, method, path, body, SENT, facts=facts))

    # --- judging (after every step) ----------------------------------------------------------

    def check(self, excused: Callable[[str], bool] = lambda uid: False) -> None:
        """Judge every view and request collected since the last call; raise the first
        violation. ``excused(uid)``: a pod created while two controller managers may have
        acted (not counted against a ReplicaSet create)."""
        requests, self.requests = self.requests, []
        syncs = {id(r.sync): r.sync for r in requests}
        syncs.update({id(s): s for s in self.latest.values()})
        for sync in syncs.values():
            self._check_view(sync)
        for request in requests:
            why = self._judge(request, excused)
            loop = request.sync.loop
            self.judged[loop] = self.judged.get(loop, 0) + 1
            if why is not None:
                self.found.append(Violation(
                    "RequestConformance",
                    f"{request.sync.describe()} sent {request.method} {request.path}, which "
                    f"the spec's loop does not allow from that view: {why}",
                    {"host": request.sync.host, "loop": request.sync.loop,
                     "key": request.sync.key, "method": request.method, "path": request.path,
                     "outcome": str(request.outcome),
                     "view": {r: c.resource_version for r, c in request.sync.caches.items()}},
                ))  # fmt: skip
        self.found.extend(self.kubelets.judge())
        if self.found:
            raise self.found[0]

    def summary(self) -> str:
        judged = dict(self.judged)
        if self.kubelets.judged:
            judged["kubelet"] = self.kubelets.judged
        loops = ", ".join(f"{loop} {n}" for loop, n in sorted(judged.items()))
        return (
            f"request conformance: {sum(judged.values())} requests judged"
            f"{f' ({loops})' if loops else ''}, {self.views} caches compared"
        )

    def _check_view(self, sync: Sync) -> None:
        for cache in sync.caches.values():
            if cache.scope is None:
                continue
            self.views += 1
            why = view_mismatch(
                self.history, cache.resource, cache.resource_version, cache.items, cache.scope
            )
            if why is not None:
                self.found.append(Violation(
                    "ViewIsAPIState",
                    f"{sync.describe()}: {why}",
                    {"host": sync.host, "loop": sync.loop, "resource": cache.resource,
                     "resourceVersion": cache.resource_version},
                ))  # fmt: skip

    def _judge(self, request: Request, excused: Callable[[str], bool]) -> str | None:
        sync = request.sync
        body = request.body if isinstance(request.body, Mapping) else {}
        if request.facts is not None:
            return request.facts.judge()
        if sync.loop == "replicaset" and request.method == "DELETE":
            return self._judge_delete(request)
        if sync.loop == "replicaset":
            return self._judge_create(request, body, excused)
        if sync.loop == "scheduler":
            namespace, name = str(_parts(request.path)[3]), str(_parts(request.path)[5])
            view = rules.world_of(pods=sync.items("pods"), nodes=sync.items("nodes"))
            memory = tuple(
                (a.uid, a.node)
                for a in self.assumed.get(sync.incarnation, [])
                if a.seq < sync.seq and (a.forgotten_at is None or a.forgotten_at >= sync.seq)
            )
            node = str((body.get("target") or {}).get("name") or "")
            return rules.binding((namespace, name), node, view, memory)
        namespace, name = sync.key.partition("/")[::2]
        service = self._service(sync, namespace, name)
        if request.method == "DELETE":
            return rules.endpoints_delete(service)
        pods = [p for p in sync.items("pods") if rules.has_ip(p)]
        view = rules.world_of(pods=pods)
        return rules.endpoints_write(service, view, rules.written_addresses(body))

    @staticmethod
    def _replica_set_view(sync: Sync) -> tuple[World, ReplicaSet | None]:
        """The sync's view of its ReplicaSet and the pods of its namespace."""
        namespace, name = sync.key.partition("/")[::2]
        owned = [r for r in sync.items("replicasets.apps")
                 if (r.get("metadata") or {}).get("name") == name
                 and (r.get("metadata") or {}).get("namespace") == namespace]  # fmt: skip
        view = rules.world_of(
            pods=[p for p in sync.items("pods") if (p.get("metadata") or {}).get("namespace")
                  == namespace],
            replica_sets=owned,
        )  # fmt: skip
        rs = view.get(("ReplicaSet", namespace, name))
        assert rs is None or isinstance(rs, ReplicaSet)
        return view, rs

    def _judge_delete(self, request: Request) -> str | None:
        view, rs = self._replica_set_view(request.sync)
        active = {p.meta.uid for p in active_pods(rs, view)} if rs is not None else set()
        parts = _parts(request.path)
        uid = next((p.meta.uid for p in view.pods if p.meta.key == ("Pod", parts[3], parts[5])),
                   "")  # fmt: skip
        return rules.replica_set_delete(rs, view, uid, len(request.deleted & active))

    def _judge_create(
        self, request: Request, body: Mapping[str, Any], excused: Callable[[str], bool]
    ) -> str | None:
        sync = request.sync
        name = sync.key.partition("/")[2]
        view, rs = self._replica_set_view(sync)
        if rs is not None and controller_of(body) != rs.meta.uid:
            return f"the pod's controller is not ReplicaSet {name} ({rs.meta.uid})"
        counted = [uid for uid in request.created_since if not excused(uid)]
        unknown = self.ambiguous.of(rs.meta.uid) if self.ambiguous and rs else 0
        return rules.replica_set_create(rs, view, len(counted), unknown)

    @staticmethod
    def _service(sync: Sync, namespace: str, name: str) -> Service | None:
        for obj in sync.items("services"):
            meta = obj.get("metadata") or {}
            if meta.get("name") == name and (meta.get("namespace") or "") == namespace:
                return rules.view_service(obj)
        return None
