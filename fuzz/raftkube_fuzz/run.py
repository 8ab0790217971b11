"""The old name of :mod:`raftkube_fuzz.example`, kept only while ``suites/cluster.py`` (being
changed by another engineer at the time of the rename) still imports ``Run`` from here; new
code imports from :mod:`raftkube_fuzz.example`."""

from raftkube_fuzz.example import Run, run_steps

__all__ = ["Run", "run_steps"]
