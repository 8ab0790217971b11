"""The same seed gives the same run: event for event, in one process and in a fresh one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.determinism import scenario

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("wire", [False, True])
def test_same_seed_same_run_in_one_process(wire: bool) -> None:
    first = scenario(5, wire)
    assert scenario(5, wire) == first
    assert scenario(6, wire) != first


@pytest.mark.parametrize("wire", [False, True])
def test_same_seed_same_run_in_a_fresh_process(wire: bool) -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from tests.helpers.determinism import scenario;"
        "print(scenario(5, sys.argv[2] == 'wire'));"
        "print('hypothesis' in sys.modules)"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), "wire" if wire else "direct"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    digest, hypothesis_loaded = out.stdout.split()
    assert hypothesis_loaded == "False"  # the replay sets up determinism on its own
    assert digest == scenario(5, wire)
