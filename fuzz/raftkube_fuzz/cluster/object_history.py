"""Every API client's single-object requests, recorded for the object linearizability check
(:mod:`raftkube_fuzz.checks.object_linearizability`).

:meth:`ObjectHistories.tracer` is the :data:`~raftkube.kubeclient.RequestTracer` the suite gives
every component's client (the controller managers', their controllers' service-account
clients, the schedulers', the kubelets', kube-proxies') and the user's. It reads each request
as the API server will (:func:`request_of`: the path names the object, the body carries an
update's or a patch's ``resourceVersion`` precondition and a delete's preconditions and
propagation) and each answer as the model judges it (:func:`answer_of`), in virtual time,
into one :class:`~raftkube_fuzz.checks.history.History` per object key, since the check
searches each key alone.

How an answer becomes an outcome is what keeps the check honest: a 2xx, a 404 and a 409 that
the request's own preconditions or a create explain are answers the model judges; any other
refusal below 500 was not applied (``Failed``); a 5xx or a lost connection may or may not have
been (the API server may have written to the store before it failed to answer: ``Unknown``),
but a connection that could not be opened carried nothing (``Failed``).

Lists are handed to :attr:`ObjectHistories.lists` (:mod:`.list_history`: a list reveals the
store's revision, so it is judged alone against the store's history, not searched), with every
revision an object answer reveals. Left out, and why: watches (the view check's), dry runs
(they write nothing), subresources that are not the object (a pod's log, a ServiceAccount's
token: a TokenRequest writes nothing to the account). A create whose name the server generates
(``generateName``) names its key only in its answer: it is recorded when the answer comes, with
its call time; one whose answer was lost put an object under a name nobody knows, so a key of
that kind and namespace whose name starts with the prefix may be created by someone the history
does not show (:meth:`ObjectHistories.others`). A ``deletecollection`` removes objects no
single-object request names: the keys of that kind and namespace are judged loosely from then
on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import trio

from raftkube.apiserver.resources import lookup
from raftkube.kubeclient import KubeConnectionError, RequestDone, RequestTracer, ignore_outcome
from raftkube_fuzz.checks.history import Failed, History, Ok, Outcome, Unknown
from raftkube_fuzz.checks.linearizability.object_model import (
    AlreadyExists,
    Conflict,
    NotFound,
    ObjectRequest,
    Others,
    Seen,
    Wrote,
    digest_of,
    others_of,
)
from raftkube_fuzz.cluster.list_history import ListHistories

Obj = dict[str, Any]

_READ_SUBRESOURCES = frozenset({"", "status"})
"""Subresources whose GET, PUT and PATCH read or write the object itself."""
_PUT_SUBRESOURCES = _READ_SUBRESOURCES | {"finalize"}
"""And a Namespace's ``finalize``, a PUT of the namespace (its ``spec.finalizers``)."""


@attrs.frozen
class Target:
    """The object a request path names: kind, namespace, name and subresource."""

    kind: str
    namespace: str
    name: str
    subresource: str
    resource: str = ""
    """The resource's plural name (the store's key prefix is ``/registry/{resource}/``)."""


