"""A kv or raft fuzz run imports no control-plane module.

Hypothesis draws constants from the source of every project module imported when it
generates (its per-process scan of local modules), so a store suite importing the control
plane pays that scan and draws from constants of code it never runs. This has regressed
once through an import at the top of a fault module the registry always loads."""

from __future__ import annotations

import subprocess
import sys

CONTROL_PLANE = (
    "raftkube.apiserver",
    "raftkube.controllers",
    "raftkube.kubeclient",
    "raftkube.kubelet",
    "raftkube.runtime",
    "raftkube.scheduler",
    "raftkube_fuzz.cluster",
    "raftkube_fuzz.suites.cluster",
)

PROGRAM = f"""
import sys
import raftkube_fuzz.cli
import raftkube_fuzz.faults
import raftkube_fuzz.suite_runner
from raftkube_fuzz.suites import get_suite
get_suite("kv")
get_suite("raft")
print(sorted(m for m in sys.modules if m.startswith({CONTROL_PLANE!r})))
"""


def test_the_store_suites_import_no_control_plane_module() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
