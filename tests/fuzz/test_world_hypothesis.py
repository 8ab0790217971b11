"""A Simulation lives across the rules of one Hypothesis example and is torn down after it."""

from __future__ import annotations

from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from raftkube_fuzz.checks.history import History
from raftkube_fuzz.world.client import SimClient
from raftkube_fuzz.world.driver import Simulation
from raftkube_fuzz.world.world import NullListener, World, WorldConfig
from raftkube_spec.kv.requests import PutRequest


class WorldMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sim = Simulation(seed=0)
        self.world = World(WorldConfig(servers=3), 0, NullListener())
        self.sim.start(self.world.run)
        self.client = SimClient(self.world, 0, History())

    @rule(seconds=st.sampled_from([0.05, 0.25]))
    def advance(self, seconds: float) -> None:
        self.sim.advance(seconds)

    @precondition(lambda self: sum(self.world.up(i) for i in range(3)) == 3)
    @rule(member=st.integers(0, 2))
    def crash(self, member: int) -> None:
        self.world.crash(member)

    @rule()
    def heal(self) -> None:
        self.world.heal_all()

    @rule(key=st.binary(min_size=1, max_size=2))
    def put(self, key: bytes) -> None:
        self.sim.call(self.client.request, PutRequest(key, b"v"), member=0, timeout=0.5)

    @invariant()
    def no_failures(self) -> None:
        assert self.world.failures == []

    def teardown(self) -> None:
        self.sim.close()


WorldMachine.TestCase.settings = settings(
    max_examples=5,
    stateful_step_count=8,
    phases=[Phase.generate],
)
test_world_machine = WorldMachine.TestCase
