"""The fault schedule: which faults, when, on whom, for how long; all from one seed.

Jepsen's shape: after a quiet start, rounds of one or two faults held for a while and then
undone, separated by quiet gaps in which the cluster can recover and show it serves again. The
plan is a pure function of ``(seed, duration, servers, kinds)``, so two runs with the same
seed inject the same faults at the same offsets and are comparable; only the member a
``"leader"`` target resolves to depends on the run (which member leads when the fault comes),
and the summary reports where each fault landed.
"""

from __future__ import annotations

import random

import attrs

KINDS = ("kill", "pause", "isolate", "one_way", "bridge", "reset")
"""``kill``: SIGKILL, restarted when undone. ``pause``: SIGSTOP, SIGCONT when undone.
``isolate``: every relay to and from the member cut. ``one_way``: the member's messages to
one other member cut (it still hears everything). ``bridge``: the other members cannot reach
each other, but both still reach this one. ``reset``: every client connection of the member
broken at once (nothing to undo): clients must retry, or report their writes' outcome
unknown."""

WARM_UP = 2.0
"""Seconds of calm before the first fault, so the cluster has a leader and some data."""
HOLD = (1.0, 8.0)
"""How long a fault stays (seconds): from about an election to several."""
GAP = (0.5, 4.0)
"""Quiet time between rounds (seconds)."""
LEADER_SHARE = 0.5
"""Share of the faults aimed at whichever member leads when the fault comes."""


@attrs.frozen
class Fault:
    """One fault: applied ``at`` seconds into the run and undone ``hold`` seconds later.

    ``target`` is a member index or ``"leader"``; ``fallback`` is the member hit when no
    member claims to lead. ``other`` is the second member of a ``one_way`` (its messages'
    destination)."""

    at: float
    kind: str
    target: int | str
    fallback: int
    hold: float
    other: int = -1

    def describe(self) -> str:
        aim = "the leader" if self.target == "leader" else f"member {self.target}"
        extra = f" -> member {self.other}" if self.kind == "one_way" else ""
        return f"{self.kind} {aim}{extra} for {self.hold:.1f} s"


def plan(
    seed: int, duration: float, servers: int, kinds: tuple[str, ...] = KINDS
) -> tuple[Fault, ...]:
    """The faults of a run of ``duration`` seconds over ``servers`` members, in order."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown fault kinds {unknown}: expected some of {', '.join(KINDS)}")
    if not kinds:
        return ()
    rng = random.Random(seed)
    faults: list[Fault] = []
    t = WARM_UP
    while t < duration:
        end = t
        for _ in range(1 if rng.random() < 0.7 else 2):
            kind = rng.choice(kinds)
            fallback = rng.randrange(servers)
            target: int | str = "leader" if rng.random() < LEADER_SHARE else fallback
            hold = round(rng.uniform(*HOLD), 1)
            other = (fallback + rng.randrange(1, servers)) % servers
            faults.append(Fault(round(t, 1), kind, target, fallback, hold, other))
            end = max(end, t + (0.0 if kind == "reset" else hold))  # a reset is instant
        t = end + rng.uniform(*GAP)
    return tuple(faults)
