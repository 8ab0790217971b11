"""Teardown for tests that start real processes: whatever a test leaves running under its
``tmp_path`` (a failed assertion before a stop) is killed, group and all."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest


def kill_leftovers(root: Path) -> None:
    for record in root.glob("**/sandboxes/*/containers/*/container.json"):
        pid = json.loads(record.read_text()).get("pid")
        if pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture(autouse=True)
def no_leftover_processes(tmp_path: Path) -> Iterator[None]:
    yield
    kill_leftovers(tmp_path)
