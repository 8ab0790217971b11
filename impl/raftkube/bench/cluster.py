"""``raftkube bench cluster``: a whole cluster at kwok's scale, timed as kwok's CI times it:
how long until ``--sim-nodes`` simulated nodes are Ready, how long until a ReplicaSet of
``--pods`` pods is all Running, and how long until they are all gone once it is deleted.

Without ``--kubeconfig`` the run starts what ``raftkube up --nodes 0 --sim-nodes M`` starts,
each its own process as there (3 store members, fsync on, the API server, the controller
manager and the scheduler, without leader election since each is the only one, and one
``sim-nodes`` process serving every simulated node), in a temporary directory (or
``--data-dir``, kept for its logs), and stops it all afterwards.
Starting its own cluster is the default because the first figure needs it: the nodes are
timed from the moment the ``sim-nodes`` process is started, which only a run that starts it
can see. With ``--kubeconfig`` the run attaches to a running cluster (``raftkube up
--sim-nodes M``, whose own controller manager, scheduler and simulated nodes do the work); the
nodes figure is then only the time until the run saw ``--sim-nodes`` of them Ready.

The pods are scheduler_perf's pause pods with no resource requests, pinned to simulated nodes
by :data:`~raftkube.kubelet.simnodes.SIM_NODE_LABEL` (a real node of the cluster would try to
run the pause image), in a namespace of the run's own. Every figure is read from watches
(one informer on the nodes, one on the namespace's pods): a pod counts as created when it is
first seen, scheduled when it is first seen with a node, Running when it is seen in phase
Running; the deletion is done as ``kubectl delete rs`` does it (background propagation: the
garbage collector deletes the pods, their kubelets confirm) and is timed until the watch saw
the last pod go. Each wait is bounded by ``--timeout``; a phase that runs out reports how far
it got and the run goes on to the next. The namespace is deleted at the end in both modes.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any

import attrs
import trio

from raftkube.apiserver.resources import ResourceInfo, lookup
from raftkube.bench.cputime import CPUTable, sample
from raftkube.bench.namespaces import open_namespace
from raftkube.clock import TrioClock, move_on_after
from raftkube.cluster.common import positive_int
from raftkube.cluster.control_plane import ControlPlanePlan, plan_control_plane
from raftkube.cluster.processes import Child, spawn, stop_all
from raftkube.cluster.up import UpError, local_cluster, local_plan
from raftkube.controllers import ListWatch, ResourceEventHandlerFuncs, SharedIndexInformer
from raftkube.controllers.store import DeletedFinalStateUnknown
from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConfigError, KubeConnectionError
from raftkube.kubelet.simnodes import SIM_NODE_LABEL
from raftkube.tuning import tune_gc

Obj = dict[str, Any]
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
REPLICASET = "bench"
APP_LABEL = "bench-cluster"
TARGET_NODES_READY = (1000, 60.0)
TARGET_PODS_RUNNING = (10_000, 120.0)
"""Issue 14's targets: (how many, within how many seconds); shown against runs of that size."""
ANCHORS = (
    "kwok's CI: 10,000 nodes Ready within 180 s, 10,000 pods Running within 120 s "
    "(on larger machines)"
)
SINGLE = ("--leader-elect=false",)
"""The run's controller manager and scheduler are the only ones, so they run without leader
election (as ``bench scheduler`` runs its scheduler): on a loaded machine a renewal that misses
its deadline ends the process (upstream's behaviour, where the kubelet restarts it), and nothing
here would restart it."""

PHASES = ("nodes", "pods", "delete")
"""The CPU table's columns: until the nodes are Ready, until the pods are Running, until they
are gone."""

STOP_TIMEOUT = 10.0
"""Seconds each started process gets between SIGTERM and SIGKILL, as ``raftkube up``."""


def _resource(group: str, version: str, name: str) -> ResourceInfo:
    info = lookup(group, version, name)
    assert info is not None, name
    return info


NODES = _resource("", "v1", "nodes")
PODS = _resource("", "v1", "pods")
NAMESPACES = _resource("", "v1", "namespaces")
REPLICASETS = _resource("apps", "v1", "replicasets")


