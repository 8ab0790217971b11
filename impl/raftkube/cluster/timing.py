"""etcd's ``--heartbeat-interval`` and ``--election-timeout`` for ``raftkube member`` and ``up``.

Both are in milliseconds, as etcd's are. The heartbeat interval is the member's tick (the
leader sends a heartbeat every tick) and the election timeout is a whole number of ticks
(etcd's ``ElectionTicks``: the timeout divided by the interval, rounded down); a follower
campaigns after hearing nothing from its leader for a randomized 1-2 times that. etcd's rules
and error texts apply: both must be positive, the timeout at least five intervals and at most
50 seconds.

The defaults are etcd's, 100 ms and 1,000 ms (``MemberConfig``, which in-process tests and
the simulator build, keeps its own 20 ms tick and 10-tick timeout). A member is a Python
process: on a machine shared with many other processes (load 12-16 on 2 cores) a Ready of
100 ms of CPU took up to a second of wall time, and with a 200-400 ms election timeout every
such stall of the leader cost an election. etcd's tuning guide gives the same rule: the
timeout must cover the round trip and the longest pause, and be raised on a slow or busy
machine. The price is failover: a dead leader is replaced after 1-2 s instead of 0.2-0.4 s
(docs/performance.md has both measured).
"""

from __future__ import annotations

import argparse

HEARTBEAT_INTERVAL_MS = 100
"""Default ``--heartbeat-interval``, etcd's."""

ELECTION_TIMEOUT_MS = 1000
"""Default ``--election-timeout``, etcd's."""

MAX_ELECTION_TIMEOUT_MS = 50_000
"""etcd's ``maxElectionMs``."""


class TimingConfigError(ValueError):
    """The flags break one of etcd's rules; the message is etcd's."""


def raft_timing(heartbeat_ms: int, election_ms: int) -> tuple[float, int]:
    """The member's tick interval in seconds and its election timeout in ticks, checked as
    etcd's ``embed.Config.Validate`` checks them (with its messages)."""
    if heartbeat_ms <= 0:
        raise TimingConfigError(f"--heartbeat-interval must be >0 (set to {heartbeat_ms}ms)")
    if election_ms <= 0:
        raise TimingConfigError(f"--election-timeout must be >0 (set to {election_ms}ms)")
    if 5 * heartbeat_ms > election_ms:
        raise TimingConfigError(
            f"--election-timeout[{election_ms}ms] should be at least as 5 times as "
            f"--heartbeat-interval[{heartbeat_ms}ms]"
        )
    if election_ms > MAX_ELECTION_TIMEOUT_MS:
        raise TimingConfigError(
            f"--election-timeout[{election_ms}ms] is too long, and should be set less than "
            f"{MAX_ELECTION_TIMEOUT_MS}ms"
        )
    return heartbeat_ms / 1000, election_ms // heartbeat_ms


def add_timing_flags(p: argparse.ArgumentParser) -> None:
    """Add ``--heartbeat-interval`` and ``--election-timeout`` (shared by ``member`` and
    ``up``, which passes them on to its members)."""
    p.add_argument(
        "--heartbeat-interval",
        type=int,
        default=HEARTBEAT_INTERVAL_MS,
        metavar="MS",
        help=f"time (in milliseconds) of a heartbeat interval (default {HEARTBEAT_INTERVAL_MS})",
    )
    p.add_argument(
        "--election-timeout",
        type=int,
        default=ELECTION_TIMEOUT_MS,
        metavar="MS",
        help=f"time (in milliseconds) for an election to timeout (default {ELECTION_TIMEOUT_MS}); "
        "a member's pause longer than it costs an election",
    )


def timing_argv(args: argparse.Namespace) -> tuple[str, ...]:
    """The flags as ``raftkube member`` takes them (for launchers to pass on)."""
    return (
        "--heartbeat-interval",
        str(args.heartbeat_interval),
        "--election-timeout",
        str(args.election_timeout),
    )
