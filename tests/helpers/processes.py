"""Real ``raftkube`` processes for tests: free ports, a launcher that writes each process's
output to files and kills every process at teardown, and bounded waits on them.

Every wait is bounded, so a process that hangs fails the test instead of stalling the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import trio


def raftkube_argv() -> list[str]:
    """``python -m raftkube`` once the entry points are installed; until then the cluster
    package's own ``__main__``, which offers the same two commands."""
    names = {e.name for e in entry_points(group="raftkube.commands")}
    if {"member", "up"} <= names:
        return [sys.executable, "-m", "raftkube"]
    return [sys.executable, "-m", "raftkube.cluster"]


def free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out (bound to port 0 at once, so they are distinct)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port_block(count: int) -> int:
    """A base port with ``count`` consecutive free ports, below the ephemeral range."""
    for _ in range(200):
        base = random.randrange(20000, 30000)
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port block")


class Processes:
    """Launches ``raftkube`` commands with output to files, and kills all of them at teardown.

    Each process carries its files as ``out_path`` and ``err_path``; ``out`` and ``err`` read
    them.
    """

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []
        self.count = 0

    def start(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        self.count += 1
        out = open(self.tmp_path / f"{name}.{self.count}.out", "wb")  # noqa: SIM115
        err = open(self.tmp_path / f"{name}.{self.count}.err", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            raftkube_argv() + args, stdout=out, stderr=err, stdin=subprocess.PIPE
        )
        out.close()
        err.close()
        proc.out_path = out.name  # type: ignore[attr-defined]
        proc.err_path = err.name  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def out(self, proc: subprocess.Popen[bytes]) -> str:
        return Path(proc.out_path).read_text()  # type: ignore[attr-defined]

    def err(self, proc: subprocess.Popen[bytes]) -> str:
        return Path(proc.err_path).read_text()  # type: ignore[attr-defined]

    def kill_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            if p.stdin is not None:
                p.stdin.close()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    ps = Processes(tmp_path)
    try:
        yield ps
    finally:
        ps.kill_all()


async def wait_exit(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    with trio.fail_after(timeout):
        while proc.poll() is None:
            await trio.sleep(0.05)
    return proc.returncode


async def wait_up(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> str:
    """``raftkube up``'s ready message, once printed."""
    out = Path(proc.out_path)  # type: ignore[attr-defined]
    with trio.fail_after(timeout):
        while "press Ctrl-C to stop" not in out.read_text():
            if proc.poll() is not None:
                err = Path(proc.err_path).read_text()  # type: ignore[attr-defined]
                raise AssertionError(f"up exited with {proc.returncode}: {err}")
            await trio.sleep(0.05)
    return out.read_text()


def kill_leftovers(root: Path) -> None:
    """Kill (group and all) every container process the process runtime recorded under
    ``root``: what a test that failed before stopping its containers leaves running."""
    for record in root.glob("**/sandboxes/*/containers/*/container.json"):
        pid = json.loads(record.read_text()).get("pid")
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
