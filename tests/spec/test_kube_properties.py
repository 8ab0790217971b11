"""Hypothesis properties of the kube object model over random request sequences.

A state machine sends random creates, updates, status updates, merge patches, deletes (with grace
periods, preconditions and propagation policies), compactions and reads to the model, and checks
after every step what the model promises: the invariants, a refused request or a read leaving the
very state it got, the revision moving by exactly the number of writes, uid and creationTimestamp
never changing, generation counting spec changes, the finalizer lifecycle, and Model.step agreeing
with apply. A separate rule cross-checks the two routes to old states, the history's roll-back
(lists at an exact resourceVersion) against the states recorded along the way, and a watch from
every retained revision replayed onto the list at that revision against the current list.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from raftkube_spec.kube import (
    Change,
    Compact,
    Create,
    Delete,
    EventType,
    Get,
    KubeError,
    KubeState,
    List,
    ListResponse,
    Model,
    Object,
    ObjectKey,
    Patch,
    Preconditions,
    PropagationPolicy,
    Request,
    ResourceVersionMatch,
    Result,
    Update,
    Watch,
    WatchResponse,
    apply,
    initial_state,
    invariants,
    selector,
)

T0 = 1_700_000_000
RESOURCES = ("pods", "configmaps")
KINDS = {"pods": "Pod", "configmaps": "ConfigMap"}
NAMESPACES = ("a", "a-b")
NAMES = ("x", "y")
FINALIZERS = ("f/1", "f/2")
GC_FINALIZERS = {"orphan", "foregroundDeletion"}

resources = st.sampled_from(RESOURCES)
namespaces = st.sampled_from(NAMESPACES)
names = st.sampled_from(NAMES)
label_sets = st.sampled_from(({}, {"app": "w"}, {"app": "v"}))
finalizer_sets = st.lists(st.sampled_from(FINALIZERS), unique=True, max_size=2)
specs = st.integers(0, 2)
graces = st.sampled_from((None, None, 0, 5, 30, -1))
policies = st.sampled_from((None, None, *PropagationPolicy))
rv_choices = st.sampled_from(("current", "current", "empty", "stale", "bogus"))


def keys() -> st.SearchStrategy[ObjectKey]:
    return st.builds(ObjectKey, resources, namespaces, names)


def body(
    key: ObjectKey, spec: int, labels: dict[str, str], finalizers: list[str]
) -> dict[str, Any]:
    content: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": KINDS[key.resource],
        "metadata": {"name": key.name, "labels": labels, "finalizers": finalizers},
        "spec": {"v": spec},
    }
    if key.resource == "pods":
        content["spec"].update(nodeName="n1", terminationGracePeriodSeconds=30)
    return content


def as_dict(state: KubeState, resource: str, revision: int | None = None) -> dict[str, Object]:
    """The objects of ``resource`` (by namespace/name), now or at an exact revision."""
    if revision is None:
        req = List(resource)
    else:
        req = List(resource, resource_version=str(revision), resource_version_match=EXACT)
    r = apply(state, req)[1]
    assert isinstance(r, ListResponse), r
    return {f"{o.metadata['namespace']}/{o.metadata['name']}": o for o in r.items}


EXACT = ResourceVersionMatch.EXACT


def spec_of(obj: Object) -> Any:
    return obj.to_dict().get("spec")


class KubeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = initial_state()
        self.now = T0
        self.uids = 0
        self.recorded: dict[int, KubeState] = {1: self.state}

    # -- one step and what every step must satisfy ---------------------------------------------

    def send(self, req: Request) -> Result:
        before = self.state
        after, result = apply(before, req)
        assert Model().step(before, req, result) == (True, after)
        if isinstance(result, KubeError) or isinstance(req, Get | List | Watch):
            assert after is before, (req, result)
        assert after.revision >= before.revision
        if not isinstance(req, Compact):
            self.check_writes(before, req, after)
        self.state = after
        self.recorded[after.revision] = after
        return result

    def check_writes(self, before: KubeState, req: Request, after: KubeState) -> None:
        new = after.changes[len(before.changes) :]
        assert after.changes[: len(before.changes)] == before.changes
        assert [c.revision for c in new] == list(range(before.revision + 1, after.revision + 1))
        # One write per request, except a pod whose grace period is over: marked, then removed.
        assert len(new) <= (2 if isinstance(req, Delete) and req.key.resource == "pods" else 1)
        for change in new:
            self.check_change(req, change)

    def check_change(self, req: Request, change: Change) -> None:
        old, new = change.before, change.after
        if old is None or new is None:
            if isinstance(req, Update | Patch) and new is None:
                # Only the update that removes an object's last finalizer deletes it.
                assert old is not None and "deletionTimestamp" in old.metadata
            return
        for field in ("uid", "creationTimestamp"):
            assert new.metadata[field] == old.metadata[field]
        old_gen, new_gen = old.metadata["generation"], new.metadata["generation"]
        marked = "deletionTimestamp" in new.metadata and "deletionTimestamp" not in old.metadata
        if isinstance(req, Delete):
            assert spec_of(new) == spec_of(old) and "deletionTimestamp" in new.metadata
            assert new_gen == old_gen + int(marked)
        else:
            assert new_gen == old_gen + int(spec_of(new) != spec_of(old))
        if "deletionTimestamp" in old.metadata:
            if isinstance(req, Update | Patch):
                assert new.metadata["deletionTimestamp"] == old.metadata["deletionTimestamp"]
                assert set(new.finalizers) <= set(old.finalizers)
            else:  # a delete may only add the propagation policy's finalizers
                assert set(new.finalizers) <= set(old.finalizers) | GC_FINALIZERS

    def pick_key(self, data: st.DataObject) -> ObjectKey:
        """Mostly a stored object's key, so that updates and deletes mostly find their object."""
        stored = [key for key, _ in self.state.objects]
        if stored and data.draw(st.integers(0, 4)) > 0:
            return data.draw(st.sampled_from(stored))
        return data.draw(keys())

    @invariant()
    def model_invariants_hold(self) -> None:
        assert invariants(self.state) == []

    # -- writes ---------------------------------------------------------------------------------

    @initialize(
        seeds=st.lists(st.tuples(keys(), specs, label_sets, finalizer_sets), min_size=1, max_size=4)
    )
    def seed(self, seeds: list[tuple[ObjectKey, int, dict[str, str], list[str]]]) -> None:
        for key, spec, labels, finalizers in seeds:
            self.create(key, spec, labels, finalizers)

    @rule(key=keys(), spec=specs, labels=label_sets, finalizers=finalizer_sets)
    def create(
        self, key: ObjectKey, spec: int, labels: dict[str, str], finalizers: list[str]
    ) -> None:
        self.uids += 1
        content = body(key, spec, labels, finalizers)
        req = Create(key.resource, key.namespace, Object.of(content), f"uid-{self.uids}", self.now)
        existed = self.state.get(key) is not None
        result = self.send(req)
        assert isinstance(result, KubeError) == existed

    @precondition(lambda self: self.state.objects)
    @rule(
        data=st.data(),
        spec=specs,
        labels=label_sets,
        finalizers=finalizer_sets,
        rv=rv_choices,
        status=st.booleans(),
    )
    def update(
        self,
        data: st.DataObject,
        spec: int,
        labels: dict[str, str],
        finalizers: list[str],
        rv: str,
        status: bool,
    ) -> None:
        key = self.pick_key(data)
        current = self.state.get(key)
        content = current.to_dict() if current is not None else body(key, 0, {}, [])
        content["spec"] = body(key, spec, labels, finalizers)["spec"]
        content["status"] = {"phase": f"p{spec}"}
        content["metadata"].update(labels=labels, finalizers=finalizers)
        wanted = {"current": content["metadata"].get("resourceVersion", ""), "empty": ""}
        content["metadata"]["resourceVersion"] = wanted.get(rv, "1" if rv == "stale" else "v")
        req = Update(key, Object.of(content), "status" if status else "")
        result = self.send(req)
        if current is None:
            assert isinstance(result, KubeError) and result.code == 404
        elif rv == "bogus":
            assert isinstance(result, KubeError) and result.code == 400

    @precondition(lambda self: self.state.objects)
    @rule(data=st.data(), spec=st.none() | specs, labels=st.none() | label_sets, drop=st.booleans())
    def patch(
        self, data: st.DataObject, spec: int | None, labels: dict[str, str] | None, drop: bool
    ) -> None:
        key = self.pick_key(data)
        document: dict[str, Any] = {"metadata": {}}
        if spec is not None:
            document["spec"] = {"v": spec}
        if labels is not None:
            document["metadata"]["labels"] = labels or None
        if drop:
            current = self.state.get(key)
            held = list(current.finalizers[1:]) if current is not None else []
            document["metadata"]["finalizers"] = held or None
        self.send(Patch.of(key, document))

    @precondition(lambda self: self.state.objects)
    @rule(
        data=st.data(),
        grace=graces,
        policy=policies,
        pre=st.sampled_from(("none", "uid", "rv", "stale")),
        wait=st.integers(0, 40),
    )
    def delete(
        self,
        data: st.DataObject,
        grace: int | None,
        policy: PropagationPolicy | None,
        pre: str,
        wait: int,
    ) -> None:
        self.now += wait
        key = self.pick_key(data)
        current = self.state.get(key)
        preconditions = Preconditions()
        if current is not None and pre == "uid":
            preconditions = Preconditions(uid=current.uid)
        elif current is not None and pre == "rv":
            preconditions = Preconditions(resource_version=current.resource_version)
        elif pre == "stale":
            preconditions = Preconditions(resource_version="1")
        self.send(Delete(key, self.now, grace, preconditions, policy))

    @precondition(lambda self: self.state.compact_revision < self.state.revision > 2)
    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        low = self.state.compact_revision + 1
        self.send(Compact(data.draw(st.integers(low, self.state.revision))))

    # -- reads and cross-checks -----------------------------------------------------------------

    @rule(resource=resources, ns=st.sampled_from(("", *NAMESPACES)), labels=label_sets)
    def reads_change_nothing(self, resource: str, ns: str, labels: dict[str, str]) -> None:
        chosen = selector(labels)
        self.send(List(resource, ns, chosen))
        self.send(List(resource, ns, chosen, resource_version="0", limit=1))
        self.send(Watch(resource, ns, chosen, resource_version=str(self.state.revision - 1)))
        self.send(Get(ObjectKey(resource, NAMESPACES[0], NAMES[0])))

    @rule(limit=st.integers(1, 3), ns=st.sampled_from(("", *NAMESPACES)))
    def cross_checks(self, limit: int, ns: str) -> None:
        self.old_lists_equal_the_states_recorded_then()
        self.watches_replay_onto_old_lists_to_the_current_list()
        self.pages_add_up_to_the_whole_list(limit, ns)

    def old_lists_equal_the_states_recorded_then(self) -> None:
        state = self.state
        for revision, then in self.recorded.items():
            for resource in RESOURCES:
                if revision >= max(state.compact_revision, 1):
                    assert as_dict(state, resource, revision) == as_dict(then, resource)
                elif state.compact_revision:
                    req = List(
                        resource, resource_version=str(revision), resource_version_match=EXACT
                    )
                    gone = apply(state, req)[1]
                    assert isinstance(gone, KubeError) and gone.code == 410

    def watches_replay_onto_old_lists_to_the_current_list(self) -> None:
        state = self.state
        oldest = max(state.compact_revision, 1)
        for resource in RESOURCES:
            now = as_dict(state, resource)
            for start in ("", *(str(r) for r in range(oldest, state.revision + 1))):
                base = {} if start == "" else as_dict(state, resource, int(start))
                r = apply(state, Watch(resource, resource_version=start))[1]
                assert isinstance(r, WatchResponse), r
                assert replayed(base, r) == now
                if start:  # every change after ``start``, each stamped with its own revision
                    revisions = [int(e.object.resource_version) for e in r.events]
                    assert revisions == sorted(set(revisions))
                    assert all(int(start) < rv <= state.revision for rv in revisions)
            if state.compact_revision > 2:  # "0" would mean "any", not a revision
                early = str(state.compact_revision - 2)
                r = apply(state, Watch(resource, resource_version=early))[1]
                assert isinstance(r, KubeError) and r.code == 410

    def pages_add_up_to_the_whole_list(self, limit: int, ns: str) -> None:
        for resource in RESOURCES:
            whole = apply(self.state, List(resource, ns))[1]
            assert isinstance(whole, ListResponse)
            items: list[Object] = []
            token = ""
            while True:
                page = apply(self.state, List(resource, ns, limit=limit, continue_token=token))[1]
                assert isinstance(page, ListResponse)
                assert page.resource_version == whole.resource_version
                items.extend(page.items)
                if page.remaining_item_count is not None:
                    assert page.remaining_item_count == len(whole.items) - len(items)
                token = page.continue_token
                if not token:
                    break
            assert tuple(items) == whole.items


def replayed(base: dict[str, Object], response: WatchResponse) -> dict[str, Object]:
    """``base`` with the watch's events applied, as an informer's store would."""
    store = dict(base)
    for event in response.events:
        meta = event.object.metadata
        name = f"{meta['namespace']}/{meta['name']}"
        if event.type is EventType.DELETED:
            del store[name]
        else:
            assert (name in store) == (event.type is EventType.MODIFIED)
            store[name] = event.object
    return store


KubeMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40)
test_kube_model_walk = KubeMachine.TestCase
