"""The whole observable state of the KV service, as one immutable value.

Equality of two states means "no client can tell them apart": same revision,
same compaction point, same retained history, same leases. Anything derivable
from those (which keys a lease holds, the current value of a key) is derived
rather than stored, so it cannot drift and cannot break that equality.
"""

from __future__ import annotations

import bisect

import attrs

from raftkube_spec.kv.history import KeySpace


@attrs.frozen
class Lease:
    """A granted lease: ``ttl`` as granted (seconds), ``expiry_ms`` from the last grant/renewal."""

    id: int
    ttl: int
    expiry_ms: int


def _lease_id(lease: Lease) -> int:
    return lease.id


@attrs.frozen(cache_hash=True)
class KVState:
    """``revision`` starts at 1 on an empty store, as etcd's does; 0 compaction means none."""

    revision: int = 1
    compact_revision: int = 0
    keys: KeySpace = ()
    leases: tuple[Lease, ...] = ()

    def lease(self, lease_id: int) -> Lease | None:
        i = bisect.bisect_left(self.leases, lease_id, key=_lease_id)
        if i < len(self.leases) and self.leases[i].id == lease_id:
            return self.leases[i]
        return None

    def with_lease(self, lease: Lease) -> KVState:
        """Insert or replace ``lease``, keeping leases sorted by id."""
        i = bisect.bisect_left(self.leases, lease.id, key=_lease_id)
        end = i + 1 if i < len(self.leases) and self.leases[i].id == lease.id else i
        return attrs.evolve(self, leases=(*self.leases[:i], lease, *self.leases[end:]))

    def without_lease(self, lease_id: int) -> KVState:
        return attrs.evolve(self, leases=tuple(x for x in self.leases if x.id != lease_id))


def initial_state() -> KVState:
    return KVState()
