"""Honest clocks: production code waits and times out only on its component's own Clock.

Trio has one clock per run. In the simulated world every host has its own (offset, drift,
paused with its process), so a timeout taken from Trio's global clock would let a paused host
time out while frozen, or a drifting one keep global time. Every such read therefore goes
through :mod:`raftkube.clock`; this test scans ``impl/`` so that none creeps back in.
"""

from __future__ import annotations

import ast
from pathlib import Path

IMPL = Path(__file__).resolve().parent.parent / "impl"

ALLOWED = frozenset({"raftkube/clock.py"})
"""Files that may read Trio's clock: the Clock implementation itself."""

FORBIDDEN = frozenset(
    {
        "sleep",
        "sleep_until",
        "move_on_after",
        "move_on_at",
        "fail_after",
        "fail_at",
        "current_time",
        "current_clock",
    }
)
"""Trio functions that read or wait on the run's global clock."""


def dishonest_calls(source: str, filename: str = "<source>") -> list[str]:
    """Every use of a :data:`FORBIDDEN` Trio function in ``source`` (``trio.x``,
    ``trio.lowlevel.x``, ``from trio import x``), and every cancel scope given a Trio deadline
    (``CancelScope(deadline=...)``), as ``file:line: what``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN:
            base = node.value
            names = []
            while isinstance(base, ast.Attribute):
                names.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name) and base.id == "trio":
                dotted = ".".join(["trio", *reversed(names), node.attr])
                found.append(f"{filename}:{node.lineno}: {dotted}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("trio"):
            for alias in node.names:
                if alias.name in FORBIDDEN:
                    found.append(
                        f"{filename}:{node.lineno}: from {node.module} import {alias.name}"
                    )
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "CancelScope" and any(k.arg == "deadline" for k in node.keywords):
                found.append(f"{filename}:{node.lineno}: CancelScope(deadline=...)")
    return found


def test_impl_reads_time_only_through_its_clock() -> None:
    found: list[str] = []
    for path in sorted(IMPL.rglob("*.py")):
        relative = path.relative_to(IMPL).as_posix()
        if relative not in ALLOWED:
            found.extend(dishonest_calls(path.read_text(encoding="utf-8"), relative))
    assert not found, "use raftkube.clock (move_on_after, fail_after, sleep_for, Clock.now):\n" + (
        "\n".join(found)
    )


def test_the_scan_sees_every_form() -> None:
    source = """
import trio
from trio import sleep, Event
async def f(clock):
    await trio.sleep(1)
    with trio.move_on_after(2):
        trio.current_time()
    trio.lowlevel.current_clock()
    with trio.CancelScope(deadline=5):
        pass
    with trio.CancelScope(shield=True):
        await trio.sleep_forever()
"""
    lines = sorted(entry.split(": ", 1)[1] for entry in dishonest_calls(source))
    assert lines == sorted(
        [
            "from trio import sleep",
            "trio.sleep",
            "trio.move_on_after",
            "trio.current_time",
            "trio.lowlevel.current_clock",
            "CancelScope(deadline=...)",
        ]
    )
