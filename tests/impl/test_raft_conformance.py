"""Conformance: random runs of RaftNode clusters, every step replayed through the Raft spec.

A seeded ``random.Random`` picks, at each step, among ticking a node, delivering any in-flight
message (so in any order), dropping or duplicating one, crashing and restarting a node from its
disk, and the client operations (propose, read, compact, transfer). The harness
(:mod:`tests.impl.test_raft_harness`) checks every event against ``RaftSpec.step`` and the
node's state against the spec's server after it, the network against the spec's network and the
invariants after every step, and persistence before send in every Ready.
"""

from __future__ import annotations

import contextlib
import os
import random

import pytest

from raftkube.raft import NotLeaderError, RejectedError
from tests.helpers.raft_harness import Cluster

SEEDS = int(os.environ.get("RAFTKUBE_CONFORMANCE_SEEDS", "16"))
STEPS = int(os.environ.get("RAFTKUBE_CONFORMANCE_STEPS", "400"))

ALL = {
    "pipelining": True,
    "pre_vote": True,
    "check_quorum": True,
    "read_index": True,
    "compaction": True,
    "leader_transfer": True,
}

PROFILES: dict[str, tuple[int, dict[str, bool]]] = {
    "raft.tla": (1, {}),
    "batch": (3, {}),
    "pipelining": (2, {"pipelining": True}),
    "pre_vote": (1, {"pre_vote": True}),
    "check_quorum": (1, {"check_quorum": True}),
    "read_index": (1, {"read_index": True}),
    "compaction": (2, {"compaction": True}),
    "transfer": (1, {"leader_transfer": True}),
    "all": (3, ALL),
}


def run(
    n: int,
    seed: int,
    steps: int,
    max_batch: int,
    features: dict[str, bool],
    *,
    lease: bool = False,
    each_event: bool = False,
) -> Cluster:
    c = Cluster(
        n,
        seed,
        election_timeout=3,
        heartbeat_timeout=2,
        max_batch=max_batch,
        max_inflight=2,
        lease=lease,
        check_invariants_each_event=each_event,
        **features,
    )
    rng = random.Random(seed * 7919 + n)
    value = 0
    actions = [
        ("tick", 4.0),
        ("deliver", 8.0),
        ("drop", 0.6),
        ("duplicate", 0.6),
        ("restart", 0.15),
        ("propose", 1.5),
        ("read", 0.5),
        ("compact", 0.4),
        ("transfer", 0.3),
    ]
    names = [a for a, _ in actions]
    weights = [w for _, w in actions]
    for _ in range(steps):
        (action,) = rng.choices(names, weights)
        net = c.network
        if action == "tick":
            c.tick(rng.randrange(n))
        elif action == "deliver" and net:
            c.deliver(rng.randrange(len(net)))
        elif action == "drop" and net:
            c.drop(rng.randrange(len(net)))
        elif action == "duplicate" and net and len(net) < 60:
            c.duplicate(rng.randrange(len(net)))
        elif action == "restart":
            c.restart(rng.randrange(n))
        elif action == "propose":
            leaders = c.leaders()
            target = rng.choice(leaders) if leaders and rng.random() < 0.9 else rng.randrange(n)
            value += 1
            with contextlib.suppress(NotLeaderError):
                c.propose(target, f"v{value}")
        elif action == "read" and features.get("read_index"):
            leaders = c.leaders()
            if leaders:
                with contextlib.suppress(RejectedError):
                    c.read_index(rng.choice(leaders), c.state.last_read_id + 1)
        elif action == "compact" and features.get("compaction"):
            i = rng.randrange(n)
            node = c.nodes[i]
            lo = node.log.snapshot.index
            if node.commit > lo:
                c.compact(i, rng.randint(lo + 1, node.commit))
        elif action == "transfer" and features.get("leader_transfer"):
            leaders = c.leaders()
            if leaders:
                i = rng.choice(leaders)
                node = c.nodes[i]
                ready = [j for j in node.config.peers if node.match_index(j) == node.last_index]
                with contextlib.suppress(RejectedError):
                    c.transfer(i, rng.choice(ready or list(node.config.peers)))
        c.check_all()
    return c


@pytest.mark.parametrize("profile", list(PROFILES))
@pytest.mark.parametrize("n", [3, 5])
def test_random_runs_conform_to_the_spec(profile: str, n: int) -> None:
    max_batch, features = PROFILES[profile]
    for seed in range(SEEDS):
        run(n, seed, STEPS, max_batch, features)


@pytest.mark.parametrize("n", [3, 5])
def test_all_features_with_lease_and_invariants_after_every_event(n: int) -> None:
    for seed in range(SEEDS // 4):
        run(n, 1000 + seed, STEPS, 2, ALL, lease=True, each_event=True)


def test_runs_make_progress() -> None:
    """The walks are not vacuous: leaders get elected and entries commit, with every feature."""
    committed = 0
    leaders = 0
    for seed in range(SEEDS):
        c = run(3, seed, STEPS, 3, ALL)
        committed += len(c.state.committed)
        leaders += len(c.state.elections)
    assert leaders >= SEEDS
    assert committed >= SEEDS
