"""Every mutant's patch is live (a small deterministic scenario behaves differently with it),
fully undone on exit (the scenario behaves as before, the original attribute is back), and
still the original code but for its planted lines: a replacement is a copy of a method, so the
copy must not silently drift from what it mutates."""

from __future__ import annotations

import ast
import difflib
import inspect
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import trio.testing

from raftkube.controllers import endpoints as endpoints_module
from raftkube.controllers.replicaset import ReplicaSetController
from raftkube.kubelet.events import PodEvents
from raftkube.kubelet.kubelet import Kubelet
from raftkube.kubelet.podworker import POD_UID, PodWorker
from raftkube.mvcc import MvccStore, WatchHub
from raftkube.raft import HardState, NodeConfig, RaftNode, RejectedError
from raftkube.runtime.interface import (
    ContainerState,
    PodSandboxConfig,
    PodSandboxStatus,
    SandboxState,
)
from raftkube.scheduler.cache import SchedulerCache
from raftkube.scheduler.nodeinfo import PodInfo
from raftkube.server.leases import LeaseExpiry
from raftkube.server.outcomes import MemberError
from raftkube.server.reads import ReadQueue
from raftkube_fuzz.mutants import MUTANTS, Mutant
from raftkube_spec.kv.requests import (
    CompactionRequest,
    LeaseGrantRequest,
    PutRequest,
    RangeRequest,
)
from raftkube_spec.kv.watch import WatchCompacted
from raftkube_spec.raft.messages import (
    AppendEntriesRequest,
    AppendEntriesResponse,
    RequestVoteRequest,
    RequestVoteResponse,
)
from raftkube_spec.raft.types import Entry, Role
from tests.helpers.mutant_scenarios import Scenario, check_scenario

# --- scenarios: each returns what the mutant changes ---------------------------------------------


def _elected(node: RaftNode) -> RaftNode:
    """Make ``node`` (server 0 of 3, no pre-vote) time out and win with server 1's vote."""
    while node.role is not Role.CANDIDATE:
        node.tick()
    node.step(RequestVoteResponse(term=node.term, source=1, dest=0, granted=True))
    assert node.is_leader
    return node


def old_term_commit() -> int:
    """A new leader whose only quorum-held entry is from term 1: committable only by count."""
    node = RaftNode(NodeConfig(node_id=0), hard_state=HardState(term=1), entries=(Entry(1, b"a"),))
    _elected(node)
    node.step(AppendEntriesResponse(term=node.term, source=1, dest=0, success=True, match_index=1))
    return node.commit


def unsynced_vote() -> bool:
    """Whether a Ready carrying only a new vote must be synced before its messages leave."""
    node = RaftNode(NodeConfig(node_id=1))
    node.step(RequestVoteRequest(term=1, source=0, dest=1, last_log_term=0, last_log_index=0))
    rd = node.ready()
    assert rd.hard_state == HardState(term=1, vote=0) and not rd.entries and rd.messages
    return rd.must_sync


def conflicting_append() -> tuple[Entry, ...]:
    """A follower holding a term-1 entry where the term-2 leader has another."""
    node = RaftNode(
        NodeConfig(node_id=1),
        hard_state=HardState(term=2),
        entries=(Entry(1, b"a"), Entry(1, b"b")),
    )
    node.step(
        AppendEntriesRequest(
            term=2,
            source=0,
            dest=1,
            prev_log_index=1,
            prev_log_term=1,
            entries=(Entry(2, b"c"),),
            commit_index=0,
        )
    )
    return node.log.as_entries()


def unacknowledged_commit() -> int:
    """A pipelining leader that has sent its no-op, then a proposal, with no acknowledgement."""
    node = _elected(RaftNode(NodeConfig(node_id=0, pipelining=True)))
    node.propose(b"x")
    return node.commit


def stale_term_append() -> tuple[tuple[Entry, ...], bool]:
    """A term-3 follower receiving a term-2 leader's entry; its log and its answer."""
    node = RaftNode(NodeConfig(node_id=1), hard_state=HardState(term=3))
    node.step(
        AppendEntriesRequest(
            term=2,
            source=0,
            dest=1,
            prev_log_index=0,
            prev_log_term=0,
            entries=(Entry(2, b"x"),),
            commit_index=0,
        )
    )
    (answer,) = node.ready().messages
    assert isinstance(answer, AppendEntriesResponse)
    return node.log.as_entries(), answer.success


