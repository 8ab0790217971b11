"""The ``raft`` suite: replicated writes and linearizable reads under every fault.

Clients write unique values to a handful of keys and read them back through any member (a
follower redirects to the leader, as a real client library follows the hint), while members
crash with torn writes, pause, lose and duplicate messages, fall into every partition shape and
run on skewed, drifting clocks. Three or five members, ReadIndex or lease reads, and
batches of 1, 4 or 256 entries per AppendEntries (small batches reach log states that big
ones skip, such as a follower acknowledging only an old-term entry). What it leans
on is the Raft layer: every event is checked against the spec as it happens, and the history of
writes and reads must be linearizable.

**Membership changes** (``membership=on``, half the examples): one more host runs a member
outside the initial configuration (the spec's spare), and a rule makes an operator's change
through whoever leads when it runs: add the spare (as a learner or a voter), promote a
learner, remove a member (the leader itself included). Like an operator's script, the change
is retried while there is no leader or the leader refuses it for now (``unavailable``: a change
pending, or no entry of its term committed yet), so it usually reaches a leader just elected,
before its first entry commits: exactly where a leader that skips the own-term rule goes
wrong, and the conformance check sees its change as a step the spec does not allow.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import trio
from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from raftkube.server.member import Member
from raftkube.server.outcomes import MemberError
from raftkube_fuzz.example import Run
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites.base import (
    INITIAL_CLOCK_RATES,
    LEADER_FAULTS,
    MAX_CLOCK_DRIFT,
    MAX_MEMBERS,
    SYNC_LATENCIES,
    Suite,
    SuiteMachine,
    evenly,
    held,
    seeds,
    setting,
    skew_clocks,
    start_load,
    sync_latency,
)
from raftkube_fuzz.world.driver import sleep
from raftkube_fuzz.world.host import MemberProcess
from raftkube_fuzz.world.world import WorldConfig
from raftkube_spec.kv.requests import PutRequest, RangeRequest

KEYS = ("a", "b", "c")
targets: st.SearchStrategy[int | str] = st.one_of(
    st.integers(0, MAX_MEMBERS - 1), st.just("leader")
)
STREAM_GAP = 5 / 1024
"""Virtual seconds between the operations of one repeated step (about 5 ms)."""
LOADS = ("none", "reads", "writes", "both")
"""Background load an example may run under (its ``load`` setting)."""
CLOCKS = ("drawn", "slow_leader")
"""How an example's clocks run (its ``clocks`` setting): at rates drawn per member from the
seed (then changed only by clock faults), or under a nemesis that, whenever leadership
changes, puts the new leader on the slowest clock the drift bound allows and every other
member on the fastest (a clock fault in between may undo that until the next change). That is
the classic lease hazard, and one a leader rarely falls into by itself: the fastest clock
tends to win each election."""


MEMBERSHIP = ("off", "on")
"""Whether an example has a spare member and makes membership changes (its ``membership``
setting)."""
RECONFIG_OPS = ("add_learner", "add_voter", "promote", "remove")
RECONFIG_RETRY = 1 / 1024
"""Virtual seconds between an operator's attempts (about 1 ms): it polls for a leader."""
RECONFIG_ATTEMPTS = 3000
"""How many attempts a change makes before the operator gives up (a few seconds)."""
RETRIED_CODES = frozenset({"not_leader", "unavailable", "timeout"})


def world_config(config: Mapping[str, Any]) -> WorldConfig:
    servers = int(config["servers"])
    defaults: dict[str, Any] = {
        "read_mode": str(config["read_mode"]),
        "max_clock_drift": MAX_CLOCK_DRIFT,
    }
    membership = config.get("membership", "off")
    if membership not in MEMBERSHIP:
        raise ValueError(f"membership must be one of {', '.join(MEMBERSHIP)}, not {membership!r}")
    hosts = servers
    if membership == "on":
        # One spare host: its member starts outside the configuration of ``servers``.
        hosts = servers + 1
        defaults.update(servers=servers, max_members=hosts)
    return WorldConfig(
        servers=hosts,
        max_batch=int(config["max_batch"]),
        clock_rates=INITIAL_CLOCK_RATES,
        member_defaults=defaults,
        sync_latency=sync_latency(config),
    )


def _member(run: Run, step: Step) -> int:
    """The member a client step talks to: an index, or "leader" for a client that knows who
    leads right now (it was just redirected), resolved when the step runs (member 0 if none)."""
    member = step["member"]
    if member == "leader":
        leader = run.world.leader()
        return 0 if leader is None else leader
    return int(member)


def execute_client(run: Run, step: Step) -> bool:
    if step.kind == "write":
        key, value, repeat = step["key"].encode(), step["value"], step.get("repeat", 1)
        if repeat == 1:
            run.spawn_request(PutRequest(key, value.encode()), member=_member(run, step))
        else:
            puts = [PutRequest(key, f"{value}.{i}".encode()) for i in range(repeat)]
            run.spawn_stream(puts, member=_member(run, step), gap=STREAM_GAP)
    elif step.kind == "read":
        run.spawn_stream(
            [RangeRequest(step["key"].encode())] * step["repeat"],
            member=_member(run, step),
            gap=STREAM_GAP,
            serializable=step["serializable"],
        )
    elif step.kind == "reconfigure":
        execute_reconfigure(run, str(step["op"]), int(step["member"]))
    else:
        return False
    return True


