"""The in-process Raft harness of :mod:`tests.helpers.raft_harness` checks itself: what its
disks persisted from the Ready batches is what the nodes hold."""

from __future__ import annotations

from tests.helpers.raft_harness import Cluster


def test_disk_replays_a_ready_sequence() -> None:
    c = Cluster(3, check=True)
    c.elect(0)
    c.propose(0, "x")
    c.deliver_all()
    c.tick(0)
    c.deliver_all()
    for i in range(3):
        assert c.disks[i].log() == c.nodes[i].log.as_entries()