def change_before_own_term_commit() -> str:
    """A leader just elected (its empty entry not yet committed) asked to add a learner."""
    node = _elected(RaftNode(NodeConfig(node_id=0, servers=4, membership=True, spares=1)))
    try:
        node.add_member(3, learner=True)
    except RejectedError:
        return "refused"
    return "appended"


def follower_barrier() -> str:
    """What a follower's linearizable barrier does: refuse, or serve at once."""
    reads: Any = SimpleNamespace(
        _member=SimpleNamespace(
            disk_fault=None, stopped=False, node=SimpleNamespace(is_leader=False, leader=None)
        )
    )
    try:
        trio.run(ReadQueue.barrier, reads)
    except MemberError as exc:
        return exc.code
    return "served"


def lease_ticks() -> int:
    return NodeConfig(node_id=0, election_timeout=10, max_clock_drift=0.1).lease_ticks


def watch_from_compacted() -> object:
    """A watch from revision 1 after compaction at 3: compacted notice, or events."""
    store = MvccStore()
    for k in range(4):
        store.apply(PutRequest(b"k", b"v%d" % k))
    store.apply(CompactionRequest(3))
    hub = WatchHub(store)
    taken = hub.take(hub.watch(b"k", start_revision=1))
    if isinstance(taken, WatchCompacted):
        return taken
    return tuple(e.kv.mod_revision for e in taken)


def follower_lease_loop() -> int:
    """Keys left on a follower whose clock says its lease expired (one loop iteration)."""
    store = MvccStore()
    store.apply(LeaseGrantRequest(7, 1, 0))
    store.apply(PutRequest(b"k", b"v", lease=7))

    class OneShotClock:
        def __init__(self) -> None:
            self.sleeps = 0

        def now(self) -> float:
            return 100.0

        async def sleep_until(self, deadline: float) -> None:
            self.sleeps += 1
            if self.sleeps > 1:
                await trio.sleep_forever()

    member: Any = SimpleNamespace(
        clock=OneShotClock(),
        config=SimpleNamespace(lease_check_interval=0.5),
        node=SimpleNamespace(is_leader=False),
        mvcc=store,
        now_ms=lambda: 100_000,
    )
    expiry: Any = SimpleNamespace(_member=member, _revoking=set())

    async def one_iteration() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(LeaseExpiry.run, expiry)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()

    trio.run(one_iteration)
    return store.apply(RangeRequest(b"k")).count  # type: ignore[union-attr]


def retried_session_write() -> int:
    """The revision after a session's write is committed twice (a retry): applied once."""
    store = MvccStore()
    store.register_client(1)
    for _ in range(2):
        store.apply_for_client(PutRequest(b"k", b"v"), client_id=1, sequence=1, lowest_unacked=1)
    return store.revision


def rs_sync_before_creations_observed() -> int:
    """A ReplicaSet synced while its earlier creations are not yet in the pod cache: how often
    it manages replicas (creates or deletes pods)."""
    calls: list[int] = []
    owner = {"metadata": {"name": "rs", "namespace": "default"}, "spec": {"replicas": 2}}

    async def claim_pods(owner: Any, pods: list[Any]) -> list[Any]:
        return pods

    async def manage_replicas(owner: Any, pods: list[Any]) -> None:
        calls.append(1)

    async def update_status(owner: Any, status: Any) -> Any:
        return owner

    controller: Any = SimpleNamespace(
        owners=SimpleNamespace(get=lambda name, namespace: owner),
        expectations=SimpleNamespace(satisfied=lambda key: False),
        pods=SimpleNamespace(list=lambda namespace: []),
        claim_pods=claim_pods,
        manage_replicas=manage_replicas,
        update_status=update_status,
        wall=lambda: 0.0,
    )
    trio.run(ReplicaSetController.sync, controller, "default/rs")
    return len(calls)


def endpoints_of_an_unready_pod() -> list[Any]:
    """A Service's subsets for a Running pod with an IP that is not Ready yet."""
    service = {"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    pod = {
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"}},
        "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": [
            {"type": "Ready", "status": "False"}]},
    }  # fmt: skip
    return [sorted(s) for s in endpoints_module.desired_subsets(service, [pod])]


