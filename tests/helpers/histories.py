"""Random KV histories that are linearizable by construction, for testing the checker.

Each client issues operations one after another; every applied operation gets a
linearization point inside its interval (after its call, anywhere, for an Unknown outcome),
and the spec applies the operations in point order to produce the recorded results. Lease
requests are applied with a clock reading derived from the point, as a member would stamp
them, while the history records the client's request (``now_ms`` 0, id 0 when the leader
picks it): exactly the information gap the checker has to bridge.
"""

from __future__ import annotations

import random

import attrs

import raftkube_spec.kv as kv
from raftkube_fuzz.checks.history import Failed, History, Ok, Unknown, to_json

KEYS = (b"a", b"b", b"c")


@attrs.frozen
class _Planned:
    client: int
    call: float
    ret: float
    point: float | None
    kind: str  # "ok", "unknown" (may stay pending), "failed"


def _request(
    rnd: random.Random, state: kv.KVState, index: int, leases: bool
) -> tuple[kv.Request, kv.Request]:
    """(what the client records, what the leader applies)."""
    key = rnd.choice(KEYS)
    roll = rnd.randrange(12 if leases else 8)
    if roll == 0:
        return (kv.RangeRequest(b"a", b"d"),) * 2
    if roll in (1, 2):
        return (kv.RangeRequest(key),) * 2
    if roll == 3:
        return (kv.DeleteRangeRequest(key, prev_kv=rnd.random() < 0.5),) * 2
    if roll == 4:
        guard = kv.Compare(key, kv.CompareTarget.VALUE, kv.CompareResult.EQUAL, b"1")
        txn = kv.TxnRequest((guard,), (kv.PutRequest(key, b"2"),), (kv.RangeRequest(key),))
        return txn, txn
    if roll == 5 and rnd.random() < 0.3:
        compaction = kv.CompactionRequest(max(1, state.revision - rnd.randrange(3)))
        return compaction, compaction
    if roll <= 7:
        lease = 0
        if leases and state.leases and rnd.random() < 0.3:
            lease = rnd.choice(state.leases).id
        req = kv.PutRequest(key, rnd.choice((b"1", b"2", b"3")), lease=lease, prev_kv=True)
        return req, req
    now = int(index * 20)
    lease_id = rnd.randrange(1, 4)
    if roll == 8:
        ttl = rnd.randrange(1, 4)
        if rnd.random() < 0.5:
            return kv.LeaseGrantRequest(0, ttl, 0), kv.LeaseGrantRequest(100 + index, ttl, now)
        return kv.LeaseGrantRequest(lease_id, ttl, 0), kv.LeaseGrantRequest(lease_id, ttl, now)
    if roll == 9:
        return (kv.LeaseRevokeRequest(lease_id),) * 2
    if roll == 10:
        return kv.LeaseKeepAliveRequest(lease_id, 0), kv.LeaseKeepAliveRequest(lease_id, now)
    return (
        kv.LeaseTimeToLiveRequest(lease_id, 0, keys=True),
        kv.LeaseTimeToLiveRequest(lease_id, now, keys=True),
    )


def random_history(
    rnd: random.Random,
    n_ops: int,
    clients: int,
    *,
    unknown_rate: float = 0.05,
    failed_rate: float = 0.03,
    leases: bool = True,
) -> History:
    """A linearizable history of ``n_ops`` operations from ``clients`` sequential clients."""
    history, _ = random_run(
        rnd, n_ops, clients, unknown_rate=unknown_rate, failed_rate=failed_rate, leases=leases
    )
    return history


def random_run(
    rnd: random.Random,
    n_ops: int,
    clients: int,
    *,
    unknown_rate: float = 0.05,
    failed_rate: float = 0.03,
    leases: bool = True,
) -> tuple[History, list[kv.Request]]:
    """The history, and the requests as the leader applied them, in commit order."""
    cursor = [0.0] * clients
    planned: list[_Planned] = []
    for _ in range(n_ops):
        client = rnd.randrange(clients)
        call = cursor[client] + rnd.uniform(0.0001, 0.01)
        ret = call + rnd.uniform(0.001, 0.03)
        cursor[client] = ret
        roll = rnd.random()
        if roll < unknown_rate:
            point = call + rnd.uniform(0, 0.09) if rnd.random() < 0.5 else None
            planned.append(_Planned(client, call, ret, point, "unknown"))
        elif roll < unknown_rate + failed_rate:
            planned.append(_Planned(client, call, ret, None, "failed"))
        else:
            planned.append(_Planned(client, call, ret, rnd.uniform(call, ret), "ok"))
    order = sorted(
        (i for i, p in enumerate(planned) if p.point is not None),
        key=lambda i: (planned[i].point, i),
    )
    state = kv.initial_state()
    committed: list[kv.Request] = []
    recorded: dict[int, kv.Request] = {}
    outcomes: dict[int, Ok | Failed | Unknown] = {}
    for rank, i in enumerate(order):
        recorded[i], applied = _request(rnd, state, rank, leases)
        if planned[i].kind == "unknown" and isinstance(applied, kv.LeaseGrantRequest):
            # A client that never heard back cannot learn a leader-picked id, so it cannot
            # use the lease later; the generator does, so the client must have picked it.
            recorded[i] = kv.LeaseGrantRequest(applied.id, applied.ttl, 0)
        state, result = kv.apply(state, applied)
        committed.append(applied)
        outcomes[i] = Ok(result) if planned[i].kind == "ok" else Unknown("timeout")
    for i, p in enumerate(planned):
        if i not in recorded:
            recorded[i] = kv.PutRequest(rnd.choice(KEYS), b"never")
            outcomes[i] = Unknown("timeout") if p.kind == "unknown" else Failed("not_leader")
    events = sorted(
        [(p.call, 0, i) for i, p in enumerate(planned)]
        + [(p.ret, 1, i) for i, p in enumerate(planned)]
    )
    history = History()
    ids: dict[int, int] = {}
    for at, kind, i in events:
        if kind == 0:
            ids[i] = history.invoke(planned[i].client, recorded[i], at)
        elif not (isinstance(outcomes[i], Unknown) and i % 2):
            history.complete(ids[i], outcomes[i], at)  # odd Unknown ones stay pending
    return history, committed


def nonempty_reads(h: History) -> list[int]:
    """Positions of the completed reads that returned at least one record."""
    return [
        i
        for i, op in enumerate(h.operations())
        if isinstance(op.outcome, Ok)
        and isinstance(op.outcome.result, kv.RangeResponse)
        and op.outcome.result.kvs
    ]


def with_read_records(h: History, i: int, kvs: tuple[kv.KeyValue, ...]) -> History:
    """``h`` with read ``i`` (one of :func:`nonempty_reads`) answering ``kvs`` instead."""
    op = h.operations()[i]
    assert isinstance(op.outcome, Ok) and isinstance(op.outcome.result, kv.RangeResponse)
    encoded = h.to_json()
    encoded["operations"][i] = to_json(
        attrs.evolve(op, outcome=Ok(attrs.evolve(op.outcome.result, kvs=kvs)))
    )
    return History.from_json(encoded)