def register(bench_commands: Any) -> None:
    """Add ``cluster`` to the ``raftkube bench`` subcommands."""
    p = bench_commands.add_parser(
        "cluster",
        help="time simulated nodes to Ready and a ReplicaSet's pods to Running and gone (kwok)",
        description="Start a local cluster with simulated nodes (as `raftkube up --nodes 0 "
        "--sim-nodes M`, each component its own process, 3 store members with fsync), time "
        "its nodes to Ready, a ReplicaSet's pods to Running, and their deletion, then stop it "
        "all. With --kubeconfig, attach to a running cluster with simulated nodes instead "
        "(its nodes are then already up: only their count is checked).",
    )
    p.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        help="a running cluster with simulated nodes (raftkube up --sim-nodes M); without it "
        "a local cluster is started for the run and stopped after it",
    )
    p.add_argument("--sim-nodes", type=positive_int, default=1000, help="simulated nodes (1000)")
    p.add_argument(
        "--pods", type=positive_int, default=10_000, help="the ReplicaSet's pods (10000)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds each phase may take before the run moves on (600)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="without --kubeconfig: where the started cluster keeps its data and logs (kept "
        "afterwards; default a temporary directory, removed)",
    )
    p.set_defaults(handler=run_bench_cluster)


def replicaset(replicas: int) -> Obj:
    """The measured ReplicaSet: pause pods that only simulated nodes may run."""
    labels = {"app": APP_LABEL}
    container = {"name": "pause", "image": PAUSE_IMAGE}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": REPLICASET},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"nodeSelector": {SIM_NODE_LABEL: "true"}, "containers": [container]},
            },
        },
    }


@attrs.define(eq=False)
class Tally:
    """The names now in some state, and the moment (``perf_counter``) their count first met
    the goal: at least ``goal`` names, or with ``falling`` at most ``goal``."""

    goal: int
    falling: bool = False
    names: set[str] = attrs.field(factory=set)
    reached_at: float | None = None
    reached: trio.Event = attrs.field(factory=trio.Event)

    def mark(self, name: str, inside: bool) -> None:
        if inside:
            self.names.add(name)
        else:
            self.names.discard(name)
        self.check()

    def check(self) -> None:
        count = len(self.names)
        met = count <= self.goal if self.falling else count >= self.goal
        if met and self.reached_at is None:
            self.reached_at = time.perf_counter()
            self.reached.set()


def _name(obj: Obj | DeletedFinalStateUnknown) -> str:
    last = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
    return str(last["metadata"]["name"])


def _node_ready(node: Obj) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@attrs.define
class Phase:
    """One timed phase: how many of ``wanted`` got there, and in how many seconds (None: not
    all of them within the timeout)."""

    wanted: int
    done: int
    seconds: float | None

    def render(self, target: tuple[int, float] | None = None) -> str:
        if self.seconds is None:
            text = f"{self.done} of {self.wanted}, not all within the timeout"
        else:
            text = f"{self.done} of {self.wanted} in {self.seconds:.1f} s"
        if target is not None and target[0] == self.wanted:
            met = self.seconds is not None and self.seconds <= target[1]
            text += f"   (target {target[1]:g} s: {'met' if met else 'missed'})"
        return text


@attrs.define
class Result:
    attached: bool
    nodes_ready: Phase
    created: Phase
    scheduled: Phase
    running: Phase
    deleted: Phase
    errors: list[str] = attrs.field(factory=list)
    cpu: CPUTable | None = None
    """CPU seconds per started process and phase (a cluster the run started)."""

    @property
    def complete(self) -> bool:
        phases = (self.nodes_ready, self.running, self.deleted)
        return not self.errors and all(p.seconds is not None for p in phases)

    def render(self) -> str:
        where = (
            "an attached cluster"
            if self.attached
            else "a local cluster (3 store members with fsync, one process per component)"
        )
        since = "since the run began" if self.attached else "since the sim-nodes process started"
        lines = [
            f"cluster: {self.nodes_ready.wanted} simulated nodes, a ReplicaSet of "
            f"{self.running.wanted} pods, on {where}",
            f"  nodes Ready:    {self.nodes_ready.render(TARGET_NODES_READY)}  ({since})",
            "  since the ReplicaSet was created:",
            f"    pods created:   {self.created.render()}",
            f"    pods scheduled: {self.scheduled.render()}",
            f"    pods Running:   {self.running.render(TARGET_PODS_RUNNING)}",
            f"  pods deleted:   {self.deleted.render()}  (since the ReplicaSet was deleted)",
            f"  anchors: {ANCHORS}",
        ]
        if self.cpu is not None:
            lines.append("  CPU seconds per process and phase (user + system, from /proc):")
            lines += self.cpu.render()
        lines += [f"  error: {e}" for e in self.errors]
        return "\n".join(lines) + "\n"


