"""The fuzz suites, by name. A new suite is a module with a ``SUITE`` added to :data:`MODULES`
(docs/writing-a-suite.md).

A suite's module is imported only when the suite is asked for: the cluster suite brings in the
whole control plane (API server, controllers, kubelet, proxy), which a ``kv`` or ``raft`` run
would otherwise import, and Hypothesis then scans every imported project module for constants
at the start of each process (seconds of CPU for the whole tree).
"""

from __future__ import annotations

import importlib

from raftkube_fuzz.suites.base import Suite

MODULES: dict[str, str] = {
    "raft": "raftkube_fuzz.suites.raft",
    "kv": "raftkube_fuzz.suites.kv",
    "cluster": "raftkube_fuzz.suites.cluster",
}
"""Every suite's name and the module that defines it as ``SUITE``."""

SUITE_NAMES: tuple[str, ...] = tuple(MODULES)


def get_suite(name: str) -> Suite:
    """The suite called ``name``, its module imported on first use."""
    try:
        module = MODULES[name]
    except KeyError:
        raise KeyError(f"no suite named {name!r}; suites: {', '.join(sorted(MODULES))}") from None
    suite = importlib.import_module(module).SUITE
    assert isinstance(suite, Suite) and suite.name == name, module
    return suite