def room_after_an_assumption() -> int:
    """The cpu (millicores) a 4-cpu node still offers after a 1500m pod was assumed on it."""
    cache = SchedulerCache()
    cache.add_node({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "4"}}})
    pod = {
        "metadata": {"name": "p", "namespace": "default", "uid": "u"},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1500m"}}}]},
    }
    cache.assume_pod(PodInfo.of(pod), "n")
    (info,) = cache.node_infos()
    return info.allocatable.milli_cpu - info.requested.milli_cpu


def admission_on_a_full_node() -> str:
    """What a kubelet running a 3-cpu pod on a 4-cpu node does with a 1500m pod bound to it."""

    def pod(uid: str, cpu: str) -> dict[str, Any]:
        return {
            "metadata": {"uid": uid, "name": uid, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]},
            "status": {"phase": "Running"},
        }

    outcome: list[str] = []

    async def has(uid: str) -> bool:
        return False

    async def reject(p: Any, reason: str, message: str) -> None:
        outcome.append(reason)

    kubelet: Any = SimpleNamespace(
        workers={"a": SimpleNamespace(pod=pod("a", "3"), finished=False)},
        config=SimpleNamespace(capacity=lambda: {"cpu": "4", "memory": "8Gi", "pods": "110"}),
        _has=has,
        _reject=reject,
        _start=lambda nursery, node, p: outcome.append("started"),
    )
    trio.run(Kubelet._handle, kubelet, None, None, pod("b", "1500m"), False)
    return outcome[0]


def final_delete_order() -> list[str]:
    """What a pod worker terminating a pod with one running container does, in order."""
    calls: list[str] = []
    config = PodSandboxConfig("p", "default", "u1", labels={POD_UID: "u1"})
    sandbox = PodSandboxStatus("s1", config, SandboxState.READY, "10.0.0.2", 0.0)
    running = SimpleNamespace(id="c1", name="app", state=ContainerState.RUNNING)

    async def note(what: str, *args: object, **kwargs: object) -> Any:
        calls.append(what)
        return {"list_containers": [running], "list_pod_sandboxes": [sandbox]}.get(what)

    def recorder(what: str) -> Callable[..., Any]:
        return lambda *args, **kwargs: note(what, *args, **kwargs)

    async def sandbox_of() -> PodSandboxStatus:
        return sandbox

    runtime = SimpleNamespace(**{name: recorder(name) for name in (
        "list_containers", "stop_container", "stop_pod_sandbox", "list_pod_sandboxes",
        "remove_pod_sandbox")})  # fmt: skip
    worker: Any = SimpleNamespace(
        gone=False,
        uid="u1",
        pod={"metadata": {"name": "p", "namespace": "default", "uid": "u1"}, "spec": {}},
        node=SimpleNamespace(
            runtime=runtime,
            client=SimpleNamespace(delete=recorder("delete")),
            volume_root=None,
            backoff=SimpleNamespace(forget=lambda key: None),
            events=PodEvents.silent(),
        ),
        _sandbox=sandbox_of,
        _grace=lambda: 30.0,
        _containers=recorder("containers"),
        _write_status=recorder("write_status"),
    )
    trio.run(PodWorker._terminate, worker)
    return [c for c in calls if c in ("stop_container", "delete")]


SCENARIOS: dict[str, Scenario] = {
    "commit-old-term-by-count": (old_term_commit, 0, 1),
    "unsynced-vote": (unsynced_vote, True, False),
    "no-conflict-truncation": (
        conflicting_append,
        (Entry(1, b"a"), Entry(2, b"c")),
        (Entry(1, b"a"), Entry(1, b"b")),
    ),
    "commit-beyond-match": (unacknowledged_commit, 0, 1),
    "accept-stale-term-append": (stale_term_append, ((), False), ((Entry(2, b"x"),), True)),
    "config-change-before-own-term-commit": (change_before_own_term_commit, "refused", "appended"),
    "lease-read-ignores-drift": (lease_ticks, 7, 10),
    "local-read-no-readindex": (follower_barrier, "not_leader", "served"),
    "watch-skips-compacted-event": (watch_from_compacted, WatchCompacted(3), (3, 4, 5)),
    "follower-expires-leases": (follower_lease_loop, 1, 0),
    "session-retry-applied-twice": (retried_session_write, 2, 3),
    "rs-no-expectations": (rs_sync_before_creations_observed, 0, 1),
    "endpoints-include-unready": (
        endpoints_of_an_unready_pod,
        [["notReadyAddresses", "ports"]],
        [["addresses", "ports"]],
    ),
    "scheduler-ignores-assumed": (room_after_an_assumption, 2500, 4000),
    "kubelet-skips-admission": (admission_on_a_full_node, "OutOfcpu", "started"),
    "kubelet-deletes-before-stopping": (
        final_delete_order,
        ["stop_container", "delete"],
        ["delete", "stop_container"],
    ),
}