def _phase(tally: Tally, wanted: int, started: float) -> Phase:
    """``tally`` as a phase begun at ``started``: a falling tally counts the names gone."""
    done = wanted - len(tally.names) if tally.falling else min(wanted, len(tally.names))
    seconds = None if tally.reached_at is None else max(0.0, tally.reached_at - started)
    return Phase(wanted, done, seconds)


@attrs.define(eq=False)
class Watcher:
    """The run's two informers and the tallies they keep: nodes Ready, and the namespace's
    pods present, scheduled and Running."""

    nodes: int
    pods: int
    ready: Tally = attrs.field(init=False)
    present: Tally = attrs.field(init=False)
    scheduled: Tally = attrs.field(init=False)
    running: Tally = attrs.field(init=False)
    created: Tally = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.ready = Tally(self.nodes)
        self.created = Tally(self.pods)
        self.present = Tally(self.pods)
        self.scheduled = Tally(self.pods)
        self.running = Tally(self.pods)

    def on_node(self, node: Obj) -> None:
        self.ready.mark(_name(node), _node_ready(node))

    def on_pod(self, pod: Obj) -> None:
        name = _name(pod)
        self.created.mark(name, True)
        self.present.mark(name, True)
        self.scheduled.mark(name, bool((pod.get("spec") or {}).get("nodeName")))
        self.running.mark(name, (pod.get("status") or {}).get("phase") == "Running")

    def on_pod_gone(self, pod: Obj | DeletedFinalStateUnknown) -> None:
        name = _name(pod)
        for tally in (self.present, self.scheduled, self.running):
            tally.mark(name, False)

    def start_deletion(self) -> int:
        """From now on, ``present`` counts down to no pods at all; returns how many there
        are now."""
        self.present = Tally(0, falling=True, names=set(self.present.names))
        self.present.check()
        return len(self.present.names)

    async def run(self, client: KubeClient, namespace: str, clock: TrioClock) -> None:
        nodes = SharedIndexInformer(
            ListWatch(client, NODES, label_selector=f"{SIM_NODE_LABEL}=true"),
            clock=clock,
            name="nodes",
        )
        nodes.add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self.on_node,
                update_func=lambda _old, new: self.on_node(new),
                delete_func=lambda node: self.ready.mark(_name(node), False),
            )
        )
        pods = SharedIndexInformer(ListWatch(client, PODS, namespace), clock=clock, name="pods")
        pods.add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self.on_pod,
                update_func=lambda _old, new: self.on_pod(new),
                delete_func=self.on_pod_gone,
            )
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(nodes.run)
            nursery.start_soon(pods.run)


async def _wait(event: trio.Event, clock: TrioClock, seconds: float, halted: trio.Event) -> None:
    """Until ``event`` is set, ``halted`` is (a process the run started exited) or ``seconds``
    pass."""

    async def either(which: trio.Event, scope: trio.CancelScope) -> None:
        await which.wait()
        scope.cancel()

    with move_on_after(clock, seconds):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(either, event, nursery.cancel_scope)
            nursery.start_soon(either, halted, nursery.cancel_scope)


