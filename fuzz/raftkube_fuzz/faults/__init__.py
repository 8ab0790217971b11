"""The fault registry: every fault a suite can inject, registered once: its name, its family,
the Hypothesis strategy of its arguments, how it is applied to the world, how it heals, and
what the timeline draws for it. The store faults every suite shares are in :mod:`.store`.

Kinds that only one suite injects are registered by that suite's module (the cluster suite's
component faults, ``host_*``, in :mod:`raftkube_fuzz.suites.cluster`); the suites' fault rules
draw from :data:`REGISTRY` (:func:`raftkube_fuzz.suites.base.fault_steps`,
one rule per family), :func:`raftkube_fuzz.suites.base.execute_fault` dispatches through it,
and the timeline's spans (:mod:`raftkube_fuzz.timeline_model`) take the kinds they open and
close from it, so adding a fault is registering one :class:`FaultKind` (a store fault in
:mod:`.store`).

How a fault heals (:attr:`FaultKind.undo`) is the steps that bring the world back to where it
was: a crash by a restart, a link fault by ``heal``, a network setting by the same setting at
the world's default, drift by ``resync``. Two kinds leave something behind by design: a clock
jump's offset stays (an NTP step moves local time for good; ``resync`` ends drift only) and a
member a disk fault fenced stays fenced until it is restarted (as etcd's does). Every fault
is undone at the end of an example by :meth:`World.heal_all
<raftkube_fuzz.world.world.World.heal_all>`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs
from hypothesis import strategies as st

from raftkube_fuzz.steps import Step

if TYPE_CHECKING:
    from raftkube_fuzz.example import Run

DOWN, PAUSED, CUT, CLOCK, DISK = "down", "paused", "cut", "clock", "disk"
"""The classes of span the timeline draws for faults in force (see :attr:`FaultKind.opens`)."""
LOSS, DUPLICATE, LATENCY = "loss", "duplicate", "latency"
NETWORK_WIDE = frozenset({LOSS, DUPLICATE, LATENCY})
"""Span classes that belong to the world's lane, each replaced by the next of its kind."""


@attrs.frozen
class Draws:
    """The argument strategies a fault's :attr:`FaultKind.strategy` builds its step from, for
    a world of ``servers`` members of which ``down`` are crashed and ``paused`` stopped."""

    servers: int
    down: tuple[int, ...]
    paused: tuple[int, ...]
    member: st.SearchStrategy[int]
    """Any member."""
    target: st.SearchStrategy[int | str]
    """A running member or "leader", resolved when the step runs (faults aimed at the
    leader are the ones that matter most, and an index would hit it only by luck); replays
    resolve it identically."""
    minority: st.SearchStrategy[list[int]]

    @classmethod
    def of(cls, servers: int, down: tuple[int, ...], paused: tuple[int, ...]) -> Draws:
        member = st.integers(0, servers - 1)
        running = [i for i in range(servers) if i not in down and i not in paused]
        target: st.SearchStrategy[int | str] = st.sampled_from(["leader", *running])
        minority = st.lists(member, min_size=1, max_size=(servers - 1) // 2, unique=True)
        return cls(servers, down, paused, member, target, minority)


Apply = Callable[["Run", Step, int], None]
"""Applies a fault step to the run's world and records it (``run.fault``); the third argument
is the step's member with "leader" resolved (-1 for a step that names none)."""


def _no_undo(run: Run, step: Step) -> tuple[Step, ...]:
    return ()


@attrs.frozen
class FaultKind:
    """One kind of fault."""

    name: str
    family: str
    """The suite rule that draws it (one rule per family: Hypothesis's swarm testing switches
    whole rules on and off per example)."""
    strategy: Callable[[Draws], st.SearchStrategy[Step]] | None
    """Draws a step of this kind (None: its suite's own rules draw it, reading the world to
    choose, as the cluster suite's component faults do; such a kind is in no base family)."""
    apply: Apply
    heals: str
    """How it heals, in words (for the docs and the trace reader)."""
    undo: Callable[[Run, Step], tuple[Step, ...]] = _no_undo
    """The steps that undo ``step`` (none: it leaves nothing to undo, or undoes itself)."""
    opens: str | None = None
    """The span class the timeline opens for it on the hosts it touched, if any."""
    closes: frozenset[str] = frozenset()
    """The span classes it ends (on the hosts it touched, or everywhere; see the timeline)."""
    needs: str | None = None
    """``down`` or ``paused``: drawn only while some member is in that state."""
    bound: bool = False
    """Whether it ends spans only on the host it names (a restart), not everywhere."""

    def steps(self, draws: Draws) -> st.SearchStrategy[Step]:
        """The strategy of its steps (only for a kind the base rules draw)."""
        if self.strategy is None:
            raise ValueError(f"fault kind {self.name!r} is drawn by its suite's own rules")
        return self.strategy(draws)


REGISTRY: dict[str, FaultKind] = {}
"""Every fault kind by name, in registration order (which is each family's drawing order)."""


def register(kind: FaultKind) -> FaultKind:
    if kind.name in REGISTRY:
        raise ValueError(f"fault kind {kind.name!r} registered twice")
    REGISTRY[kind.name] = kind
    return kind


def families() -> dict[str, tuple[str, ...]]:
    """The kinds the base rules draw (those with a :attr:`FaultKind.strategy`) by family, in
    registration order."""
    found: dict[str, list[str]] = {}
    for kind in REGISTRY.values():
        if kind.strategy is not None:
            found.setdefault(kind.family, []).append(kind.name)
    return {family: tuple(kinds) for family, kinds in found.items()}


SLOW = "slow"
"""The span class of a component whose connections lag (the cluster suite's ``host_slow``)."""

HEAL_ALL = "heal_all"
"""The fault the run records when :meth:`Run.finish <raftkube_fuzz.example.Run.finish>`
undoes everything (not a step a rule draws)."""


def spans() -> tuple[dict[str, str], dict[str, frozenset[str]], frozenset[str]]:
    """What the timeline draws for the registered kinds: the span class each kind opens, the
    classes each kind closes (``heal_all`` closes every one), and the kinds whose closing
    applies only to the hosts they name."""
    opens = {k.name: k.opens for k in REGISTRY.values() if k.opens is not None}
    closes = {k.name: k.closes for k in REGISTRY.values() if k.closes}
    closes[HEAL_ALL] = frozenset({*opens.values(), DOWN, PAUSED, CUT, CLOCK, DISK, SLOW})
    bound = frozenset(k.name for k in REGISTRY.values() if k.bound)
    return opens, closes, bound


# The store's and the cluster suite's kinds (its components' and its cloud API's) register
# themselves on import; importing them last lets them use everything above. All are always
# registered, whichever suite runs, so that the timeline's spans (computed once from the
# registry) know every kind; none imports the components it acts on, only names them.
from raftkube_fuzz.faults import cloud as cloud  # noqa: E402
from raftkube_fuzz.faults import cluster as cluster  # noqa: E402
from raftkube_fuzz.faults import containers as containers  # noqa: E402
from raftkube_fuzz.faults import store as store  # noqa: E402
