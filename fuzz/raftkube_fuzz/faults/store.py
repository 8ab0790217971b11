"""The store faults every suite shares (crash, pause, partitions, network settings, clocks,
connections, disks), each registered in :data:`raftkube_fuzz.faults.REGISTRY` with how it
is drawn, applied and healed (see the package docstring)."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from hypothesis import strategies as st

from raftkube_fuzz.faults import (
    CLOCK,
    CUT,
    DISK,
    DOWN,
    DUPLICATE,
    LATENCY,
    LOSS,
    PAUSED,
    FaultKind,
    register,
)
from raftkube_fuzz.steps import Step

if TYPE_CHECKING:
    from raftkube_fuzz.example import Run

MAX_CLOCK_DRIFT = 0.5
"""The drift bound every simulated member declares (``MemberConfig.max_clock_drift``)."""
CLOCK_RATES = (0.5, 1.5, 0.75, 1.25)
"""Clock-rate faults stay within :data:`MAX_CLOCK_DRIFT`: a lease read is only promised safe
inside the bound its member declares, and the unmutated code must survive every fault. The
bound is wide (a clock may run at half or one and a half times real speed, as a VM that is
descheduled or catching up might) so that a lease computed without it is wrong by a margin a
fuzzer can find; the members' leases shrink accordingly."""


# --- crash and restart, pause and resume ---------------------------------------------------


def _crash(run: Run, step: Step, m: int) -> None:
    if run.world.up(m):
        run.world.crash(m, step["torn"])
        run.fault("crash", f"crash (torn writes kept: {step['torn']})", m)


def _restart(run: Run, step: Step, m: int) -> None:
    if not run.world.up(m):
        run.world.restart(m)
        run.fault("restart", "restart", m)


def _pause(run: Run, step: Step, m: int) -> None:
    if run.world.up(m) and not run.world.paused(m):
        run.world.pause(m)
        run.fault("pause", "pause (SIGSTOP)", m)


def _resume(run: Run, step: Step, m: int) -> None:
    if run.world.paused(m):
        run.world.resume(m)
        run.fault("resume", "resume", m)


def _resolved(run: Run, step: Step) -> int | None:
    raw = step.get("member")
    return run.world.leader() if raw == "leader" else raw


register(
    FaultKind(
        "crash",
        "crash",
        lambda d: st.builds(
            lambda m, torn: Step.of("crash", member=m, torn=torn),
            d.target,
            st.sampled_from((0, 0, 1, 2)),
        ),
        _crash,
        "restart brings the member back from what its disk synced",
        lambda run, step: (Step.of("restart", member=_resolved(run, step)),),
        opens=DOWN,
    )
)
register(
    FaultKind(
        "restart",
        "crash",
        lambda d: st.builds(lambda m: Step.of("restart", member=m), st.sampled_from(d.down or [0])),
        _restart,
        "it is itself the healing of a crash",
        closes=frozenset({DOWN}),
        needs="down",
        bound=True,
    )
)
register(
    FaultKind(
        "pause",
        "pause",
        lambda d: st.builds(lambda m: Step.of("pause", member=m), d.target),
        _pause,
        "resume lets it go on (its overdue timers fire at once)",
        lambda run, step: (Step.of("resume", member=_resolved(run, step)),),
        opens=PAUSED,
    )
)
register(
    FaultKind(
        "resume",
        "pause",
        lambda d: st.builds(
            lambda m: Step.of("resume", member=m), st.sampled_from(d.paused or [0])
        ),
        _resume,
        "it is itself the healing of a pause",
        closes=frozenset({PAUSED}),
        needs="paused",
        bound=True,
    )
)

# --- partitions ------------------------------------------------------------------------------


def _heal(run: Run, step: Step, m: int) -> None:
    run.world.heal()
    run.fault("heal", "network healed")


def _isolate(run: Run, step: Step, m: int) -> None:
    run.world.isolate(m)
    run.fault("isolate", "isolated from every other member", m)


def _partition(run: Run, step: Step, m: int) -> None:
    minority = list(step["minority"])
    rest = [i for i in range(run.world_config.servers) if i not in minority]
    run.world.partition([minority, rest])
    run.fault("partition", f"partition {minority} | {rest}", members=minority)