async def measure(
    admin_kubeconfig: Path,
    args: argparse.Namespace,
    start_nodes: Callable[[], None] | None = None,
    halted: trio.Event | None = None,
) -> Result:
    """One run against the cluster of ``admin_kubeconfig``. ``start_nodes`` is called once
    the watches run and starts the simulated nodes (the nodes are timed from that call); None
    when they already run."""
    clock = TrioClock()
    halted = trio.Event() if halted is None else halted
    errors: list[str] = []
    watcher = Watcher(args.sim_nodes, args.pods)
    async with KubeClient.from_kubeconfig(admin_kubeconfig, clock=clock) as client:
        namespace = await open_namespace(client, "bench-cluster-")
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watcher.run, client, namespace, clock)
                samples = [sample()]
                nodes_started = time.perf_counter()
                if start_nodes is not None:
                    start_nodes()
                await _wait(watcher.ready.reached, clock, args.timeout, halted)
                nodes = _phase(watcher.ready, args.sim_nodes, nodes_started)
                samples.append(sample())
                created_at = time.perf_counter()
                await client.create(REPLICASETS, replicaset(args.pods), namespace=namespace)
                await _wait(watcher.running.reached, clock, args.timeout, halted)
                created = _phase(watcher.created, args.pods, created_at)
                scheduled = _phase(watcher.scheduled, args.pods, created_at)
                running = _phase(watcher.running, args.pods, created_at)
                samples.append(sample())
                deleted_at = time.perf_counter()
                existing = watcher.start_deletion()
                await client.delete(
                    REPLICASETS,
                    REPLICASET,
                    namespace=namespace,
                    options={"kind": "DeleteOptions", "apiVersion": "v1",
                             "propagationPolicy": "Background"},
                )  # fmt: skip
                await _wait(watcher.present.reached, clock, args.timeout, halted)
                deleted = _phase(watcher.present, existing, deleted_at)
                samples.append(sample())
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await client.delete(NAMESPACES, namespace)
                except (KubeAPIError, KubeConnectionError) as exc:
                    errors.append(f"clean-up: the namespace {namespace} was not deleted: {exc}")
    cpu = None if start_nodes is None else CPUTable.between(PHASES, samples)
    attached = args.kubeconfig is not None
    return Result(attached, nodes, created, scheduled, running, deleted, errors, cpu)


def _with_sim_nodes(data_dir: Path, cp: ControlPlanePlan, count: int) -> ControlPlanePlan:
    """``cp`` again, with ``count`` simulated nodes' certificates and kubeconfigs."""
    return plan_control_plane(data_dir, cp.host, cp.port, cp.store_certs, sim_nodes=count)


@contextlib.asynccontextmanager
async def _data_dir(given: Path | None) -> AsyncIterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="raftkube-bench-") as tmp:
        yield Path(tmp)


async def _measure_local(args: argparse.Namespace) -> Result:
    """Start members and API server (:func:`local_cluster`), then the controller manager and
    the scheduler, measure, and stop everything; the sim-nodes process is started by
    :func:`measure` once its watches run. A started process that exits ends every wait (it
    is reported as an error, with its log)."""
    async with _data_dir(args.data_dir) as data_dir:
        plan = local_plan(data_dir, apiserver=True)
        assert plan.control_plane is not None
        cp = _with_sim_nodes(data_dir, plan.control_plane, args.sim_nodes)
        plan = attrs.evolve(plan, control_plane=cp)
        children: list[Child] = []
        logs: list[IO[bytes]] = []
        halted = trio.Event()

        async def start(name: str, argv: list[str]) -> None:
            log = open(data_dir / f"{name}.log", "wb")  # noqa: SIM115
            logs.append(log)
            child = await spawn(name, argv, log)
            children.append(child)
            await child.process.wait()
            if not child.stopping:
                halted.set()

        async with local_cluster(plan):
            sys.stderr.write(f"raftkube bench: started a local cluster in {data_dir}\n")
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(
                        start, "controller-manager", [*cp.controller_manager_argv(), *SINGLE]
                    )
                    nursery.start_soon(start, "scheduler", [*cp.scheduler_argv(), *SINGLE])

                    def start_nodes() -> None:
                        nursery.start_soon(start, "sim-nodes", cp.sim_nodes_argv())

                    result = await measure(cp.admin_kubeconfig, args, start_nodes, halted)
                    nursery.cancel_scope.cancel()
                for child in children:
                    if child.process.returncode is not None and not child.stopping:
                        result.errors.append(
                            f"{child.name} exited with code {child.process.returncode} "
                            f"(log in {data_dir / (child.name + '.log')})"
                        )
                return result
            finally:
                await stop_all(children, STOP_TIMEOUT, TrioClock(), "raftkube bench")
                for log in logs:
                    log.close()
    raise AssertionError("unreachable")


def run_bench_cluster(args: argparse.Namespace) -> int:
    """The ``raftkube bench cluster`` handler: 0 if every phase finished within the timeout."""
    tune_gc()
    try:
        if args.kubeconfig is None:
            result = trio.run(_measure_local, args)
        else:
            result = trio.run(measure, args.kubeconfig, args, None)
    except UpError as exc:
        sys.stderr.write(f"raftkube bench: the local cluster did not come up: {exc}\n")
        return 1
    except (KubeConfigError, KubeAPIError, KubeConnectionError) as exc:
        sys.stderr.write(f"raftkube bench: {exc}\n")
        return 1
    sys.stdout.write(result.render())
    return 0 if result.complete else 1
