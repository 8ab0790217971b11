"""What every mutant's behaviour scenario must show, for the ``test_mutants*.py`` modules.

A scenario is a function that exercises the patched method and returns what it did, with the
result expected from the real code and from the mutant: ``(scenario, real, mutated)``. Each
module keeps a ``SCENARIOS`` table of them by mutant name (``tests/fuzz/test_mutants.py``
checks every mutant has one) and runs :func:`check_scenario` on each.
"""

from __future__ import annotations

from collections.abc import Callable

from raftkube_fuzz.mutants import MUTANTS

Scenario = tuple[Callable[[], object], object, object]


def check_scenario(name: str, scenario: Scenario) -> None:
    """The real code gives ``real``; with the mutant patched in the owner's attribute is the
    replacement and the scenario gives ``mutated``; after the patch the original is back and
    gives ``real`` again."""
    run, real, mutated = scenario
    owner, attribute = MUTANTS[name].patch.owner, MUTANTS[name].patch.attribute
    original = owner.__dict__[attribute]
    assert run() == real
    with MUTANTS[name].patch():
        assert owner.__dict__[attribute] is not original
        assert run() == mutated
    assert owner.__dict__[attribute] is original
    assert run() == real
