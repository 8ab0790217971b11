"""The API server against the object model, side by side, on random request sequences.

A Hypothesis state machine sends ConfigMap and Secret requests (create with and without
``generateName``, get, list with every ``resourceVersion``/``resourceVersionMatch``/``limit``/
``continue`` form, update with a current, stale or no resourceVersion, merge patch, delete with
uid and resourceVersion preconditions and every propagation policy, finalizers added and
removed, watches from a resourceVersion, store compaction and reads at compacted revisions) to
a real API server on a real store, applies the same request to the model of
``raftkube_spec.kube``, and requires the two answers to be equal: objects, codes, reasons,
messages, list order, continue tokens and every watch event, in the model's numbering
(``model_bridge`` says how the server's revisions, tokens and objects are read).

The model takes what a server decides for itself as inputs: the uid, the creation time and the
generated name of a create are read from the server's answer, and a delete's clock reading from
the deletionTimestamp the server set. Its stated simplification that every resource tracks
``generation`` is projected away for ConfigMaps and Secrets (upstream gives them none), and
where it is known to differ from upstream (``model_bridge.as_upstream``, naming the upstream
code) upstream's answer is expected.

Not generated: watches from ``""``/``"0"`` and gets at ``"0"`` (served from the watch cache,
which may lag behind the model's state), metadata upstream's validation refuses (both
``orphan`` and ``foregroundDeletion``; the model validates nothing), and pods and their grace
periods.

Driving it: the server lives in the test's Trio run for all examples (one start-up, about a
second, instead of one per example); Hypothesis runs in a worker thread and sends each request
into that run with ``trio.from_thread.run``, under a time bound. (``@given`` on a pytest-trio
test would not do: pytest-trio runs every example in a Trio run of its own, while the ``api``
fixture's server lives in the first one only.) Each example works in a
namespace of its own, so examples never see each other, and its first revision is the offset
between the two numberings. Watches stay open across steps: after every step each must have
delivered exactly the model's events so far; at the end a last object is created in each watched
resource so that an extra or duplicated event would show before it.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import attrs
import hypothesis.strategies as st
import pytest
import trio
from hypothesis import Phase, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from raftkube.apiserver.resources import ResourceInfo, lookup
from raftkube.kubeclient import KubeClient
from raftkube.kubeclient.client import resource_path
from raftkube.kubeclient.errors import KubeAPIError
from raftkube.kubeclient.watch import Watch as HTTPWatch
from raftkube_spec.kube import (
    Compact,
    CompactResponse,
    Create,
    Delete,
    Get,
    KubeError,
    KubeState,
    List,
    Object,
    ObjectKey,
    ObjectResponse,
    Patch,
    Preconditions,
    PropagationPolicy,
    Request,
    ResourceVersionMatch,
    Result,
    Selector,
    Update,
    Watch,
    WatchEvent,
    apply,
    initial_state,
    invariants,
)
from raftkube_spec.kube.timefmt import parse_rfc3339
from tests.helpers.api_server import APIHarness
from tests.helpers.model_bridge import (
    Numbering,
    Unexpected,
    as_upstream,
    expected_events,
    project,
    project_result,
)

T = TypeVar("T")

STEP_SECONDS = 10.0
"""The bound on one request (or one wait for watch events), far above what any takes."""
WATCH_WAIT_SECONDS = 2.0
"""How long a watch may take to deliver the events the model says it must have delivered."""
TEST_SECONDS = 600.0
"""The bound on the whole run."""

RESOURCES: dict[str, ResourceInfo] = {
    name: info for name in ("configmaps", "secrets") if (info := lookup("", "v1", name)) is not None
}
NAMESPACES = lookup("", "v1", "namespaces")
assert NAMESPACES is not None
KINDS = {"configmaps": "ConfigMap", "secrets": "Secret"}
NAMES = ("a", "b", "c")
GENERATE_BASE = "g-"
SENTINEL = "zz-end"
EXTRA_FINALIZERS = ("example.com/a", "example.com/b")
LABELS: tuple[dict[str, str], ...] = ({}, {"app": "a"}, {"app": "b"}, {"app": "a", "tier": "x"})
SELECTORS: tuple[Selector, ...] = ((), (("app", "a"),), (("tier", "x"),))
MAX_WATCHES = 3

resources = st.sampled_from(sorted(RESOURCES))
labels = st.sampled_from(LABELS)
finalizer_lists = st.sampled_from(
    # Never "orphan" with "foregroundDeletion": upstream's metadata validation refuses the
    # pair, and the model validates nothing.
    [[], [], ["example.com/a"], ["example.com/a", "example.com/b"], ["orphan"],
     ["example.com/b", "foregroundDeletion"]]
)  # fmt: skip


def content_for(resource: str, value: str) -> dict[str, Any]:
    """The body fields of a ConfigMap or Secret (a Secret's values in base64, its type
    spelled out so that the server's defaulting adds nothing the model does not have)."""
    if resource == "secrets":
        return {"type": "Opaque", "data": {"k": base64.b64encode(value.encode()).decode()}}
    return {"data": {"k": value}}


values = st.sampled_from(["x", "y", "zz"])


@attrs.define
class Portal:
    """Runs a coroutine function in the test's Trio run, from the Hypothesis thread, bounded
    in time: a hang fails the step instead of the whole run."""

    def __call__(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        async def bounded() -> T:
            with trio.fail_after(STEP_SECONDS):
                return await fn(*args)

        return trio.from_thread.run(bounded)


@attrs.define
class TrackedWatch:
    """An open watch and what it has delivered so far (in the model's numbering)."""

    resource: str
    request: Watch
    start: int
    stream: HTTPWatch
    refusal: KubeError | None
    """``apply``'s 410 for a watch from a compacted revision. Upstream's watch cache may serve
    it from its own window instead (``Model.step`` accepts both); the server's events are then
    compared with the uncompacted history, which says more than the model's state can."""
    delivered: list[WatchEvent | KubeError | Unexpected] = attrs.Factory(list)


_namespaces = itertools.count()


class ServerVersusModel(RuleBasedStateMachine):
    """One example: a namespace, the model from revision 1, the server from the offset."""

    def __init__(self, harness: APIHarness, portal: Portal) -> None:
        super().__init__()
        self.harness = harness
        self.portal = portal
        self.model: KubeState = initial_state()
        self.history: KubeState = initial_state()
        """The model without compactions: what a watch cache may still serve."""
        self.namespace = ""
        self.numbering = Numbering(0)
        self.seen: dict[ObjectKey, list[Object]] = {}
        """Every state of each object the server has answered with: stale versions to send."""
        self.created_at: dict[ObjectKey, int] = {}
        """The model revision of each object's latest creation. Objects are drawn in this
        order, never in store order: a generated name's random suffix decides where it sorts,
        and Hypothesis must get the same objects from the same choices when it replays."""
        self.continues: dict[str, str] = {}
        """Per resource, the model's continue token of the last list page that had one."""
        self.watches: list[TrackedWatch] = []
        self.diverged = False
        """Set by a failed comparison: the end-of-example check is then skipped (it would
        only wait for events that cannot come and slow the shrinking down)."""

    @property
    def client(self) -> KubeClient:
        return self.harness.admin

    # -- plumbing -------------------------------------------------------------------------

    @initialize()
    def open_namespace(self) -> None:
        self.namespace = f"model-{next(_namespaces)}"
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        self.portal(self.client.create, NAMESPACES, body)
        store = self.harness.running.api.services.store
        self.numbering = Numbering(self.portal(store.current_revision) - 1)

    def key(self, resource: str, name: str) -> ObjectKey:
        return ObjectKey(resource, self.namespace, name)

    def http(
        self,
        method: str,
        resource: str,
        name: str = "",
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> tuple[int, dict[str, Any]]:
        path = resource_path(RESOURCES[resource], namespace=self.namespace, name=name)
        send = functools.partial(
            self.client.request, method, path, query=query, body=body, content_type=content_type
        )
        code, _, data = self.portal(send)
        return code, json.loads(data) if data else {}

    def model_apply(self, request: Request) -> Result:
        """Apply ``request`` to the model (and, unless it is a compaction, to the history)."""
        self.model, expected = apply(self.model, request)
        if not isinstance(request, Compact):
            self.history, _ = apply(self.history, request)
        assert invariants(self.model) == []
        return expected

    def check(
        self,
        request: Request,
        resource: str,
        got: Result | Unexpected,
        expected: Result,
    ) -> None:
        key = getattr(request, "key", None)
        upstream = as_upstream(expected, key)
        want = project_result(upstream, resource)
        have = project_result(got, resource)
        self.diverged = have != want
        assert have == want, f"{request}\n server: {have}\n  model: {want}"
        self.remember(resource, have)

    def remember(self, resource: str, result: Result | Unexpected) -> None:
        objects: list[Object] = []
        if hasattr(result, "object"):
            objects.append(result.object)
        objects.extend(getattr(result, "items", ()))
        for obj in objects:
            name = str(obj.metadata.get("name", ""))
            versions = self.seen.setdefault(self.key(resource, name), [])
            if obj not in versions:
                versions.append(obj)

    def pick_name(self, data: st.DataObject, resource: str) -> str:
        """Mostly an object that exists (generated names included), sometimes one that may
        not."""
        existing = [
            key.name
            for key in self.in_creation_order(
                key for key, _ in self.model.objects if key.resource == resource
            )
        ]
        return data.draw(st.sampled_from([*existing, *existing, *existing, *NAMES]), label="name")

    def in_creation_order(self, keys: Iterable[ObjectKey]) -> list[ObjectKey]:
        return sorted(keys, key=lambda k: self.created_at[k])

    def current(self, resource: str, name: str) -> Object | None:
        return self.model.get(self.key(resource, name))

    # -- writes ---------------------------------------------------------------------------

    @rule(
        resource=resources,
        name=st.sampled_from([*NAMES, ""]),
        value=values,
        label_set=labels,
        finalizers=finalizer_lists,
        resource_version=st.sampled_from([""] * 8 + ["7", "0", "x"]),
    )
    def create(
        self,
        resource: str,
        name: str,
        value: str,
        label_set: dict[str, str],
        finalizers: list[str],
        resource_version: str = "",
    ) -> None:
        """``resource_version``: sent in the body as is (numbering does not matter here: the
        store refuses any non-zero number and ignores everything else)."""
        meta: dict[str, Any] = {"name": name} if name else {"generateName": GENERATE_BASE}
        if resource_version:
            meta["resourceVersion"] = resource_version
        if label_set:
            meta["labels"] = label_set
        if finalizers:
            meta["finalizers"] = finalizers
        body = {"apiVersion": "v1", "kind": KINDS[resource], "metadata": meta}
        body.update(content_for(resource, value))
        code, answer = self.http("POST", resource, body=body)
        got = self.numbering.object_answer(code, answer)
        uid, now, suffix = "", 0, ""
        if code == 201:
            got_meta = answer["metadata"]
            uid = got_meta["uid"]
            now = parse_rfc3339(got_meta["creationTimestamp"])
            if not name:
                suffix = got_meta["name"][len(GENERATE_BASE) :]
        request = Create(resource, self.namespace, Object.of(body), uid, now, suffix)
        expected = self.model_apply(request)
        if isinstance(expected, ObjectResponse):
            name = str(expected.object.metadata["name"])
            self.created_at[self.key(resource, name)] = self.model.revision
        self.check(request, resource, got, expected)

    def base_object(self, data: st.DataObject, resource: str, name: str) -> Object | None:
        """What an update starts from: mostly the current object, often a stale version of
        it (any state the server answered with before), sometimes nothing."""
        current = self.current(resource, name)
        stale = self.stale_versions(self.key(resource, name))
        choices: list[Object | None] = [None]
        if current is not None:
            choices += [current, current, current]
        if stale:
            choices += [stale[-1], stale[-1], stale[0]]
        return data.draw(st.sampled_from(choices), label="base")

    @rule(
        data=st.data(),
        resource=resources,
        value=values,
        label_set=labels,
        rv=st.sampled_from(["base", "base", "none"]),
        finalizer_edit=st.sampled_from(["keep", "keep", "drop-one", "add", "clear"]),
        wrong_uid=st.sampled_from([False] * 9 + [True]),
    )
    def update(
        self,
        data: st.DataObject,
        resource: str,
        value: str,
        label_set: dict[str, str],
        rv: str,
        finalizer_edit: str,
        wrong_uid: bool,
    ) -> None:
        name = self.pick_name(data, resource)
        base = self.base_object(data, resource, name)
        self.put(resource, name, base, value, label_set, rv == "base", finalizer_edit, wrong_uid)

    def has_stale_versions(self) -> bool:
        return any(self.stale_versions(key) for key in self.seen)

    def stale_versions(self, key: ObjectKey) -> list[Object]:
        """Versions of ``key`` the server answered with that are no longer current (judged by
        resourceVersion: ``seen`` holds the compared, projected objects)."""
        current = self.model.get(key)
        if current is None:
            return []
        return [v for v in self.seen.get(key, []) if v.resource_version != current.resource_version]

    @precondition(has_stale_versions)
    @rule(data=st.data(), value=values, label_set=labels)
    def update_from_stale_version(
        self, data: st.DataObject, value: str, label_set: dict[str, str]
    ) -> None:
        """Optimistic concurrency: an update computed from a version that is no longer the
        current one must be refused (the general rule reaches this case too rarely)."""
        stale = self.in_creation_order(k for k in self.seen if self.stale_versions(k))
        key = data.draw(st.sampled_from(stale))
        base = data.draw(st.sampled_from(self.stale_versions(key)), label="stale base")
        self.put(key.resource, key.name, base, value, label_set, True, "keep", False)

    def put(
        self,
        resource: str,
        name: str,
        base: Object | None,
        value: str,
        label_set: dict[str, str],
        keep_rv: bool,
        finalizer_edit: str,
        wrong_uid: bool,
    ) -> None:
        if base is None:
            content: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": KINDS[resource],
                "metadata": {"name": name, "namespace": self.namespace},
            }
        else:
            content = base.to_dict()
        content.update(content_for(resource, value))
        meta = content["metadata"]
        if label_set:
            meta["labels"] = label_set
        else:
            meta.pop("labels", None)
        meta["finalizers"] = edit_finalizers(list(meta.get("finalizers", ())), finalizer_edit)
        if not keep_rv:
            meta.pop("resourceVersion", None)
        if wrong_uid:
            meta["uid"] = "00000000-0000-4000-8000-000000000000"
        model_object = Object.of(content)
        server_body = self.numbering.object_to_server(model_object)
        code, answer = self.http("PUT", resource, name, body=server_body)
        request = Update(self.key(resource, name), model_object)
        got = self.numbering.object_answer(code, answer)
        self.check(request, resource, got, self.model_apply(request))

    @rule(
        data=st.data(),
        resource=resources,
        value=st.one_of(st.none(), values),
        label_set=st.one_of(st.none(), labels),
        finalizers=st.one_of(st.none(), finalizer_lists),
        rv=st.sampled_from(["none", "none", "current", "stale"]),
    )
    def merge_patch(
        self,
        data: st.DataObject,
        resource: str,
        value: str | None,
        label_set: dict[str, str] | None,
        finalizers: list[str] | None,
        rv: str,
    ) -> None:
        name = self.pick_name(data, resource)
        document: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        if value is not None:
            document.update(content_for(resource, value))
        if label_set is not None:
            meta["labels"] = label_set or None
        if finalizers is not None:
            meta["finalizers"] = finalizers or None
        current = self.current(resource, name)
        if rv != "none" and current is not None:
            revision = int(current.resource_version)
            meta["resourceVersion"] = str(revision if rv == "current" else revision - 1)
        if meta:
            document["metadata"] = meta
        server_document = json.loads(json.dumps(document))
        if "resourceVersion" in meta:
            server_rv = self.numbering.rv_to_server(meta["resourceVersion"])
            server_document["metadata"]["resourceVersion"] = server_rv
        code, answer = self.http(
            "PATCH",
            resource,
            name,
            body=server_document,
            content_type="application/merge-patch+json",
        )
        request = Patch.of(self.key(resource, name), document)
        got = self.numbering.object_answer(code, answer)
        self.check(request, resource, got, self.model_apply(request))

    @rule(
        data=st.data(),
        resource=resources,
        uid=st.sampled_from(["none", "none", "right", "wrong"]),
        rv=st.sampled_from(["none", "none", "right", "stale"]),
        policy=st.sampled_from([None, None, *PropagationPolicy]),
    )
    def delete(
        self,
        data: st.DataObject,
        resource: str,
        uid: str,
        rv: str,
        policy: PropagationPolicy | None,
    ) -> None:
        name = self.pick_name(data, resource)
        current = self.current(resource, name)
        pre = Preconditions()
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        server_pre: dict[str, str] = {}
        if uid != "none":
            pre = attrs.evolve(pre, uid=current.uid if current and uid == "right" else "u-wrong")
            server_pre["uid"] = str(pre.uid)
        if rv != "none" and current is not None:
            revision = int(current.resource_version) - (rv == "stale")
            pre = attrs.evolve(pre, resource_version=str(revision))
            server_pre["resourceVersion"] = self.numbering.rv_to_server(str(revision))
        if server_pre:
            options["preconditions"] = server_pre
        if policy is not None:
            options["propagationPolicy"] = policy.value
        code, answer = self.http("DELETE", resource, name, body=options)
        after, _ = self.http("GET", resource, name)
        got = self.numbering.delete_answer(code, answer, gone=after == 404)
        now = int(time.time())
        stamped = (answer.get("metadata") or {}).get("deletionTimestamp") if code == 200 else None
        if stamped and current is not None and "deletionTimestamp" not in current.metadata:
            now = parse_rfc3339(stamped)
        request = Delete(
            self.key(resource, name), now, preconditions=pre, propagation_policy=policy
        )
        expected = self.model_apply(request)
        if not isinstance(expected, KubeError):
            # Upstream answers 202 only to a delete that sets orphanDependents=false and does
            # not remove the object at once (DeleteResource in endpoints/handlers/delete.go).
            assert code == 200, (request, code, answer)
        self.check(request, resource, got, expected)

    # -- reads ----------------------------------------------------------------------------

    @rule(data=st.data(), resource=resources)
    def get(self, data: st.DataObject, resource: str) -> None:
        name = self.pick_name(data, resource)
        code, answer = self.http("GET", resource, name)
        request = Get(self.key(resource, name))
        self.check(request, resource, self.numbering.object_answer(code, answer),
                   self.model_apply(request))  # fmt: skip

    @rule(
        data=st.data(),
        resource=resources,
        selector=st.sampled_from(SELECTORS),
        limit=st.sampled_from([0, 0, 1, 2]),
        match=st.sampled_from([None, None, *ResourceVersionMatch]),
        resume=st.sampled_from([False, False, True]),
    )
    def list_objects(
        self,
        data: st.DataObject,
        resource: str,
        selector: Selector,
        limit: int,
        match: ResourceVersionMatch | None,
        resume: bool,
    ) -> None:
        rev = self.model.revision
        rv = data.draw(
            st.one_of(
                st.sampled_from(["", "0"]),
                st.integers(max(1, self.model.compact_revision - 1), rev + 1).map(str),
            ),
            label="resourceVersion",
        )
        token = self.continues.get(resource, "") if resume else ""
        if token:
            rv = data.draw(st.sampled_from(["", "0", rv]), label="resourceVersion with continue")
        query: dict[str, str] = {}
        if selector:
            query["labelSelector"] = ",".join(f"{k}={v}" for k, v in selector)
        if limit:
            query["limit"] = str(limit)
        if match is not None:
            query["resourceVersionMatch"] = match.value
        if rv:
            query["resourceVersion"] = self.numbering.rv_to_server(rv)
        if token:
            query["continue"] = self.numbering.token_to_server(token)
        code, answer = self.http("GET", resource, query=query)
        request = List(
            resource,
            self.namespace,
            label_selector=selector,
            resource_version=rv,
            resource_version_match=match,
            limit=limit,
            continue_token=token,
        )
        got = self.numbering.list_answer(code, answer)
        self.check(request, resource, got, self.model_apply(request))
        next_token = getattr(got, "continue_token", "")
        if next_token:
            self.continues[resource] = next_token

    # -- compaction and watches -----------------------------------------------------------

    @precondition(lambda self: self.model.revision > max(self.model.compact_revision, 1))
    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        low = max(self.model.compact_revision + 1, 2)
        revision = data.draw(st.integers(low, self.model.revision), label="compact at")
        store = self.harness.running.api.services.store.client
        self.portal(store.compact, self.numbering.to_server(revision))
        got = CompactResponse(revision)
        request = Compact(revision)
        expected = self.model_apply(request)
        assert got == expected, (request, got, expected)

    @precondition(lambda self: len(self.watches) < MAX_WATCHES)
    @rule(data=st.data(), resource=resources, selector=st.sampled_from(SELECTORS))
    def watch(self, data: st.DataObject, resource: str, selector: Selector) -> None:
        start = data.draw(st.integers(1, self.model.revision), label="watch from")
        request = Watch(resource, self.namespace, selector, str(start))
        expected = self.model_apply(request)
        query = {"labelSelector": ",".join(f"{k}={v}" for k, v in selector)} if selector else {}
        stream = self.client.watch(
            RESOURCES[resource],
            namespace=self.namespace,
            resource_version=self.numbering.rv_to_server(str(start)),
            query=query,
        )
        refusal = expected if isinstance(expected, KubeError) else None
        tracked = TrackedWatch(resource, request, start, stream, refusal)
        self.watches.append(tracked)
        try:
            self.portal(stream.start)
        except KubeAPIError as exc:
            tracked.delivered.append(self.numbering.error(exc.code, exc.status))

    def read_events(self, tracked: TrackedWatch, count: int) -> None:
        """Read from ``tracked`` until it has delivered ``count`` events (or an error)."""

        async def read() -> None:
            # A missing event shows as a difference in the comparison that follows.
            with trio.move_on_after(WATCH_WAIT_SECONDS):
                await read_until_count()

        async def read_until_count() -> None:
            while len(tracked.delivered) < count:
                if tracked.delivered and not isinstance(tracked.delivered[-1], WatchEvent):
                    return
                event = await anext(tracked.stream, None)
                if event is None:
                    return
                tracked.delivered.append(self.numbering.event(*event))

        self.portal(read)

    @invariant()
    def watches_deliver_the_history(self) -> None:
        for tracked in list(self.watches):
            want = expected_events(self.history, tracked.request, tracked.start)
            if len(tracked.delivered) < len(want):
                self.read_events(tracked, len(want))
            if tracked.refusal is not None and tracked.delivered[:1] == [tracked.refusal]:
                # Refused as the model says (the stream ends with the error).
                self.watches.remove(tracked)
                self.portal(tracked.stream.aclose)
                continue
            have = [project_result_event(e, tracked.resource) for e in tracked.delivered]
            want_p = [project_result_event(e, tracked.resource) for e in want]
            self.diverged = have != want_p
            assert have == want_p, f"watch {tracked.request}:\n server: {have}\n  model: {want_p}"

    def teardown(self) -> None:
        try:
            if self.watches and self.namespace and not self.diverged:
                for resource in sorted({t.resource for t in self.watches}):
                    self.create(resource, SENTINEL, "end", dict(LABELS[-1]), [])
                self.watches_deliver_the_history()
        finally:
            for tracked in self.watches:
                self.portal(tracked.stream.aclose)
            self.watches.clear()


def project_result_event(
    event: WatchEvent | KubeError | Unexpected, resource: str
) -> WatchEvent | KubeError | Unexpected:
    if isinstance(event, WatchEvent):
        return WatchEvent(event.type, project(event.object, resource))
    return event


def edit_finalizers(finalizers: list[str], edit: str) -> list[str]:
    if edit == "drop-one":
        return finalizers[1:]
    if edit == "add":
        extra = [f for f in EXTRA_FINALIZERS if f not in finalizers][:1]
        return finalizers + extra
    if edit == "clear":
        return []
    return finalizers


@pytest.mark.trio
async def test_api_server_agrees_with_the_object_model(quiet_api: APIHarness) -> None:
    """Each example numbers the resourceVersions it expects from its own writes, so the server
    must write nothing else meanwhile (``quiet_api``: no identity Lease renewals)."""
    api = quiet_api
    portal = Portal()
    config = settings(
        max_examples=40,
        stateful_step_count=40,
        # Tracing every line for the explain phase would multiply the time of a failing
        # run; the shrunk steps already say what happened.
        phases=[p for p in Phase if p is not Phase.explain],
    )
    with trio.fail_after(TEST_SECONDS):
        await trio.to_thread.run_sync(
            lambda: run_state_machine_as_test(
                lambda: ServerVersusModel(api, portal), settings=config
            )
        )


@pytest.mark.trio
async def test_a_create_carrying_a_resource_version_is_refused_as_upstream(
    api: APIHarness,
) -> None:
    """The etcd3 store's ``Create`` refuses a non-zero resourceVersion with a plain error, which
    reaches the client as a 500 with no reason; other values it clears and ignores. The model
    says the same (``tests/spec/test_kube_model.py``)."""
    path = resource_path(RESOURCES["configmaps"], namespace="default")

    def body(name: str, resource_version: str) -> dict[str, Any]:
        meta = {"name": name, "resourceVersion": resource_version}
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}

    with trio.fail_after(STEP_SECONDS):
        code, _, data = await api.admin.request("POST", path, body=body("rv-set", "5"))
        status = json.loads(data)
        assert code == 500 and status["code"] == 500, status
        assert "reason" not in status, "Status.reason is omitempty upstream"
        assert status["message"] == "resourceVersion should not be set on objects to be created"
        code, _, _ = await api.admin.request("GET", f"{path}/rv-set")
        assert code == 404
        # Refused before the store looks for the key: an existing name is not a 409.
        code, _, _ = await api.admin.request("POST", path, body=body("rv-taken", ""))
        assert code == 201
        code, _, _ = await api.admin.request("POST", path, body=body("rv-taken", "5"))
        assert code == 500
        for name, ignored in (("rv-zero", "0"), ("rv-junk", "x")):
            code, _, data = await api.admin.request("POST", path, body=body(name, ignored))
            assert code == 201, data
            assert json.loads(data)["metadata"]["resourceVersion"] not in ("0", "x")
