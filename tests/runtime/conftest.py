"""Teardown for tests that start real processes: whatever a test leaves running under its
``tmp_path`` (a failed assertion before a stop) is killed, group and all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.processes import kill_leftovers


@pytest.fixture(autouse=True)
def no_leftover_processes(tmp_path: Path) -> Iterator[None]:
    yield
    kill_leftovers(tmp_path)
