"""``LoadBalancerRR`` of upstream's userspace proxier: each Service port's ready endpoints in a
shuffled ring, and the next connection takes the next one.

When a port's endpoint set changes, the ring is rebuilt (shuffled again, starting over), as
upstream does; when it is unchanged, the ring and its position are kept, so repeated syncs do
not disturb the spreading. Session affinity (``ClientIP``) is not provided: every connection
takes the next endpoint.
"""

from __future__ import annotations

import random

import attrs

from raftkube.proxy.servicemap import HostPort, ServicePortName


@attrs.define
class _Ring:
    members: frozenset[HostPort]
    order: list[HostPort]
    index: int = 0


@attrs.define
class LoadBalancerRR:
    """Round-robin choice of endpoints per :class:`ServicePortName`."""

    rng: random.Random = attrs.field(factory=random.Random)
    _rings: dict[ServicePortName, _Ring] = attrs.field(factory=dict, init=False)

    def on_endpoints_update(self, endpoints: dict[ServicePortName, list[HostPort]]) -> None:
        """Take the current endpoints of every Service port (ports absent have none)."""
        for spn in [s for s in self._rings if s not in endpoints]:
            del self._rings[spn]
        for spn, pairs in endpoints.items():
            members = frozenset(pairs)
            ring = self._rings.get(spn)
            if ring is None or ring.members != members:
                order = sorted(members)
                self.rng.shuffle(order)
                self._rings[spn] = _Ring(members, order)

    def service_ports(self) -> list[ServicePortName]:
        """Every Service port with at least one endpoint, sorted (with :meth:`endpoints`, a
        read-only view of the table for whoever judges where traffic would go)."""
        return sorted(self._rings)

    def endpoints(self, spn: ServicePortName) -> list[HostPort]:
        """The ring of ``spn`` from the next endpoint on (empty when it has none)."""
        ring = self._rings.get(spn)
        if ring is None:
            return []
        return ring.order[ring.index :] + ring.order[: ring.index]

    def next_endpoint(self, spn: ServicePortName) -> HostPort | None:
        """The endpoint for a new connection to ``spn``, advancing its ring (None when the
        port has no ready endpoint)."""
        ring = self._rings.get(spn)
        if ring is None:
            return None
        chosen = ring.order[ring.index]
        ring.index = (ring.index + 1) % len(ring.order)
        return chosen
