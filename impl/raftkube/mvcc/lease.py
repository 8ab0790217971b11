"""The lessor: granted leases, their expiry times and the keys attached to each.

The spec derives a lease's keys by scanning the whole key space; here they are
maintained incrementally (the store attaches on every put that names a lease
and detaches on every overwrite or delete), so revoking a lease or answering
TimeToLive costs the lease's own keys, not the store's.

The lessor never decides anything by itself. Expiry is the leader's call: it
asks :meth:`Lessor.expired` with its clock and commits a LeaseRevoke through
the log, so every replica sees expiry as that ordinary revoke. Clock readings
arrive inside requests for the same reason, which keeps replicas identical.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
from sortedcontainers import SortedList  # type: ignore[import-untyped]

MAX_LEASE_TTL = 9_000_000_000
"""etcd's ``lease.MaxLeaseTTL`` in seconds; larger grants are refused."""

MIN_LEASE_TTL = 1
"""Shorter grants are raised to this. A server wanting etcd's larger minimum (derived from
its election timeout) applies it before logging the grant; the state machine only has to
guarantee a positive TTL."""


@attrs.define(slots=True, eq=False)
class LeaseRecord:
    """A granted lease: ``ttl`` as granted (seconds), ``expiry_ms`` from the last grant/renewal."""

    id: int
    ttl: int
    expiry_ms: int
    keys: set[bytes] = attrs.field(factory=set)

    def is_expired(self, now_ms: int) -> bool:
        # etcd: a lease is expired once its remaining time is <= 0.
        return self.expiry_ms <= now_ms

    def remaining_seconds(self, now_ms: int) -> int:
        """Whole seconds left, truncated like etcd's ``int64(Remaining().Seconds())``; never < 0.

        Zero rather than negative past expiry, so a lease awaiting its revoke
        cannot be mistaken for the ``-1`` that reports a missing lease.
        """
        return max(self.expiry_ms - now_ms, 0) // 1000


class Lessor:
    """All live leases, indexed by id and by expiry time."""

    __slots__ = ("_by_expiry", "_leases")

    def __init__(self) -> None:
        self._leases: dict[int, LeaseRecord] = {}
        # (expiry_ms, id) of every lease, so expiry queries touch only expired leases.
        self._by_expiry = SortedList()

    def __contains__(self, lease_id: int) -> bool:
        return lease_id in self._leases

    def __len__(self) -> int:
        return len(self._leases)

    def get(self, lease_id: int) -> LeaseRecord | None:
        return self._leases.get(lease_id)

    def leases(self) -> Iterator[LeaseRecord]:
        """Every lease, ascending by id (the canonical order for snapshots and comparisons)."""
        for lease_id in sorted(self._leases):
            yield self._leases[lease_id]

    def grant(self, lease_id: int, ttl: int, expiry_ms: int) -> LeaseRecord:
        """Create a lease; the caller has checked that ``lease_id`` is free."""
        lease = LeaseRecord(lease_id, ttl, expiry_ms)
        self._leases[lease_id] = lease
        self._by_expiry.add((expiry_ms, lease_id))
        return lease

    def renew(self, lease: LeaseRecord, expiry_ms: int) -> None:
        self._by_expiry.remove((lease.expiry_ms, lease.id))
        lease.expiry_ms = expiry_ms
        self._by_expiry.add((expiry_ms, lease.id))

    def remove(self, lease_id: int) -> LeaseRecord:
        """Forget a lease; the caller has already deleted its keys."""
        lease = self._leases.pop(lease_id)
        self._by_expiry.remove((lease.expiry_ms, lease_id))
        return lease

    def attach(self, lease_id: int, key: bytes) -> None:
        self._leases[lease_id].keys.add(key)

    def detach(self, lease_id: int, key: bytes) -> None:
        lease = self._leases.get(lease_id)
        if lease is not None:
            lease.keys.discard(key)

    def expired(self, now_ms: int) -> tuple[int, ...]:
        """Ids of leases past their expiry at ``now_ms``, ascending: what a leader should revoke."""
        due = self._by_expiry.irange(maximum=(now_ms, float("inf")))
        return tuple(sorted(lease_id for _, lease_id in due))
