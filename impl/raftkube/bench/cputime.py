"""CPU seconds used by a benchmark's own process and the processes it started, read from
``/proc`` (Linux; elsewhere nothing is read and the report leaves the table out).

Wall-clock figures on a shared machine say as much about the neighbours as about the code; the
CPU time each component spent on a phase says where the work went, whatever the load.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import attrs

PROC = Path("/proc")


def _ticks_per_second() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        return 100


def _stat_fields(pid: str) -> list[str] | None:
    """``/proc/PID/stat`` after the command name (which may hold spaces), or None if gone."""
    try:
        text = (PROC / pid / "stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def component_name(argv: list[str]) -> str:
    """How the report names a process: ``python -m raftkube.cluster X`` is ``X`` (``member N``
    for a member), anything else its program's name."""
    if len(argv) > 3 and argv[1:3] == ["-m", "raftkube.cluster"]:
        name = argv[3]
        if name == "member" and "--id" in argv:
            return f"member {argv[argv.index('--id') + 1]}"
        return name
    return Path(argv[0]).name if argv else "?"


def sample(parent: int | None = None) -> dict[str, float]:
    """CPU seconds (user + system) so far of every live child of ``parent`` (default: this
    process), by :func:`component_name`, and of this process as ``bench``."""
    parent = os.getpid() if parent is None else parent
    times = os.times()
    out = {"bench": times.user + times.system}
    if not PROC.is_dir():
        return out
    tick = _ticks_per_second()
    for entry in sorted(PROC.iterdir(), key=lambda p: p.name):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry.name)
        # After the name: state(0) ppid(1) ... utime(11) stime(12).
        if fields is None or len(fields) < 13 or fields[1] != str(parent):
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        name = component_name([a.decode(errors="replace") for a in argv if a])
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


@attrs.frozen
class CPUTable:
    """CPU seconds per component for each phase (the difference of two samples)."""

    phases: tuple[str, ...]
    seconds: Mapping[str, tuple[float, ...]]

    @classmethod
    def between(cls, phases: tuple[str, ...], samples: list[dict[str, float]]) -> CPUTable:
        """``samples`` are taken at the phases' boundaries (one more than ``phases``)."""
        assert len(samples) == len(phases) + 1
        names = sorted({n for s in samples for n in s})
        table = {
            name: tuple(
                max(0.0, samples[i + 1].get(name, 0.0) - samples[i].get(name, 0.0))
                for i in range(len(phases))
            )
            for name in names
        }
        return cls(phases, table)

    def render(self) -> list[str]:
        width = max([len(n) for n in self.seconds] + [5])
        head = "".join(f"{p:>10}" for p in self.phases)
        lines = [f"    {'':<{width}}{head}"]
        for name, row in self.seconds.items():
            lines.append(f"    {name:<{width}}" + "".join(f"{v:>10.1f}" for v in row))
        totals = [sum(row[i] for row in self.seconds.values()) for i in range(len(self.phases))]
        lines.append(f"    {'total':<{width}}" + "".join(f"{v:>10.1f}" for v in totals))
        return lines


def members_between(before: dict[str, float], after: dict[str, float]) -> float:
    """CPU seconds the ``member N`` processes spent between two :func:`sample` s."""
    return sum(
        max(0.0, seconds - before.get(name, 0.0))
        for name, seconds in after.items()
        if name.startswith("member ")
    )
