"""The fuzz suites, by name. A new suite is a module with a ``SUITE`` added here
(docs/writing-a-suite.md)."""

from __future__ import annotations

from raftkube_fuzz.suites.base import Suite
from raftkube_fuzz.suites.cluster import SUITE as CLUSTER
from raftkube_fuzz.suites.kv import SUITE as KV
from raftkube_fuzz.suites.raft import SUITE as RAFT

SUITES: dict[str, Suite] = {s.name: s for s in (RAFT, KV, CLUSTER)}


def get_suite(name: str) -> Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise KeyError(f"no suite named {name!r}; suites: {', '.join(sorted(SUITES))}") from None