def _one_way(run: Run, step: Step, m: int) -> None:
    if step["source"] != step["dest"]:
        run.world.one_way(step["source"], step["dest"])
        run.fault(
            "one_way",
            f"link {step['source']} -> {step['dest']} cut (one way)",
            members=[step["source"], step["dest"]],
        )


def _bridge(run: Run, step: Step, m: int) -> None:
    b = step["member"]
    rest = [i for i in range(run.world_config.servers) if i != b]
    half = len(rest) // 2
    side_a, side_b = rest[:half], rest[half:]
    run.world.bridge(side_a, side_b, b)
    run.fault("bridge", f"bridge: {side_a} and {side_b} meet only through {b}", b, members=rest)


def _by_heal(run: Run, step: Step) -> tuple[Step, ...]:
    return (Step.of("heal"),)


_LINK = "heal unblocks every link"
register(
    FaultKind(
        "heal",
        "partition",
        lambda d: st.just(Step.of("heal")),
        _heal,
        "it is itself the healing of every link fault",
        closes=frozenset({CUT}),
    )
)
register(
    FaultKind(
        "isolate",
        "partition",
        lambda d: st.builds(lambda m: Step.of("isolate", member=m), st.one_of(d.target, d.member)),
        _isolate,
        _LINK,
        _by_heal,
        opens=CUT,
    )
)
register(
    FaultKind(
        "partition",
        "partition",
        lambda d: st.builds(lambda ms: Step.of("partition", minority=sorted(ms)), d.minority),
        _partition,
        _LINK,
        _by_heal,
        opens=CUT,
    )
)
register(
    FaultKind(
        "one_way",
        "partition",
        lambda d: st.builds(lambda s, t: Step.of("one_way", source=s, dest=t), d.member, d.member),
        _one_way,
        _LINK,
        _by_heal,
        opens=CUT,
    )
)
register(
    FaultKind(
        "bridge",
        "partition",
        lambda d: st.builds(lambda m: Step.of("bridge", member=m), d.member),
        _bridge,
        _LINK,
        _by_heal,
        opens=CUT,
    )
)

# --- network-wide settings -------------------------------------------------------------------


def _loss(run: Run, step: Step, m: int) -> None:
    run.world.set_loss(step["p"])
    run.fault("loss", f"loss probability {step['p']}")


def _duplicate(run: Run, step: Step, m: int) -> None:
    run.world.set_duplication(step["p"])
    run.fault("duplicate", f"duplication probability {step['p']}")


def _latency(run: Run, step: Step, m: int) -> None:
    run.world.set_latency(run.world_config.latency_low, step["high"])
    run.fault("latency", f"latency up to {step['high'] * 1000:.0f} ms")


def _default_latency(run: Run, step: Step) -> tuple[Step, ...]:
    high: float = run.world_config.latency_high
    return (Step.of("latency", high=high),)


_SETTING = "the same setting at the world's default replaces it"
register(
    FaultKind(
        "loss",
        "network",
        lambda d: st.builds(lambda p: Step.of("loss", p=p), st.sampled_from((0.0, 0.1, 0.3))),
        _loss,
        _SETTING,
        lambda run, step: (Step.of("loss", p=0.0),),
        opens=LOSS,
    )
)
register(
    FaultKind(
        "duplicate",
        "network",
        lambda d: st.builds(lambda p: Step.of("duplicate", p=p), st.sampled_from((0.0, 0.1, 0.3))),
        _duplicate,
        _SETTING,
        lambda run, step: (Step.of("duplicate", p=0.0),),
        opens=DUPLICATE,
    )
)
register(
    FaultKind(
        "latency",
        "network",
        lambda d: st.builds(
            lambda hi: Step.of("latency", high=hi), st.sampled_from((0.005, 0.02, 0.05))
        ),
        _latency,
        _SETTING,
        _default_latency,
        opens=LATENCY,
    )
)

# --- clocks ----------------------------------------------------------------------------------


def _clock_jump(run: Run, step: Step, m: int) -> None:
    run.world.clock_jump(m, step["seconds"])
    run.fault("clock_jump", f"clock jumps {step['seconds']} s forward", m)


def _clock_rate(run: Run, step: Step, m: int) -> None:
    run.world.clock_rate(m, step["rate"])
    run.fault("clock_rate", f"clock runs at rate {step['rate']}", m)


