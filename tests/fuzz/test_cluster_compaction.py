"""The API servers compact the store in the ``cluster`` suite (``compaction``, their
``--etcd-compaction-interval``): with two servers, one compaction per interval between them;
after the store member restarts, the watch caches that must resume below a compaction list
again, and every check accepts what follows (compacted revisions, relists, 410s). One short
run with fixed steps."""

from __future__ import annotations

from raftkube_fuzz.cluster.components import APIServerProcess
from raftkube_fuzz.cluster.plane import ControlPlane
from raftkube_fuzz.example import run_steps
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite

INTERVAL = 10.0
CONFIG = {"servers": 1, "nodes": 2, "apiservers": 2, "compaction": "10s"}

STEPS = [
    Step.of("apply_rs", name="rs-a", replicas=2, via=0),
    Step.of("long_wait", seconds=30.0),
    Step.of("apply_rs", name="rs-a", replicas=3, via=1),
    Step.of("long_wait", seconds=10.0),
    Step.of("crash", member=0, torn=0),
    Step.of("long_wait", seconds=2.0),
    Step.of("restart", member=0),
    Step.of("long_wait", seconds=30.0),
    Step.of("apply_rs", name="rs-a", replicas=1, via=1),
    Step.of("long_wait", seconds=10.0),
]
"""Several intervals pass before the store's only member crashes; when it is back, each API
server's caches of resources nobody wrote since the last compaction cannot resume."""


def test_servers_share_compaction_and_survive_the_relists_it_causes() -> None:
    suite = get_suite("cluster")
    run = run_steps(suite, {**suite.default_config, **CONFIG}, 3, STEPS)
    assert run.violation is None, run.violation
    plane: ControlPlane = run.extras["plane"]
    servers = []
    for host in plane.apiservers:
        assert isinstance(host.process, APIServerProcess) and host.process.running is not None
        servers.append(host.process.running)
    compactions = sum(s.compactor.compactions for s in servers)
    intervals = run.sim.now / INTERVAL
    # One compaction per interval between the two servers (each wakes every interval), not
    # one each; the first interval of the first winner only records a revision.
    assert 3 <= compactions <= intervals, (compactions, intervals)
    assert all(s.compactor.compact_revision > 0 for s in servers)
    relisted = [name for s in servers for name, c in s.caches.items() if c.relists > 1]
    assert relisted, "no watch cache had to list again after the restart"
