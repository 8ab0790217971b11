"""The child processes of a local cluster (members, the API server): start, log, watch, stop.

Every child runs in its own session, so a Ctrl-C at the terminal reaches only the launcher,
which then stops the children in the order it chooses. Every child's stdin is a pipe from the
launcher: children that watch it stop by themselves when the launcher dies, even by SIGKILL.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import IO

import attrs
import trio

from raftkube.clock import Clock, move_on_after


def log_line(text: str) -> None:
    """One line on our stderr, flushed at once (the launcher's log interleaves children's)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


@attrs.define(eq=False)
class Child:
    """One running child process; ``name`` (``member 0``, ``apiserver``) is how logs name it."""

    name: str
    process: trio.Process
    stopping: bool = False
    """Set once the launcher itself asked the child to stop, so its exit is not a failure."""


async def spawn(name: str, argv: Sequence[str], output: int | IO[bytes]) -> Child:
    """Start ``argv`` with stdin a pipe from us and stdout and stderr both to ``output``
    (``subprocess.PIPE``, to be read with :func:`pump_log`, or an open file)."""
    process = await trio.lowlevel.open_process(
        list(argv),
        stdin=subprocess.PIPE,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Child(name, process)


async def pump_log(prefix: str, stream: trio.abc.ReceiveStream) -> None:
    """Copy a child's output to our stderr line by line, each line after ``prefix``."""
    buffer = b""
    try:
        while chunk := await stream.receive_some(65536):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                log_line(prefix + line.decode(errors="replace"))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    if buffer:
        log_line(prefix + buffer.decode(errors="replace"))


async def watch_exit(child: Child, failed: trio.Event, who: str) -> None:
    """Set ``failed`` if ``child`` exits without having been asked to; ``who`` names the
    launcher in the line that says so."""
    code = await child.process.wait()
    if child.stopping:
        return
    log_line(f"{who}: {child.name} exited unexpectedly (code {code})")
    failed.set()


async def stop_all(children: Sequence[Child], timeout: float, clock: Clock, who: str) -> bool:
    """SIGTERM every child, wait up to ``timeout`` seconds on ``clock``, then SIGKILL what is
    left; True if all stopped by themselves. Runs shielded: it is what a cancellation runs."""
    clean = True
    with trio.CancelScope(shield=True):
        for c in children:
            c.stopping = True
            if c.process.returncode is None:
                c.process.send_signal(signal.SIGTERM)
        with move_on_after(clock, timeout):
            for c in children:
                await c.process.wait()
        for c in children:
            if c.process.returncode is None:
                clean = False
                log_line(f"{who}: {c.name} ignored SIGTERM; killing it")
                c.process.kill()
                await c.process.wait()
            if c.process.stdin is not None:
                await trio.aclose_forcefully(c.process.stdin)
    return clean
