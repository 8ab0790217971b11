"""Automatic compaction as etcd offers it (``--auto-compaction-mode``/``-retention``).

Without compaction every revision ever written stays in the MVCC store, in every snapshot image
and in the memory of every member. etcd's answer, copied here:

* **periodic** (etcd's default mode): keep a window of history of one retention period. The
  compactor samples the store's revision every tenth of the period (every 6 minutes for periods
  over an hour) and, once per period (at most once an hour), compacts at the revision it sampled
  one period ago. ``--auto-compaction-retention`` is a Go duration (``30m``, ``1h30m``,
  ``500ms``) or a bare number of hours (``72``).
* **revision**: every 5 minutes, compact at ``current revision - retention`` (a bare number of
  revisions).

A retention of 0 disables automatic compaction (etcd's default). As in etcd the compactor runs
on the leader only (paused while following) and proposes an ordinary ``CompactionRequest``
through Raft, so every member compacts at the same revision, at the same point of the log. A
proposal that fails (lost leadership, a timeout) is retried at the next check; one refused as
already compacted counts as done, as etcd treats ``ErrCompacted``.

Time is read from the member's :class:`~raftkube.clock.Clock`, so under simulation compaction
follows virtual time. The decision logic (:class:`PeriodicSchedule`, :class:`RevisionSchedule`)
is synchronous and clock-free so it can be tested step by step; :func:`run_auto_compaction`
is the loop that drives it.

Simplification: etcd also accepts a duration in revision mode (and reads it as a count of
nanoseconds); here revision mode takes only a whole number, and anything else is refused with
an error naming the flag.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Awaitable, Callable

import attrs

PERIODIC = "periodic"
REVISION = "revision"
MODES = (PERIODIC, REVISION)

REVISION_INTERVAL = 300.0
"""etcd's ``revInterval``: how often revision mode compacts (5 minutes)."""

_HOUR = 3600.0
_RETRY_DIVISOR = 10
"""etcd samples the revision (and retries a failed compaction) ten times per period."""

_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
_GO_UNITS["h"] = _HOUR
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class CompactionConfigError(ValueError):
    """A bad ``--auto-compaction-mode`` or ``--auto-compaction-retention``."""


def parse_go_duration(text: str) -> float:
    """Seconds in a Go ``time.ParseDuration`` string (``1h30m``, ``500ms``, ``0``)."""
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise ValueError(f"time: invalid duration {text!r}")
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if pos == 0:
        raise ValueError(f"time: invalid duration {text!r}")
    return total


@attrs.frozen
class AutoCompaction:
    """What the flags ask for: ``retention`` is seconds (periodic) or revisions (revision)."""

    mode: str = attrs.field(default=PERIODIC, validator=attrs.validators.in_(MODES))
    retention: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))

    @property
    def enabled(self) -> bool:
        return self.retention > 0

    @classmethod
    def parse(cls, mode: str, retention: str) -> AutoCompaction:
        """etcd's reading of the two flags; raises :class:`CompactionConfigError`."""
        if mode not in MODES:
            raise CompactionConfigError(
                f"unsupported --auto-compaction-mode {mode!r} (use periodic or revision)"
            )
        text = retention.strip()
        if text.isdigit():
            count = int(text)
            return cls(mode, float(count) * _HOUR if mode == PERIODIC else float(count))
        if mode == REVISION:
            raise CompactionConfigError(
                f"invalid --auto-compaction-retention {retention!r}: revision mode takes a "
                "number of revisions to keep"
            )
        try:
            seconds = parse_go_duration(text)
        except ValueError as exc:
            raise CompactionConfigError(
                f"invalid --auto-compaction-retention {retention!r}: {exc} "
                "(a duration such as 30m or 1h, or a number of hours)"
            ) from None
        return cls(mode, seconds)

    def check_interval(self) -> float:
        """Seconds between two looks at the store (and between retries)."""
        if self.mode == REVISION:
            return REVISION_INTERVAL
        return min(self.retention, _HOUR) / _RETRY_DIVISOR

    def schedule(self, now: float) -> PeriodicSchedule | RevisionSchedule:
        if self.mode == REVISION:
            return RevisionSchedule(int(self.retention))
        return PeriodicSchedule(self.retention, started=now)


@attrs.define
class PeriodicSchedule:
    """etcd's periodic compactor: call :meth:`sample` every ``check_interval`` seconds.

    ``revs`` holds the revisions sampled over the last period, oldest first, so ``revs[0]`` is
    the revision one period ago. The first compaction waits one whole period after start (or
    after the last success); later ones come every ``min(period, 1h)``.
    """

    period: float
    started: float
    revs: deque[int] = attrs.Factory(deque)
    last_revision: int = 0
    last_success: float = attrs.field(init=False)
    base_interval: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.last_success = self.started
        self.base_interval = self.period

    @property
    def retentions(self) -> int:
        return int(self.period / (min(self.period, _HOUR) / _RETRY_DIVISOR)) + 1

    def sample(self, revision: int) -> None:
        """Record the store's revision now (done whether leading or not, as etcd does)."""
        self.revs.append(revision)
        while len(self.revs) > self.retentions:
            self.revs.popleft()

    def due(self, now: float, current: int) -> int | None:
        """The revision to compact at now, or None (``current`` is unused: the periodic
        compactor compacts at what it sampled one period ago)."""
        if not self.revs:
            return None
        rev = self.revs[0]
        if now - self.last_success < self.base_interval or rev == self.last_revision:
            return None
        self.base_interval = min(self.period, _HOUR)
        return rev

    def done(self, revision: int, now: float) -> None:
        self.last_revision, self.last_success = revision, now


@attrs.define
class RevisionSchedule:
    """etcd's revision compactor: every check, compact at ``revision - retention``."""

    retention: int
    last_revision: int = 0

    def sample(self, revision: int) -> None:
        """Nothing to record: revision mode looks only at the current revision."""

    def due(self, now: float, current: int) -> int | None:
        rev = current - self.retention
        if rev <= 0 or rev == self.last_revision:
            return None
        return rev

    def done(self, revision: int, now: float) -> None:
        self.last_revision = revision


Compact = Callable[[int], Awaitable[bool]]
"""Proposes a compaction at a revision; True once it is applied or was already compacted."""


async def run_auto_compaction(
    config: AutoCompaction,
    *,
    now: Callable[[], float],
    sleep_until: Callable[[float], Awaitable[None]],
    revision: Callable[[], int],
    leading: Callable[[], bool],
    compact: Compact,
) -> None:
    """Drive ``config``'s schedule forever (the caller cancels it); returns at once if
    compaction is disabled."""
    if not config.enabled:
        return
    schedule = config.schedule(now())
    interval = config.check_interval()
    next_check = now()
    while True:
        schedule.sample(revision())
        next_check += interval
        await sleep_until(next_check)
        next_check = max(next_check, now() - interval)
        if not leading():
            continue
        rev = schedule.due(now(), revision())
        if rev is not None and await compact(rev):
            schedule.done(rev, now())
