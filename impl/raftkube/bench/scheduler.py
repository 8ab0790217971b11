"""``raftkube bench scheduler``: how fast the scheduler binds pods through a real API server
and store, as upstream's scheduler_perf ``SchedulingBasic`` measures it.

The run creates ``--nodes`` nodes and ``--pods`` pods from scheduler_perf's default templates
(a node with 4 CPUs, 32Gi and room for 110 pods, Ready; a pause pod requesting 100m CPU and
500Mi), every pod in a namespace of the run's own, then starts ``raftkube scheduler`` as its
own process (the scheduler's kubeconfig, no leader election, as scheduler_perf runs it) and
watches the pods. The figure is pods bound per second **from the first bind to the last**,
each bind timed when its pod is seen with ``spec.nodeName`` on the watch; the time the
scheduler takes to start and list the pods is not counted.

Where scheduler_perf creates its measured pods while the scheduler runs, this run creates
them all first, so the figure is the scheduler's and the API server's binding rate, not the
creation rate; the pods and nodes are created with ``--clients`` concurrent requests.

Without ``--kubeconfig`` a throw-away cluster (3 members and an API server, as ``raftkube
up``) is started and removed afterwards; with it, the cluster's own scheduler must be running
(the run starts none), and the run's pods, namespace and nodes are deleted after the report.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from raftkube.apiserver.resources import ResourceInfo, lookup
from raftkube.bench.namespaces import open_namespace
from raftkube.clock import TrioClock, move_on_after
from raftkube.cluster.common import positive_int
from raftkube.cluster.processes import Child, spawn, stop_all
from raftkube.cluster.up import UpError, local_cluster, local_plan
from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConfigError, KubeConnectionError
from raftkube.tuning import tune_gc

Obj = dict[str, Any]
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
UPSTREAM_THRESHOLD = "680 pods/s (scheduler_perf SchedulingBasic, 5,000 nodes, 10,000 pods)"


def _core(name: str) -> ResourceInfo:
    info = lookup("", "v1", name)
    assert info is not None, name
    return info


NODES, PODS, NAMESPACES = _core("nodes"), _core("pods"), _core("namespaces")


def register(bench_commands: Any) -> None:
    """Add ``scheduler`` to the ``raftkube bench`` subcommands."""
    p = bench_commands.add_parser(
        "scheduler",
        help="measure pods bound per second through a real API server (scheduler_perf)",
        description="Create nodes and pods, run the scheduler, report pods/s from the first "
        "bind to the last; without --kubeconfig a local cluster is started for the run.",
    )
    p.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        help="a cluster whose scheduler runs; without it a local one is started",
    )
    p.add_argument("--nodes", type=positive_int, default=1000, help="nodes to create (1000)")
    p.add_argument("--pods", type=positive_int, default=10_000, help="pods to schedule (10000)")
    p.add_argument(
        "--clients",
        type=positive_int,
        default=64,
        help="concurrent requests creating the objects (64)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds to wait for every pod to be bound (600)",
    )
    p.set_defaults(handler=run_bench_scheduler)


def node_template() -> Obj:
    """scheduler_perf's ``node-default.yaml``."""
    capacity = {"pods": "110", "cpu": "4", "memory": "32Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"generateName": "scheduler-perf-"},
        "spec": {},
        "status": {
            "capacity": capacity,
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def pod_template(namespace: str) -> Obj:
    """scheduler_perf's ``pod-default.yaml``."""
    amounts = {"cpu": "100m", "memory": "500Mi"}
    container = {
        "name": "pause",
        "image": PAUSE_IMAGE,
        "ports": [{"containerPort": 80}],
        "resources": {"limits": dict(amounts), "requests": dict(amounts)},
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "pod-", "namespace": namespace},
        "spec": {"containers": [container]},
    }


@attrs.define
class Result:
    nodes: int
    pods: int
    bound: int
    first_to_last: float
    setup_seconds: float
    errors: int
    first_error: str = ""

    @property
    def pods_per_second(self) -> float:
        return self.bound / self.first_to_last if self.first_to_last > 0 else 0.0

    def render(self) -> str:
        lines = [
            f"scheduler: {self.nodes} nodes, {self.pods} pods "
            f"(objects created in {self.setup_seconds:.1f} s, {self.errors} errors)",
            f"  bound:       {self.bound} of {self.pods}",
            f"  first->last: {self.first_to_last:.2f} s",
            f"  throughput:  {self.pods_per_second:.1f} pods/s",
            f"  upstream's threshold: {UPSTREAM_THRESHOLD}",
        ]
        if self.first_error:
            lines.append(f"  first error: {self.first_error}")
        return "\n".join(lines) + "\n"


@attrs.define
class _Errors:
    count: int = 0
    first: str = ""

    def add(self, exc: Exception) -> None:
        self.count += 1
        self.first = self.first or str(exc)


async def _concurrently(
    clients: int, count: int, request: Callable[[int], Awaitable[object]], errors: _Errors
) -> None:
    """``request(0)`` ... ``request(count - 1)``, ``clients`` at a time; failures counted."""
    numbers = iter(range(count))

    async def worker() -> None:
        for n in numbers:
            try:
                await request(n)
            except (KubeAPIError, KubeConnectionError) as exc:
                errors.add(exc)

    async with trio.open_nursery() as nursery:
        for _ in range(min(clients, count)):
            nursery.start_soon(worker)


async def _create_all(
    client: KubeClient,
    clients: int,
    count: int,
    make: Callable[[], Obj],
    resource: ResourceInfo,
    errors: _Errors,
) -> list[str]:
    names: list[str] = []

    async def create(_n: int) -> object:
        obj = await client.create(resource, make())
        names.append(str(obj["metadata"]["name"]))
        return obj

    await _concurrently(clients, count, create, errors)
    return names


async def _watch_binds(
    client: KubeClient,
    namespace: str,
    pods: int,
    bound_at: dict[str, float],
    done: trio.Event,
    task_status: trio.TaskStatus[None],
) -> None:
    """Time every pod's first appearance with a node. The first watch has no resourceVersion
    (it starts with every pod as ADDED); one the server ends is opened again from the last
    resourceVersion seen, and one refused as too old (410) from the current state again, so
    no bind goes unseen."""
    version = ""
    started = False
    while not done.is_set():
        async with client.watch(
            PODS, namespace=namespace, resource_version=version, allow_watch_bookmarks=True
        ) as events:
            if not started:
                started = True
                task_status.started()
            async for kind, obj in events:
                if kind == "ERROR":
                    if obj.get("code") != 410:
                        raise KubeConnectionError(f"the watch failed: {obj.get('message')}")
                    version = ""
                    break
                version = str(obj["metadata"].get("resourceVersion") or version)
                if kind in ("ADDED", "MODIFIED") and (obj.get("spec") or {}).get("nodeName"):
                    bound_at.setdefault(str(obj["metadata"]["name"]), time.perf_counter())
                    if len(bound_at) >= pods:
                        done.set()
                        return


async def measure(
    admin_kubeconfig: Path,
    args: argparse.Namespace,
    scheduler_argv: list[str] | None,
    log: Path | None,
) -> Result:
    """One run against the cluster of ``admin_kubeconfig``; ``scheduler_argv`` starts the
    scheduler once every object exists (None: the cluster's scheduler is already running)."""
    errors = _Errors()
    clock = TrioClock()
    async with (
        KubeClient.from_kubeconfig(admin_kubeconfig, max_connections=args.clients) as client,
        KubeClient.from_kubeconfig(admin_kubeconfig, max_connections=1) as watcher,
    ):
        started = time.perf_counter()
        namespace = await open_namespace(client, "sched-perf-")
        nodes = await _create_all(client, args.clients, args.nodes, node_template, NODES, errors)
        pods = await _create_all(
            client, args.clients, args.pods, lambda: pod_template(namespace), PODS, errors
        )
        setup = time.perf_counter() - started
        bound_at: dict[str, float] = {}
        done = trio.Event()
        child: Child | None = None
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(_watch_binds, watcher, namespace, len(pods), bound_at, done)
                if scheduler_argv is not None:
                    assert log is not None
                    with open(log, "wb") as out:
                        child = await spawn("scheduler", scheduler_argv, out)
                with move_on_after(clock, args.timeout):
                    await done.wait()
                nursery.cancel_scope.cancel()
        finally:
            if child is not None:
                await stop_all([child], 10.0, clock, "raftkube bench")
        times = sorted(bound_at.values())
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        result = Result(args.nodes, len(pods), len(times), span, setup, errors.count, errors.first)
        if args.kubeconfig is not None:
            await _clean_up(client, args.clients, namespace, nodes, pods)
        return result


async def _clean_up(
    client: KubeClient, clients: int, namespace: str, nodes: list[str], pods: list[str]
) -> None:
    errors = _Errors()

    async def delete_pod(n: int) -> object:
        return await client.delete(PODS, pods[n], namespace=namespace)

    async def delete_node(n: int) -> object:
        return await client.delete(NODES, nodes[n])

    await _concurrently(clients, len(pods), delete_pod, errors)
    await _concurrently(clients, len(nodes), delete_node, errors)
    try:
        await client.delete(NAMESPACES, namespace)
    except (KubeAPIError, KubeConnectionError) as exc:
        errors.add(exc)
    if errors.count:
        sys.stderr.write(f"raftkube bench: clean-up incomplete: {errors.first}\n")


async def _measure_local(args: argparse.Namespace) -> Result:
    with tempfile.TemporaryDirectory(prefix="raftkube-bench-") as tmp:
        plan = local_plan(Path(tmp), apiserver=True)
        cp = plan.control_plane
        assert cp is not None
        async with local_cluster(plan):
            sys.stderr.write(f"raftkube bench: started a local cluster and API server in {tmp}\n")
            argv = [
                sys.executable,
                "-m",
                "raftkube.scheduler",
                "--kubeconfig",
                str(cp.scheduler_kubeconfig),
                "--leader-elect=false",
            ]
            return await measure(cp.admin_kubeconfig, args, argv, Path(tmp) / "scheduler.log")
    raise AssertionError("unreachable")


def run_bench_scheduler(args: argparse.Namespace) -> int:
    """The ``raftkube bench scheduler`` handler: 0 if every pod was bound."""
    tune_gc()
    try:
        if args.kubeconfig is None:
            result = trio.run(_measure_local, args)
        else:
            result = trio.run(measure, args.kubeconfig, args, None, None)
    except UpError as exc:
        sys.stderr.write(f"raftkube bench: the local cluster did not come up: {exc}\n")
        return 1
    except (KubeConfigError, KubeAPIError, KubeConnectionError) as exc:
        sys.stderr.write(f"raftkube bench: {exc}\n")
        return 1
    sys.stdout.write(result.render())
    return 0 if result.bound == result.pods and not result.errors else 1
