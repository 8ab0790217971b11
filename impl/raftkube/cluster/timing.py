"""etcd's ``--heartbeat-interval`` and ``--election-timeout`` for ``raftkube member`` and ``up``.

Both are in milliseconds, as etcd's are. The heartbeat interval is the member's tick (the
leader sends a heartbeat every tick) and the election timeout is a whole number of ticks
(etcd's ``ElectionTicks``: the timeout divided by the interval, rounded down); a follower
campaigns after hearing nothing from its leader for a randomized 1-2 times that. etcd's rules
and error texts apply: both must be positive, the timeout at least five intervals and at most
50 seconds.

raftkube's defaults stay 20 ms and 200 ms, five times shorter than etcd's 100 ms and 1,000 ms:
a leader's failure costs a fifth of the time, but every stall of a member's process longer
than 200-400 ms (a garbage collection, a slow disk, a machine shared with many other
processes) costs an election. etcd's tuning guide has the same trade-off: the timeout should
cover the round trip and the longest pause, and be raised on a slow or busy machine; with
``--heartbeat-interval 100 --election-timeout 1000`` a member rides out pauses of a second.
"""

from __future__ import annotations

import argparse

HEARTBEAT_INTERVAL_MS = 20
"""Default ``--heartbeat-interval`` (etcd's: 100)."""

ELECTION_TIMEOUT_MS = 200
"""Default ``--election-timeout`` (etcd's: 1000)."""

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
        help=f"time (in milliseconds) of a heartbeat interval (default {HEARTBEAT_INTERVAL_MS}; "
        "etcd's is 100)",
    )
    p.add_argument(
        "--election-timeout",
        type=int,
        default=ELECTION_TIMEOUT_MS,
        metavar="MS",
        help=f"time (in milliseconds) for an election to timeout (default {ELECTION_TIMEOUT_MS}; "
        "etcd's is 1000); raise it on a busy machine, where a member's pause longer than it "
        "costs an election",
    )


def timing_argv(args: argparse.Namespace) -> tuple[str, ...]:
    """The flags as ``raftkube member`` takes them (for launchers to pass on)."""
    return (
        "--heartbeat-interval",
        str(args.heartbeat_interval),
        "--election-timeout",
        str(args.election_timeout),
    )
