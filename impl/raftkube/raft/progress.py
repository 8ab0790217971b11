"""What a leader knows about one follower: the spec's nextIndex/matchIndex plus flow control.

``next``/``match`` evolve exactly as the spec's ``next_index``/``match_index``; ``inflight`` and
``paused`` only decide *when* the leader sends, which the spec leaves free.
"""

from __future__ import annotations

from collections import deque


class Progress:
    __slots__ = ("inflight", "match", "next", "paused", "probing")

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

    def free_to(self, index: int) -> None:
        """Forget in-flight appends an answer up to ``index`` acknowledged."""
        while self.inflight and self.inflight[0] <= index:
            self.inflight.popleft()

    def reset_flow(self) -> None:
        """Reopen the window: on a rejection, or each heartbeat interval so that lost answers
        cannot stall a follower for good."""
        self.inflight.clear()
        self.paused = False
