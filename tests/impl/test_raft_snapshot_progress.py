"""A follower far behind a compacted log is caught up by one snapshot, not one per rejection
(etcd-io/raft's StateSnapshot, ``raftkube.raft.progress``); a snapshot that never arrives is
sent again after ``snapshot_timeout`` ticks, or at once when the driver reports it failed.

Every step is replayed through the spec by the harness (``check=True``), so holding messages
back stays within what the spec allows."""

from __future__ import annotations

from raftkube_spec.raft import events as ev
from raftkube_spec.raft.messages import InstallSnapshotRequest
from tests.helpers.raft_harness import Cluster

LEADER, BEHIND = 0, 2


def _snapshots_sent(c: Cluster) -> int:
    return sum(
        1
        for e in c.events
        if isinstance(e, ev.InstallSnapshot) and (e.server, e.peer) == (LEADER, BEHIND)
    )


def _far_behind(rounds: int = 30) -> Cluster:
    """A leader whose follower ``BEHIND`` was away while entries were written and the log was
    compacted past it. What was sent to it meanwhile (a pipelined window of appends per
    heartbeat) waits in the network, as in a full peer queue, except the first appends, lost
    when it went away: so each one waiting no longer fits its log."""
    c = Cluster(3, compaction=True, pipelining=True, max_batch=2, max_inflight=8)
    c.elect(LEADER)
    c.deliver_all()
    for value in range(rounds):
        c.propose(LEADER, value)
        c.tick(LEADER)
        c.deliver_all(only={0, 1})
        if value < 3:
            while (
                k := next((k for k, m in enumerate(c.network) if m.dest == BEHIND), None)
            ) is not None:
                c.drop(k)
    c.compact(LEADER, c.nodes[LEADER].commit)
    assert c.nodes[BEHIND].log.last_index < c.nodes[LEADER].log.snapshot.index
    return c


def test_a_far_behind_follower_gets_one_snapshot_however_many_appends_it_rejects() -> None:
    c = _far_behind()
    stale = sum(1 for m in c.network if m.dest == BEHIND)
    assert stale > 30
    c.deliver_all()  # It answers every stale append (rejecting them) and then catches up.
    rejections = sum(
        1
        for e in c.events
        if isinstance(e, ev.HandleAppendEntriesResponse)
        and e.message.source == BEHIND
        and not e.message.success
    )
    assert rejections > 20
    assert _snapshots_sent(c) == 1
    assert c.nodes[BEHIND].log.last_index == c.nodes[LEADER].log.last_index
    assert c.nodes[LEADER].progress[BEHIND].pending_snapshot == 0


def _lose_the_snapshot(c: Cluster) -> None:
    """Deliver until the leader has sent its snapshot, then drop it (and nothing else)."""
    while _snapshots_sent(c) == 0:
        c.deliver(0)
    (k,) = (k for k, m in enumerate(c.network) if isinstance(m, InstallSnapshotRequest))
    c.drop(k)
    c.deliver_all()


def test_a_lost_snapshot_is_sent_again_after_the_timeout_and_not_before() -> None:
    c = _far_behind(rounds=10)
    _lose_the_snapshot(c)
    timeout = c.configs[LEADER].snapshot_timeout
    for _ in range(timeout - 1):
        c.tick(LEADER)
        c.deliver_all()
    assert _snapshots_sent(c) == 1
    assert c.nodes[BEHIND].log.last_index < c.nodes[LEADER].log.snapshot.index
    c.tick(LEADER)
    c.deliver_all()
    assert _snapshots_sent(c) == 2
    assert c.nodes[BEHIND].log.last_index == c.nodes[LEADER].log.last_index


def test_a_snapshot_reported_failed_is_sent_again_at_the_next_heartbeat() -> None:
    c = _far_behind(rounds=10)
    _lose_the_snapshot(c)
    c.nodes[LEADER].report_snapshot(BEHIND, failed=True)
    c.tick(LEADER)
    c.deliver_all()
    assert _snapshots_sent(c) == 2
    assert c.nodes[BEHIND].log.last_index == c.nodes[LEADER].log.last_index
