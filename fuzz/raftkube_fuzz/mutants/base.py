"""What a mutant is and how it is patched in; the catalogue is in the sibling modules."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

import attrs

SUITES = ("raft", "kv", "cluster")


@contextlib.contextmanager
def _swap(owner: type | ModuleType, name: str, replacement: Any) -> Iterator[None]:
    """Replace ``owner.name`` (which ``owner`` itself must define) and put it back on exit,
    exactly as it was (the raw class attribute, so a property stays a property). ``owner``
    may be a module, for a plain function its callers look up by its global name."""
    original = owner.__dict__[name]
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


@attrs.frozen
class Patch:
    """What a mutant swaps: ``owner.attribute`` becomes ``replacement`` while the context
    manager a call returns is open. Kept as data so that ``tests/fuzz/test_mutants.py`` can
    diff every replacement against its original without a list of its own."""

    owner: type | ModuleType
    attribute: str
    replacement: Any

    def __call__(self) -> contextlib.AbstractContextManager[None]:
        return _swap(self.owner, self.attribute, self.replacement)


def patch(owner: type | ModuleType, attribute: str, replacement: Any) -> Patch:
    """The patch that swaps ``owner.attribute`` (which ``owner`` itself defines) for
    ``replacement``."""
    return Patch(owner, attribute, replacement)


@attrs.frozen
class Mutant:
    """One named bug: what it is, which suite and property are expected to catch it."""

    name: str
    description: str
    """One line: the bug."""
    suite: str = attrs.field(validator=attrs.validators.in_(SUITES))
    """The suite expected to find it: "raft", "kv" or "cluster"."""
    expected: str
    """The property expected to catch it, e.g. "Conformance" or "Linearizability"."""
    needs_clock_faults: bool
    """Only clock-rate faults can expose it (the suite must run with them on)."""
    patch: Patch
    """Called, a fresh context manager that patches the bug in and restores the original on
    exit."""
    config: Mapping[str, Any] = attrs.field(factory=dict)
    """Suite configuration every example of the mutant's search uses: what the bug needs to be
    reachable at all (lease reads for a lease bug) and the scenario the mutated feature is
    about, as a user would pin it with ``--config`` (for the lease bug: a read load and the
    slow-leader clock nemesis, since a lease only ever answers reads and only drift can
    break it). Steps are always left to the search."""


CONTROL_PLANE: Mapping[str, Any] = {"store_faults": "off", "servers": 1}
"""What every ``cluster`` mutant's search pins, the scenario of a bug in the control plane's
own loops: the store's faults off, and so one store member, since with nothing to fail two
more add only their replication, which costs more than twice the CPU of a whole example
(docs/performance.md), for nothing such a bug needs."""
