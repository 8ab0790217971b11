"""Crash-loop back-off: upstream's ``flowcontrol.Backoff`` as the kubelet uses it.

Per container (pod uid and container name) a delay starts at 10 s and doubles on each
restart to at most 300 s; a container restarts only once its delay has passed since it last
exited, so restarts come at once, then 10 s, 20 s, 40 s... apart. An entry left alone for
twice the maximum is forgotten, so a container that ran well for ten minutes starts over.
Times are readings of the kubelet's clock.
"""

from __future__ import annotations

import attrs

INITIAL = 10.0
MAXIMUM = 300.0


@attrs.define
class _Entry:
    delay: float
    last_update: float


@attrs.define
class CrashLoopBackOff:
    initial: float = INITIAL
    maximum: float = MAXIMUM
    _entries: dict[str, _Entry] = attrs.field(factory=dict)

    def _expired(self, entry: _Entry, now: float) -> bool:
        return now - entry.last_update > 2 * self.maximum

    def until(self, key: str, finished_at: float, now: float) -> float | None:
        """When a container that exited at ``finished_at`` may restart, if it is in back-off
        now (``IsInBackOffSince``: ``now`` before ``finished_at`` plus the delay), else None.

        An instant, not the seconds left: the caller waits for it and then asks again, and
        ``now`` read at that instant is at least it, so the answer is then None. Seconds left
        added back to ``now`` could round to a wait of nothing that is never over (float
        arithmetic, unlike upstream's integer nanoseconds)."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            return None
        ready = finished_at + entry.delay
        return ready if now < ready else None

    def delay(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def next(self, key: str, now: float) -> None:
        """Record a restart: the next one waits twice as long."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            self._entries[key] = _Entry(self.initial, now)
        else:
            entry.delay = min(entry.delay * 2, self.maximum)
            entry.last_update = now

    def forget(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]


def go_duration(seconds: float) -> str:
    """A delay as Go's ``time.Duration.String`` prints whole seconds (``10s``, ``5m0s``)."""
    whole = int(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"
