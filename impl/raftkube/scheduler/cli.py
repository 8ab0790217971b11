"""``raftkube scheduler``: kube-scheduler's command line and its leader election.

Flags are upstream's: ``--kubeconfig``, ``--leader-elect`` (default true),
``--leader-elect-lease-duration`` (15s), ``--leader-elect-renew-deadline`` (10s),
``--leader-elect-retry-period`` (2s), ``--leader-elect-resource-name`` (kube-scheduler) and
``--leader-elect-resource-namespace`` (kube-system); durations in Go's syntax (``15s``,
``1m30s``, ``500ms``). Only the ``leases`` lock exists, so ``--leader-elect-resource-lock``
accepts just that.

The informers start at once; the scheduling loop runs only while this process holds the
Lease. Losing it ends the process with status 1, as kube-scheduler exits ("leaderelection
lost"), so a supervisor restarts it with an empty queue and a fresh cache rather than letting
two schedulers act on one pod. The identity in the Lease is ``<hostname>_<uuid>``, as
upstream's.
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import socket
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from raftkube.clock import Clock, TrioClock
from raftkube.controllers.leaderelection import LeaderElectionConfig, LeaderElector, LeaseLock
from raftkube.kubeclient import KubeClient, KubeConfigError
from raftkube.scheduler.scheduler import Scheduler
from raftkube.tuning import tune_gc

logger = logging.getLogger("raftkube.scheduler")

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|ns|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def go_duration(text: str) -> float:
    """Seconds in a Go duration string (``time.ParseDuration``), e.g. ``1m30s``."""
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION.match(text, pos)
        if match is None:
            raise argparse.ArgumentTypeError(f'time: invalid duration "{text}"')
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text:
        raise argparse.ArgumentTypeError('time: invalid duration ""')
    return total


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "t"):
        return True
    if text.lower() in ("false", "0", "f"):
        return False
    raise argparse.ArgumentTypeError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


@attrs.frozen
class SchedulerOptions:
    kubeconfig: Path
    leader_elect: bool = True
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    resource_name: str = "kube-scheduler"
    resource_namespace: str = "kube-system"
    identity: str = ""


def register(commands: Any) -> None:
    p = commands.add_parser(
        "scheduler",
        help="run kube-scheduler against an API server",
        description="The Kubernetes scheduler: binds pending pods to nodes.",
    )
    p.add_argument("--kubeconfig", type=Path, required=True, help="path to a kubeconfig")
    p.add_argument(
        "--leader-elect",
        type=_bool,
        nargs="?",
        const=True,
        default=True,
        help="take a Lease before scheduling, so only one of several replicas acts (true)",
    )
    p.add_argument("--leader-elect-lease-duration", type=go_duration, default=15.0)
    p.add_argument("--leader-elect-renew-deadline", type=go_duration, default=10.0)
    p.add_argument("--leader-elect-retry-period", type=go_duration, default=2.0)
    p.add_argument("--leader-elect-resource-lock", choices=("leases",), default="leases")
    p.add_argument("--leader-elect-resource-name", default="kube-scheduler")
    p.add_argument("--leader-elect-resource-namespace", default="kube-system")
    p.set_defaults(handler=run_cli)


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4()}"


async def serve(
    options: SchedulerOptions,
    client: KubeClient,
    clock: Clock,
    *,
    rng: random.Random | None = None,
    wall: Callable[[], float] = time.time,
    scheduler: Scheduler | None = None,
) -> int:
    """Run one scheduler process's work with ``client`` until cancelled (returns 0) or until
    leadership is lost (returns 1). ``wall`` stamps bindings' and the Lease's times."""
    identity = options.identity or default_identity()
    rng = rng or random.Random()
    if scheduler is None:
        scheduler = Scheduler(client, clock, rng=rng, wall=wall, identity=identity)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(scheduler.run_informers, name="scheduler informers")
        if not options.leader_elect:
            await scheduler.run()
            return 0
        lock = LeaseLock(client, options.resource_namespace, options.resource_name, identity)
        config = LeaderElectionConfig(
            lock,
            lease_duration=options.lease_duration,
            renew_deadline=options.renew_deadline,
            retry_period=options.retry_period,
            name="kube-scheduler",
        )
        elector = LeaderElector(config, clock, wall=wall, rng=random.Random(rng.random()))
        await elector.run(scheduler.run)
        logger.error("leaderelection lost")
        nursery.cancel_scope.cancel()
    return 1


def run_cli(args: argparse.Namespace) -> int:
    """The ``raftkube scheduler`` handler."""
    tune_gc()  # the informers' caches hold every pod: default thresholds walk them constantly
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    options = SchedulerOptions(
        kubeconfig=args.kubeconfig,
        leader_elect=args.leader_elect,
        lease_duration=args.leader_elect_lease_duration,
        renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period,
        resource_name=args.leader_elect_resource_name,
        resource_namespace=args.leader_elect_resource_namespace,
    )

    async def main() -> int:
        clock = TrioClock()
        async with KubeClient.from_kubeconfig(options.kubeconfig, clock=clock) as client:
            return await serve(options, client, clock)

    try:
        return trio.run(main)
    except KubeConfigError as exc:
        sys.stderr.write(f"raftkube scheduler: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 0
