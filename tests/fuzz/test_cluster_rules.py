"""The cluster suite's rule set: with ``store_faults=off`` the store's fault rules are not
drawn at all (a precondition), rather than drawn and doing nothing, which took a step each."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis.stateful import RULE_MARKER

from raftkube_fuzz.suites.cluster import ClusterMachine

STORE_FAULT_RULES = (
    "crash_fault",
    "pause_fault",
    "network_fault",
    "clock_fault",
    "partition_fault",
)


@pytest.mark.parametrize(("setting", "drawn"), [("off", False), ("on", True)])
def test_the_store_fault_rules_are_drawn_only_with_store_faults_on(
    setting: str, drawn: bool
) -> None:
    machine = SimpleNamespace(run=SimpleNamespace(config={"store_faults": setting}))
    machine._store_faults = lambda: ClusterMachine._store_faults(machine)  # type: ignore[arg-type]
    for name in STORE_FAULT_RULES:
        rule = getattr(getattr(ClusterMachine, name), RULE_MARKER)
        assert rule.preconditions, name
        assert all(p(machine) for p in rule.preconditions) is drawn, name
    # The control plane's own fault rules stay drawn either way.
    assert not getattr(ClusterMachine.component_crash, RULE_MARKER).preconditions
