"""The ``kv`` suite: the whole etcd-style KV API under every fault and clock skew.

Puts (with and without leases), point and prefix reads (linearizable and serializable, at the
current or an older revision), deletes, compare-and-swap transactions, compaction, lease grant,
revoke and keep-alive, and watches from a chosen revision, all from concurrent clients through
any member. Leases expire by the leader's clock, so clock jumps and drift move expiry around;
watches may start below a compaction. The whole history must be linearizable against the
spec's KV model, every watch must deliver its range's events exactly once and in order (or say
it was compacted), and members that applied the same index must hold the same state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from raftkube_fuzz.example import Run
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites.base import (
    INITIAL_CLOCK_RATES,
    MAX_CLOCK_DRIFT,
    MAX_MEMBERS,
    SYNC_LATENCIES,
    Suite,
    SuiteMachine,
    evenly,
    seeds,
    setting,
    start_load,
    sync_latency,
)
from raftkube_fuzz.world.world import WorldConfig
from raftkube_spec.kv.keyrange import prefix_range_end
from raftkube_spec.kv.requests import (
    CompactionRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    PutRequest,
    RangeRequest,
    Request,
    TxnRequest,
)

KEYS = ("k0", "k1", "k2", "k3")
PREFIX = "k"
LEASES = (1, 2, 3)
TTLS = (1, 2, 4)
"""Lease TTLs in seconds: short enough to expire inside one example."""

LOADS = ("none", "writes")
"""Background load an example may run under (its ``load`` setting): none, or one client
putting to the keys in turn every 10 ms for the whole example, so that revisions pile up
(compactions and watches from old revisions have something to cut and to replay) and every
fault lands on writes in flight."""

member_ids = st.integers(0, MAX_MEMBERS - 1)
keys = st.sampled_from(KEYS)
revisions = st.integers(0, 40)
WATCH_ORIGINS = ("now", "newest", "compaction")
"""Where a watch starts: the next revision, a few before the newest, or just below the
latest compaction."""


def world_config(config: Mapping[str, Any]) -> WorldConfig:
    return WorldConfig(
        servers=int(config["servers"]),
        snapshot_every=int(config["snapshot_every"]),
        clock_rates=INITIAL_CLOCK_RATES,
        member_defaults={
            "read_mode": str(config["read_mode"]),
            "max_clock_drift": MAX_CLOCK_DRIFT,
        },
        sync_latency=sync_latency(config),
    )


def _key_range(step: Step) -> tuple[bytes, bytes]:
    key = step["key"].encode()
    return (key, prefix_range_end(key)) if step.get("prefix", False) else (key, b"")


def request_of(step: Step) -> Request | None:
    """The KV request a client step sends (None: not a request step)."""
    kind = step.kind
    if kind == "put":
        return PutRequest(step["key"].encode(), step["value"].encode(), lease=step["lease"])
    if kind == "get":
        key, end = _key_range(step)
        return RangeRequest(
            key,
            end,
            limit=step["limit"],
            revision=step["revision"],
            keys_only=step["keys_only"],
            count_only=step["count_only"],
        )
    if kind == "delete":
        key, end = _key_range(step)
        return DeleteRangeRequest(key, end, prev_kv=True)
    if kind == "txn":
        key = step["key"].encode()
        guard = (
            Compare(key, CompareTarget.MOD, CompareResult.EQUAL, step["mod_revision"])
            if step["on"] == "mod"
            else Compare(key, CompareTarget.VALUE, CompareResult.EQUAL, step["value"].encode())
        )
        return TxnRequest(
            compare=(guard,),
            success=(PutRequest(key, step["new_value"].encode()),),
            failure=(RangeRequest(key),),
        )
    if kind == "compact":
        return CompactionRequest(step["revision"])
    if kind == "lease_grant":
        return LeaseGrantRequest(step["lease"], step["ttl"], 0)
    if kind == "lease_revoke":
        return LeaseRevokeRequest(step["lease"])
    if kind == "lease_keepalive":
        return LeaseKeepAliveRequest(step["lease"], 0)
    return None


def execute_client(run: Run, step: Step) -> bool:
    if step.kind == "watch":
        key, end = _key_range(step)
        run.spawn_watch(member=step["member"], key=key, range_end=end, start=step["revision"])
        return True
    request = request_of(step)
    if request is None:
        return False
    run.spawn_request(request, member=step["member"], serializable=step.get("serializable", False))
    return True


def prepare(run: Run) -> None:
    start_load(run, setting(run, "load", LOADS, "none"), KEYS)


class KvMachine(SuiteMachine):
    def __init__(self) -> None:
        super().__init__()
        self.values = 0

    def _value(self) -> str:
        self.values += 1
        return f"v{self.values}"

    def _member(self, m: int) -> int:
        return m % self.servers

    @initialize(
        seed=seeds(),
        servers=evenly((3, 5)),
        read_mode=evenly(("read_index", "lease")),
        snapshot_every=evenly((16, 64)),
        load=evenly(LOADS),
        sync=evenly(tuple(SYNC_LATENCIES)),
    )
    def init(
        self, seed: int, servers: int, read_mode: str, snapshot_every: int, load: str, sync: str
    ) -> None:
        config = {"servers": servers, "read_mode": read_mode, "snapshot_every": snapshot_every}
        self.start({**config, "load": load, "sync": sync}, seed)

    @rule(data=st.data())
    def connection_fault(self, data: st.DataObject) -> None:
        """Reset every client connection of a member (both ends see an RST): requests in
        flight on them must be retried, or reported of unknown outcome."""
        self._fault(data, "connection")

    @rule(data=st.data())
    def disk_fault(self, data: st.DataObject) -> None:
        """Fill a member's disk or make its data dir read-only, or make it writable again:
        the member must fence itself at its next sync (refuse writes by name, serve
        serializable reads) and lose no acknowledged write; a crash and restart (or the
        final heal) brings it back from what is durable."""
        self._fault(data, "disk")

    @rule(member=member_ids, key=keys, lease=st.sampled_from((0, 0, *LEASES)))
    def put(self, member: int, key: str, lease: int) -> None:
        self.apply(
            Step.of("put", member=self._member(member), key=key, value=self._value(), lease=lease)
        )

    @rule(
        member=member_ids,
        key=keys,
        prefix=st.booleans(),
        serializable=st.booleans(),
        revision=st.one_of(st.just(0), revisions),
        limit=st.sampled_from((0, 0, 1, 2)),
        keys_only=st.booleans(),
        count_only=st.booleans(),
    )
    def get(
        self,
        member: int,
        key: str,
        prefix: bool,
        serializable: bool,
        revision: int,
        limit: int,
        keys_only: bool,
        count_only: bool,
    ) -> None:
        self.apply(
            Step.of(
                "get",
                member=self._member(member),
                key=PREFIX if prefix else key,
                prefix=prefix,
                serializable=serializable,
                revision=revision,
                limit=limit,
                keys_only=keys_only,
                count_only=count_only,
            )
        )

    @rule(member=member_ids, key=keys, prefix=st.booleans())
    def delete(self, member: int, key: str, prefix: bool) -> None:
        self.apply(
            Step.of(
                "delete", member=self._member(member), key=PREFIX if prefix else key, prefix=prefix
            )
        )

    @rule(
        member=member_ids,
        key=keys,
        on=st.sampled_from(("mod", "value")),
        mod_revision=revisions,
        value=st.integers(0, 8),
    )
    def txn(self, member: int, key: str, on: str, mod_revision: int, value: int) -> None:
        self.apply(
            Step.of(
                "txn",
                member=self._member(member),
                key=key,
                on=on,
                mod_revision=mod_revision,
                value=f"v{value}",
                new_value=self._value(),
            )
        )

    def _revision_back(self, back: int) -> int:
        """The revision ``back`` before the newest any member holds (at least 1): compactions
        and watches are only interesting near revisions that exist, and a number drawn
        blindly is mostly in the future (a compaction refused) or long compacted."""
        assert self.run is not None
        members = [m for m in self.run.world.members if m is not None]
        newest = max((m.mvcc.revision for m in members), default=1)
        return max(1, newest - back)

    @rule(member=member_ids, back=st.integers(0, 6))
    def compact(self, member: int, back: int) -> None:
        revision = self._revision_back(back)
        self.apply(Step.of("compact", member=self._member(member), revision=revision))

    @rule(member=member_ids, lease=st.sampled_from(LEASES), ttl=st.sampled_from(TTLS))
    def lease_grant(self, member: int, lease: int, ttl: int) -> None:
        self.apply(Step.of("lease_grant", member=self._member(member), lease=lease, ttl=ttl))

    @rule(member=member_ids, lease=st.sampled_from(LEASES))
    def lease_revoke(self, member: int, lease: int) -> None:
        self.apply(Step.of("lease_revoke", member=self._member(member), lease=lease))

    @rule(member=member_ids, lease=st.sampled_from(LEASES))
    def lease_keepalive(self, member: int, lease: int) -> None:
        self.apply(Step.of("lease_keepalive", member=self._member(member), lease=lease))

    def _below_compaction(self, member: int, back: int) -> int:
        """A revision ``back + 1`` below the compaction ``member`` applied last (the highest
        any member applied if it is down; near the newest if nothing is compacted yet). A
        watch from there must be refused as compacted: drawn from the newest revision, such a
        start is rare, since revisions keep coming after a compaction and ten back from the
        newest is soon above it."""
        assert self.run is not None
        members = self.run.world.members
        own = members[member] if member < len(members) else None
        compacted = (
            own.mvcc.compact_revision
            if own is not None
            else max((m.mvcc.compact_revision for m in members if m is not None), default=0)
        )
        if compacted <= 1:
            return self._revision_back(back)
        return max(1, compacted - 1 - back)

    @rule(
        member=member_ids,
        key=keys,
        prefix=st.booleans(),
        origin=evenly(WATCH_ORIGINS),
        back=st.integers(0, 10),
    )
    def watch(self, member: int, key: str, prefix: bool, origin: str, back: int) -> None:
        """A watch from now, from up to ten revisions before the newest, or from just below
        the latest compaction (which a watcher resuming from an old revision meets, and which
        must end the watch as compacted rather than skip what was compacted away)."""
        member = self._member(member)
        if origin == "now":
            revision = 0
        elif origin == "newest":
            revision = self._revision_back(back)
        else:
            revision = self._below_compaction(member, back)
        self.apply(
            Step.of(
                "watch",
                member=member,
                key=PREFIX if prefix else key,
                prefix=prefix,
                revision=revision,
            )
        )


SUITE = Suite(
    name="kv",
    description="the whole KV API (txn, watch, leases, compaction) under all faults and skew",
    world_config=world_config,
    execute_client=execute_client,
    machine=KvMachine,
    default_config={
        "servers": 3,
        "read_mode": "read_index",
        "snapshot_every": 64,
        "load": "none",
        "sync": "instant",
    },
    prepare=prepare,
    wire_clients=True,
)
KvMachine.suite = SUITE
