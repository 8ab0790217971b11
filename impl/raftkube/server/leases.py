"""The member's part in etcd leases: expiring them on the leader and stamping lease requests.

The MVCC store keeps leases as data (:mod:`raftkube.mvcc`); what needs a clock lives here.
Only the leader revokes an expired lease, by proposing a ``LeaseRevokeRequest`` through the
log, so every replica deletes the lease's keys at the same index (a follower's clock says
nothing about the leader's). A lease request that reads the clock (grant, keep-alive,
time-to-live) is stamped with the leader's time before it is proposed, so every replica
applies the same entry. Kept apart from the proposal queue because this is the one writer
inside the member that is not a client.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from raftkube.server.outcomes import MemberError
from raftkube_spec.kv.requests import (
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
    LeaseTimeToLiveRequest,
    Request,
)

if TYPE_CHECKING:
    from raftkube.server.member import Member


class LeaseExpiry:
    """The leader's lease-expiry task and the revocations it has in flight."""

    def __init__(self, member: Member) -> None:
        self._member = member
        self._revoking: set[int] = set()
        """Leases whose revocation was proposed and is not applied yet (not proposed again)."""

    async def run(self) -> None:
        """Every ``lease_check_interval``, on the leader, propose revoking expired leases."""
        member = self._member
        while True:
            await member.clock.sleep_until(member.clock.now() + member.config.lease_check_interval)
            if not member.node.is_leader:
                continue
            for lease_id in member.mvcc.expired_leases(member.now_ms()):
                if lease_id in self._revoking:
                    continue
                self._revoking.add(lease_id)
                try:
                    member.proposals.propose(LeaseRevokeRequest(lease_id))
                except MemberError:
                    self._revoking.discard(lease_id)
                    break

    def revocation_done(self, lease_id: int) -> None:
        """A revocation was applied, or its proposal refused: a later check may propose it again."""
        self._revoking.discard(lease_id)

    def forget_all(self) -> None:
        """A leader's snapshot replaced the store: no revocation of ours is in flight there."""
        self._revoking.clear()


def stamp(req: Request, now_ms: Callable[[], int], rng: random.Random) -> Request:
    """Fix what a lease request takes from the leader's clock (and a new lease's id), so
    every replica applies the same entry. Any other request is returned as it is (and the
    clock is not read for it)."""
    if isinstance(req, LeaseGrantRequest):
        lease_id = req.id if req.id > 0 else rng.randrange(1, 2**62)
        return LeaseGrantRequest(lease_id, req.ttl, now_ms())
    if isinstance(req, LeaseKeepAliveRequest):
        return LeaseKeepAliveRequest(req.id, now_ms())
    if isinstance(req, LeaseTimeToLiveRequest):
        return LeaseTimeToLiveRequest(req.id, now_ms(), req.keys)
    return req