def test_the_registry() -> None:
    assert set(SCENARIOS) <= set(MUTANTS)
    for name, m in MUTANTS.items():
        assert isinstance(m, Mutant) and m.name == name
        assert m.description and "\n" not in m.description
        assert m.suite in ("raft", "kv", "cluster")
    assert [n for n, m in MUTANTS.items() if m.needs_clock_faults] == [
        "lease-read-ignores-drift",
        "lease-judged-by-remote-clock",
    ]


def test_every_mutant_has_a_behaviour_scenario() -> None:
    """Each mutant's patch is shown to change behaviour (and to be undone) by a scenario in a
    ``SCENARIOS`` table of this file or of a sibling ``test_mutants_*.py`` (one per module of
    the catalogue); this test finds the scenario's entry by the mutant's quoted name."""
    here = Path(__file__).parent
    tables = "".join(p.read_text() for p in sorted(here.glob("test_mutants*.py")))
    missing = [name for name in MUTANTS if f'    "{name}": (' not in tables]
    assert not missing, f"mutants without a behaviour scenario: {missing}"


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_patch_changes_behavior_and_is_undone(name: str) -> None:
    check_scenario(name, SCENARIOS[name])


MARKER = "# MUTANT:"


def _body(fn: Callable[..., object]) -> tuple[list[str], list[int]]:
    """``fn``'s body as code lines (no docstring, comment or blank lines, inline comments cut,
    dedented), and where its ``# MUTANT:`` markers are: the index of the code line a marker is
    on or stands right before (the number of lines for one after the last)."""
    source = textwrap.dedent(inspect.getsource(fn))
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    lines = source.splitlines()
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        start = first.end_lineno or first.lineno
    else:
        start = first.lineno - 1
        while lines[start - 1].strip().startswith("#"):
            start -= 1
    code: list[str] = []
    markers: list[int] = []
    for line in textwrap.dedent("\n".join(lines[start:])).splitlines():
        if MARKER in line:
            markers.append(len(code))
        if line.strip() and not line.strip().startswith("#"):
            code.append(re.sub(r"\s+#[^\"']*$", "", line.rstrip()))
    return code, markers


@pytest.mark.parametrize("name", list(MUTANTS))
def test_the_patch_differs_from_the_original_only_where_marked(name: str) -> None:
    """Every difference between the original and its replacement touches a ``# MUTANT:``
    marker; a change to the original anywhere else makes this fail until the copy follows."""
    owner, attribute = MUTANTS[name].patch.owner, MUTANTS[name].patch.attribute
    original = owner.__dict__[attribute]
    with MUTANTS[name].patch():
        replacement = owner.__dict__[attribute]
    if isinstance(original, property):
        original, replacement = original.fget, replacement.fget
    if isinstance(original, dict):
        # A table of handlers (looked up at call time): one entry swapped, the rest the same.
        assert replacement.keys() == original.keys(), f"{name}: the table's keys changed"
        swapped = [key for key in original if replacement[key] is not original[key]]
        assert len(swapped) == 1, f"{name}: {len(swapped)} entries swapped, not one"
        original, replacement = original[swapped[0]], replacement[swapped[0]]
    before, _ = _body(original)
    after, markers = _body(replacement)
    assert markers, f"{name}: no {MARKER} line in the replacement"
    changes = [
        op
        for op in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes()
        if op[0] != "equal"
    ]
    assert changes, f"{name}: the replacement is the original"
    for _, i1, i2, j1, j2 in changes:
        assert any(j1 <= m <= j2 for m in markers), (
            f"{name}: an unmarked difference from the original:\n"
            + "\n".join(f"- {line}" for line in before[i1:i2])
            + "\n"
            + "\n".join(f"+ {line}" for line in after[j1:j2])
        )


def test_the_patch_is_undone_on_error() -> None:
    with pytest.raises(RuntimeError), MUTANTS["commit-beyond-match"].patch():
        raise RuntimeError("a failing run")
    assert unacknowledged_commit() == 0
