"""What a leader knows about one follower: the spec's nextIndex/matchIndex plus flow control.

``next``/``match`` evolve exactly as the spec's ``next_index``/``match_index``; ``inflight``,
``paused``, ``probing`` and ``pending_snapshot`` only decide *when* the leader sends, which the
spec leaves free (sending is always an enabled action, never an obligation).

The snapshot state
------------------
etcd-io/raft's ``StateSnapshot``: once the leader sends a follower an InstallSnapshot,
``pending_snapshot`` holds its index and nothing more goes to that follower (no entries, no
second snapshot) until one of:

* a successful answer showing the follower holds the snapshot, or can now be caught up from
  the log (``match >= min(pending, first index the log still holds - 1)``), as etcd leaves
  it on an MsgAppResp that reconnects the follower to the log;
* :meth:`snapshot_failed`: the driver reports that the snapshot could not be sent (etcd's
  ``ReportSnapshot(SnapshotFailure)``);
* ``snapshot_timeout`` ticks without either (:meth:`tick_snapshot`). etcd relies on its
  transport always reporting; here a snapshot may also vanish where no one reports it (a
  dropped frame of a full peer queue, a simulated network's loss, a follower restarted
  mid-install), so the leader gives up waiting after a bound and sends again.

Rejections meanwhile are ignored for sending. Without this state a far-behind follower set off
a storm: while it was away the leader's queue to it filled with appends; on its return it
rejected each one, and each rejection of a follower behind the snapshot made the leader send a
fresh InstallSnapshot (a whole image each), where one catch-up needs one.
"""

from __future__ import annotations

from collections import deque


class Progress:
    __slots__ = (
        "inflight",
        "match",
        "next",
        "paused",
        "pending_snapshot",
        "probing",
        "snapshot_ticks",
    )

    def __init__(self, next_index: int, match_index: int = 0) -> None:
        self.next = next_index
        self.match = match_index
        self.inflight: deque[int] = deque()
        """With pipelining: the last index of each append in flight, oldest first."""
        self.paused = False
        """Without pipelining: an append (or snapshot) is awaiting its answer."""
        self.probing = False
        """With pipelining: the follower rejected an append and has not accepted one since, so
        the window is one append wide (etcd-io/raft's probe state). Without it every rejection
        would refill the whole window from the new ``next``, and rejections of appends already
        in flight (each one stale by then) would each refill it again: a storm that grows by
        the window's width per round trip."""
        self.pending_snapshot = 0
        """The index of the snapshot in flight to this follower, 0 if none (the snapshot
        state; see the module docstring)."""
        self.snapshot_ticks = 0
        """Ticks spent in the snapshot state so far."""

    def free_to(self, index: int) -> None:
        """Forget in-flight appends an answer up to ``index`` acknowledged."""
        while self.inflight and self.inflight[0] <= index:
            self.inflight.popleft()

    def reset_flow(self) -> None:
        """Reopen the window: on a rejection, or each heartbeat interval so that lost answers
        cannot stall a follower for good."""
        self.inflight.clear()
        self.paused = False

    # -- the snapshot state ---------------------------------------------------------------

    def become_snapshot(self, index: int) -> None:
        """A snapshot up to ``index`` was just sent: send nothing more until it is settled."""
        self.pending_snapshot = index
        self.snapshot_ticks = 0
        self.inflight.clear()

    def snapshot_acked(self, match: int, compacted_to: int) -> None:
        """A successful answer up to ``match``: leave the snapshot state if the follower now
        holds the snapshot sent, or everything the log no longer holds (``compacted_to``, the
        leader's snapshot index), so appends can catch it up from here."""
        if self.pending_snapshot and match >= min(self.pending_snapshot, compacted_to):
            self.pending_snapshot = 0
            self.probing = False

    def snapshot_failed(self) -> None:
        """The snapshot did not get there: probe again (and send a new one if still needed)."""
        if self.pending_snapshot:
            self.pending_snapshot = 0
            self.probing = True
            self.reset_flow()

    def tick_snapshot(self, ticks: int, timeout: int) -> None:
        """``ticks`` more ticks passed; give up waiting after ``timeout`` of them."""
        if self.pending_snapshot:
            self.snapshot_ticks += ticks
            if self.snapshot_ticks >= timeout:
                self.snapshot_failed()