def skew_clocks(run: Run, member: int) -> None:
    """The worst clock drift the members' bound allows: ``member``'s clock at the slow edge,
    every other one at the fast edge. Aimed at a leader, its lease then runs longest just as
    the followers' election timers run shortest."""
    slow, fast = 1 - MAX_CLOCK_DRIFT, 1 + MAX_CLOCK_DRIFT
    for i in range(run.world_config.servers):
        run.world.clock_rate(i, slow if i == member else fast)
    run.fault("skew", f"clock skew: rate {slow} here, {fast} everywhere else", member)


def _resync(run: Run, step: Step, m: int) -> None:
    run.world.resync_all()
    run.fault("resync", "clocks resynced (rate 1)")


def _by_resync(run: Run, step: Step) -> tuple[Step, ...]:
    return (Step.of("resync"),)


register(
    FaultKind(
        "clock_jump",
        "clock",
        lambda d: st.builds(
            lambda m, s: Step.of("clock_jump", member=m, seconds=s),
            st.one_of(d.target, d.member),
            st.sampled_from((0.05, 0.5, 2.0)),
        ),
        _clock_jump,
        "never undone: local time moved on for good, as after an NTP step",
        opens=CLOCK,
    )
)
register(
    FaultKind(
        "clock_rate",
        "clock",
        lambda d: st.builds(
            lambda m, r: Step.of("clock_rate", member=m, rate=r),
            st.one_of(d.target, d.member),
            st.sampled_from(CLOCK_RATES),
        ),
        _clock_rate,
        "resync sets every clock's rate back to 1",
        _by_resync,
        opens=CLOCK,
    )
)
register(
    FaultKind(
        "skew",
        "clock",
        lambda d: st.builds(lambda m: Step.of("skew", member=m), d.target),
        lambda run, step, m: skew_clocks(run, m),
        "resync sets every clock's rate back to 1",
        _by_resync,
        opens=CLOCK,
    )
)
register(
    FaultKind(
        "resync",
        "clock",
        lambda d: st.just(Step.of("resync")),
        _resync,
        "it is itself the healing of drift",
        closes=frozenset({CLOCK}),
    )
)

# --- connections and disks -------------------------------------------------------------------


def _reset(run: Run, step: Step, m: int) -> None:
    run.world.reset_connections(m)
    run.fault("reset", "every client connection reset", m)


def _disk(run: Run, step: Step, m: int) -> None:
    full = step.kind == "disk_full"
    run.world.disk_fault(m, errno.ENOSPC if full else errno.EROFS)
    run.fault(step.kind, "disk full (ENOSPC)" if full else "data dir read-only (EROFS)", m)


def _disk_freed(run: Run, step: Step, m: int) -> None:
    run.world.disk_fault(m, None)
    run.fault("disk_freed", "disk writable again (a fenced member rejoins once restarted)", m)


def _by_disk_freed(run: Run, step: Step) -> tuple[Step, ...]:
    return (Step.of("disk_freed", member=_resolved(run, step)),)


register(
    FaultKind(
        "reset",
        "connection",
        lambda d: st.builds(lambda m: Step.of("reset", member=m), st.one_of(d.target, d.member)),
        _reset,
        "nothing to undo: clients reconnect (or report an Unknown outcome)",
    )
)
_DISK = "disk_freed makes it writable again; a member it fenced rejoins once restarted"
register(
    FaultKind(
        "disk_full",
        "disk",
        lambda d: st.builds(lambda m: Step.of("disk_full", member=m), d.target),
        _disk,
        _DISK,
        _by_disk_freed,
        opens=DISK,
    )
)
register(
    FaultKind(
        "disk_read_only",
        "disk",
        lambda d: st.builds(lambda m: Step.of("disk_read_only", member=m), d.target),
        _disk,
        _DISK,
        _by_disk_freed,
        opens=DISK,
    )
)
register(
    FaultKind(
        "disk_freed",
        "disk",
        lambda d: st.builds(lambda m: Step.of("disk_freed", member=m), d.member),
        _disk_freed,
        "it is itself the healing of a disk fault",
        closes=frozenset({DISK}),
        bound=True,
    )
)