def execute_reconfigure(run: Run, op: str, target: int) -> None:
    """An operator's membership change, made through the leader of the moment and retried
    (see the module docstring); it gives up on a refusal that retrying cannot cure (no such
    member, not a learner, no id left, ...)."""

    async def call(member: Member) -> None:
        if op == "promote":
            await member.reconfig.promote(target)
        elif op == "remove":
            await member.reconfig.remove(target)
        else:
            url = f"http://sim-{len(run.world.members)}:2380"
            await member.reconfig.add("spare", (url,), (), op == "add_learner")

    async def change() -> None:
        for _ in range(RECONFIG_ATTEMPTS):
            leader = run.world.leader()
            process = None if leader is None else run.world.hosts[leader].process
            if isinstance(process, MemberProcess) and process.nursery is not None:
                refusal = await served(process, call)
                if refusal is None:
                    return
                if refusal is not CRASHED and refusal.code not in RETRIED_CODES:
                    return
            await sleep(RECONFIG_RETRY)

    patience = RECONFIG_ATTEMPTS * (RECONFIG_RETRY + run.world_config.request_timeout)
    run.spawn_admin(change, limit=patience + 5)


CRASHED = MemberError("unavailable", "the member crashed while serving the change")


async def served(
    process: MemberProcess, call: Callable[[Member], Awaitable[None]]
) -> MemberError | None:
    """Run ``call(member)`` as the member process serves a request: inside its incarnation
    (a crash ends it with the member's own tasks). Returns None on success, the refusal, or
    :data:`CRASHED`."""
    assert process.nursery is not None
    outcome: list[MemberError | None] = []
    done = trio.Event()

    async def serve() -> None:
        try:
            await call(process.member)
            outcome.append(None)
        except MemberError as exc:
            outcome.append(exc)
        finally:
            done.set()

    process.nursery.start_soon(serve)
    await done.wait()
    return outcome[0] if outcome else CRASHED


def prepare(run: Run) -> None:
    """The example's starting conditions: background load (:func:`start_load`) and, with
    ``clocks=slow_leader``, the nemesis that skews each new leader's clock."""
    load = setting(run, "load", LOADS, "none")
    if setting(run, "clocks", CLOCKS, "drawn") == "slow_leader":
        skewed: int | None = None

        def keep_the_leader_slow() -> None:
            nonlocal skewed
            leader = run.world.leader()
            if leader is not None and leader != skewed:
                skew_clocks(run, leader)
                skewed = leader

        run.spawn_periodic(keep_the_leader_slow, every=run.world_config.tick_interval)
    start_load(run, load, KEYS)


class RaftMachine(SuiteMachine):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.membership = False

    @initialize(
        seed=seeds(),
        servers=evenly((3, 5)),
        read_mode=evenly(("read_index", "lease")),
        max_batch=evenly((1, 4, 256)),
        load=evenly(LOADS),
        clocks=evenly(CLOCKS),
        membership=evenly(MEMBERSHIP),
        sync=evenly(tuple(SYNC_LATENCIES)),
    )
    def init(
        self,
        seed: int,
        servers: int,
        read_mode: str,
        max_batch: int,
        load: str,
        clocks: str,
        membership: str,
        sync: str,
    ) -> None:
        config = {"servers": servers, "read_mode": read_mode, "max_batch": max_batch}
        settings = {"load": load, "clocks": clocks, "membership": membership, "sync": sync}
        self.start({**config, **settings}, seed)
        assert self.run is not None
        self.membership = self.run.config.get("membership") == "on"

    @precondition(lambda self: self.membership)
    @rule(op=st.sampled_from(RECONFIG_OPS), member=st.integers(0, MAX_MEMBERS))
    def reconfigure(self, op: str, member: int) -> None:
        """An operator's membership change (module docstring); ``member`` is whom a
        promotion or removal names (an add always adds the spare)."""
        self.apply(Step.of("reconfigure", op=op, member=member % self.servers))

    def _target(self, member: int | str) -> int | str:
        return member if member == "leader" else int(member) % self.servers

    @rule(step=held(evenly(LEADER_FAULTS)))
    def leader_fault(self, step: Step) -> None:
        """The faults that hurt most, aimed at whoever leads when the step runs (Jepsen's
        "kill the leader" and "partition the leader" nemeses): a rule of their own, so they
        come up as often as a client operation rather than once in every few dozen faults.
        Only in this suite: the kv suite's histories around leader changes are what the
        linearizability search finds hardest, and it has client rules enough to dilute."""
        self.apply(step)

    @rule(member=targets, key=st.sampled_from(KEYS), repeat=st.sampled_from((1, 20)))
    def write(self, member: int | str, key: str, repeat: int) -> None:
        """One write, or a stream of them (distinct values, one every few ms): a leader that
        falls mid-stream leaves entries behind on some followers and not others, the state in
        which a new leader must settle entries of an older term."""
        self.writes += 1
        value = f"v{self.writes}"
        self.apply(
            Step.of("write", member=self._target(member), key=key, value=value, repeat=repeat)
        )

    @rule(
        member=targets,
        key=st.sampled_from(KEYS),
        serializable=st.booleans(),
        repeat=st.sampled_from((1, 40)),
    )
    def read(self, member: int | str, key: str, serializable: bool, repeat: int) -> None:
        """One read, or a stream of reads (one every few ms for a while): stale reads hide
        in short windows, such as a deposed leader's lease, that a lone read rarely hits."""
        self.apply(
            Step.of(
                "read",
                member=self._target(member),
                key=key,
                serializable=serializable,
                repeat=repeat,
            )
        )


SUITE = Suite(
    name="raft",
    description="replicated writes and reads through any member, 3 or 5 members, all faults",
    world_config=world_config,
    execute_client=execute_client,
    machine=RaftMachine,
    default_config={
        "servers": 3,
        "read_mode": "read_index",
        "max_batch": 256,
        "load": "none",
        "clocks": "drawn",
        "membership": "off",
        "sync": "instant",
    },
    prepare=prepare,
)
RaftMachine.suite = SUITE