def target_of(path: str) -> Target | None:
    """The object (or collection, with an empty name) ``path`` names, None for a path that
    is not a served resource."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    info = lookup(group, version, rest[0])
    if info is None:
        return None
    name = rest[1] if len(rest) > 1 else ""
    return Target(info.kind, namespace, name, rest[2] if len(rest) > 2 else "", info.resource)


def _decoded(body: Any) -> Any:
    if isinstance(body, bytes):
        try:
            return json.loads(body)
        except ValueError:
            return None
    return body


def _meta(obj: Any) -> Mapping[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def _rv(text: Any) -> int:
    return int(text) if isinstance(text, str) and text.isdigit() else 0


def _pinned_rv(patch: Any) -> int:
    """The ``resourceVersion`` a patch sets itself (a precondition, as the API server
    judges it), 0 when it sets none."""
    if isinstance(patch, Mapping):
        return _rv(_meta(patch).get("resourceVersion"))
    if isinstance(patch, list):
        for op in patch:
            if isinstance(op, Mapping) and op.get("path") == "/metadata/resourceVersion":
                return _rv(op.get("value"))
    return 0


def request_of(method: str, path: str, query: Mapping[str, Any] | None, body: Any, client: str
               ) -> tuple[ObjectRequest, str] | None:  # fmt: skip
    """The single-object request ``method path`` is, and for a create of a generated name
    its prefix (the request's name is then empty); None for what is left out (see the module
    docstring)."""
    query = query or {}
    if query.get("dryRun"):
        return None
    target = target_of(path)
    if target is None:
        return None
    body = _decoded(body)
    base = ObjectRequest("get", target.kind, target.namespace, target.name, client=client)
    sub = target.subresource
    if not target.name:
        if method != "POST":
            return None  # a list, a deletecollection (ObjectHistories.tracer), a watch
        meta = _meta(body)
        name, prefix = str(meta.get("name") or ""), str(meta.get("generateName") or "")
        namespace = target.namespace or str(meta.get("namespace") or "")
        request = attrs.evolve(base, verb="create", namespace=namespace, name=name)
        return (request, "") if name else (request, prefix) if prefix else None
    if method == "GET" and sub in _READ_SUBRESOURCES:
        cached = str(query.get("resourceVersion", "")) == "0"
        return attrs.evolve(base, stale_ok=cached), ""
    if method == "PUT" and sub in _PUT_SUBRESOURCES:
        meta = _meta(body)
        rv, uid = _rv(meta.get("resourceVersion")), str(meta.get("uid") or "")
        return attrs.evolve(base, verb="update", rv=rv, uid=uid), ""
    if method == "PATCH" and sub in _READ_SUBRESOURCES:
        return attrs.evolve(base, verb="patch", rv=_pinned_rv(body)), ""
    if method == "DELETE" and not sub:
        options = body if isinstance(body, Mapping) else {}
        pre = options.get("preconditions") or {}
        return attrs.evolve(
            base,
            verb="delete",
            rv=_rv(pre.get("resourceVersion")),
            uid=str(pre.get("uid") or ""),
            foreground=options.get("propagationPolicy") == "Foreground",
        ), ""
    if method == "POST" and target.kind == "Pod" and sub in ("binding", "eviction"):
        return attrs.evolve(base, verb="bind" if sub == "binding" else "evict"), ""
    return None


def finalized(obj: Mapping[str, Any]) -> bool:
    """Whether an object an update answered is gone: being deleted with nothing holding it
    (no finalizers, no grace period, for a Namespace no ``spec.finalizers``), so the update
    was its removal (the API server's ``lifecycle.finalized``, upstream's
    ``ShouldDeleteDuringUpdate``)."""
    meta = _meta(obj)
    spec = obj.get("spec")
    held = (
        obj.get("kind") == "Namespace"
        and isinstance(spec, Mapping)
        and bool(spec.get("finalizers"))
    )
    return (
        meta.get("deletionTimestamp") is not None
        and not meta.get("finalizers")
        and not meta.get("deletionGracePeriodSeconds")
        and not held
    )


def seen_of(request: ObjectRequest, status: int, obj: Mapping[str, Any]) -> Seen:
    """A 2xx answer that is the object (see :class:`Seen` for ``gone``)."""
    meta = _meta(obj)
    content = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
    deleting = meta.get("deletionTimestamp") is not None
    gone: bool | None = False
    if request.verb == "delete":
        gone = None if deleting else True
    elif request.verb in ("update", "patch"):
        gone = finalized(obj)
    return Seen(
        str(meta.get("uid") or ""),
        _rv(meta.get("resourceVersion")),
        digest_of(content),
        deleting,
        gone,
        new=status == 201 and request.verb in ("create", "update"),
        cached=request.stale_ok,
    )


def answer_of(request: ObjectRequest, outcome: int | BaseException, data: bytes) -> Outcome:
    """What a request ended with, as the check judges it (see the module docstring)."""
    if isinstance(outcome, BaseException):
        if isinstance(outcome, KubeConnectionError) and not outcome.sent:
            return Failed("nothing sent")
        return Unknown(f"{type(outcome).__name__}: {outcome}")
    if outcome >= 500:
        return Unknown(f"{outcome}")
    body = _decoded(data)
    body = body if isinstance(body, Mapping) else {}
    if 200 <= outcome < 300:
        if body.get("kind") == "Status":
            if request.verb in ("bind", "evict"):
                return Ok(Wrote())  # type: ignore[arg-type]
            if request.verb == "delete":
                return Ok(Seen("", 0, "", False, True))  # type: ignore[arg-type]
            return Unknown("a Status where the object was expected")
        if request.verb in ("bind", "evict") or not body:
            return Unknown(f"{outcome} with an answer the check cannot read")
        return Ok(seen_of(request, outcome, body))  # type: ignore[arg-type]
    reason = str(body.get("reason") or "")
    if outcome == 404 and request.verb != "create":
        return Ok(NotFound())  # type: ignore[arg-type]
    if outcome == 409 and reason == "AlreadyExists" and request.verb == "create":
        return Ok(AlreadyExists())  # type: ignore[arg-type]
    if outcome == 409 and reason == "Conflict" and (request.rv or request.uid):
        return Ok(Conflict())  # type: ignore[arg-type]
    return Failed(f"{outcome} {reason}")


@attrs.define
class ObjectHistories:
    """Every recorded request, by object key (``Kind/namespace/name``)."""

    by_key: dict[str, History] = attrs.field(factory=dict)
    lost_generated: set[tuple[str, str, str]] = attrs.field(factory=set)
    """(kind, namespace, generateName) of creates whose answer was lost."""
    collections_deleted: set[tuple[str, str]] = attrs.field(factory=set)
    """(kind, namespace) of every ``deletecollection`` sent."""
    requests: int = 0
    lists: ListHistories | None = None
    """Where the same clients' lists are recorded (:mod:`.list_history`), if anywhere; it is
    told of every revision an object answer reveals."""

    def __len__(self) -> int:
        return sum(len(h) for h in self.by_key.values())

    def others(self, key: str) -> Others:
        """What writers outside the history may do to ``key`` (see the module docstring and
        :func:`~raftkube_fuzz.checks.linearizability.object_model.others_of`)."""
        kind, namespace, name = key.split("/", 2)
        if (kind, namespace) in self.collections_deleted:
            return Others(create=True, loose=True)
        if any(k == kind and ns == namespace and name.startswith(prefix)
               for k, ns, prefix in self.lost_generated):  # fmt: skip
            return Others(create=True)
        return others_of(kind, namespace, name)

    def tracer(self, client: str) -> RequestTracer:
        """The request tracer for ``client``'s KubeClient (the host's name)."""

        def trace(method: str, path: str, query: Any, body: Any) -> RequestDone:
            found = request_of(method, path, query, body, client)
            if found is None:
                target = target_of(path) if method in ("DELETE", "GET") else None
                if target is None or target.name:
                    return ignore_outcome
                if method == "DELETE":
                    self.collections_deleted.add((target.kind, target.namespace))
                elif self.lists is not None and not (query or {}).get("watch"):
                    return self.lists.sent(path, query, client, target.resource, target.namespace)
                return ignore_outcome
            request, prefix = found
            self.requests += 1
            call = trio.current_time()
            if prefix:
                return self._generated(request, prefix, call)
            history = self.by_key.setdefault(request.key, History())
            op = history.invoke(self.requests, request, call)  # type: ignore[arg-type]

            def done(outcome: int | BaseException, data: bytes) -> None:
                answer = answer_of(request, outcome, data)
                history.complete(op, answer, trio.current_time())
                lists = self.lists
                if lists is not None and isinstance(answer, Ok) and isinstance(answer.result, Seen):
                    lists.revealed(answer.result.rv)

            return done

        return trace

    def _generated(self, request: ObjectRequest, prefix: str, call: float) -> RequestDone:
        """A create of a generated name: recorded once its answer names the key."""
        client = self.requests

        def done(outcome: int | BaseException, data: bytes) -> None:
            answer = answer_of(request, outcome, data)
            if isinstance(answer, Unknown):
                self.lost_generated.add((request.kind, request.namespace, prefix))
                return
            name = str(_meta(_decoded(data)).get("name") or "")
            if not isinstance(answer, Ok) or not isinstance(answer.result, Seen) or not name:
                return  # refused: no object, so no key (a refusal below 500 wrote nothing)
            named = attrs.evolve(request, name=name)
            history = self.by_key.setdefault(named.key, History())
            op = history.invoke(client, named, call)  # type: ignore[arg-type]
            history.complete(op, answer, trio.current_time())
            if self.lists is not None:
                self.lists.revealed(answer.result.rv)

        return done


def tracer_of(histories: ObjectHistories | None, client: str) -> RequestTracer | None:
    """``client``'s tracer into ``histories``, if there are any."""
    return histories.tracer(client) if histories is not None else None
