"""A real cluster of members in the test's own Trio run, for the member and client tests.

Waits on the cluster poll its state; the tests bound them with ``trio.fail_after``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from raftkube.server.member import Member, MemberConfig
from raftkube.server.wiring import RunningMember, open_member


class Cluster:
    """``n`` members on 127.0.0.1 in the caller's ``nursery``, each started and stopped on its
    own (stop cancels the member as a crash would, keeping what its storage synced); every
    member's :class:`MemberConfig` carries the extra fields in ``config``."""

    def __init__(self, tmp_path: Path, nursery: trio.Nursery, n: int = 3, **config: Any) -> None:
        self.tmp_path = tmp_path
        self.nursery = nursery
        self.n = n
        self.config = config
        self.running: dict[int, RunningMember] = {}
        self.scopes: dict[int, trio.CancelScope] = {}

    async def start_all(self) -> None:
        for i in range(self.n):
            await self.start(i)

    async def start(self, i: int) -> None:
        await self.nursery.start(self._run, i)

    async def _run(self, i: int, task_status: trio.TaskStatus[None]) -> None:
        cfg = MemberConfig(member_id=i, servers=self.n, cluster_id="test", **self.config)
        with trio.CancelScope() as scope:
            try:
                async with open_member(cfg, self.tmp_path / f"m{i}") as rm:
                    self.running[i], self.scopes[i] = rm, scope
                    self._wire()
                    task_status.started()
                    await trio.sleep_forever()
            finally:
                # Only once open_member has closed the storage (after a snapshot save in
                # flight, if any), so a stop() followed by start() never finds it locked.
                self.running.pop(i, None)

    def _wire(self) -> None:
        for a in self.running.values():
            for j, b in self.running.items():
                a.add_peer(j, b.peer_address, b.client_endpoint)

    async def stop(self, i: int) -> None:
        self.scopes[i].cancel()
        while i in self.running:
            await trio.sleep(0.01)

    def endpoints(self) -> list[str]:
        return [self.running[i].client_endpoint for i in sorted(self.running)]

    async def leader(self) -> int:
        while True:
            leaders = [i for i, r in self.running.items() if r.member.is_leader]
            if len(leaders) == 1:
                lead = leaders[0]
                term = self.running[lead].member.term
                if all(
                    r.member.leader == lead and r.member.term == term for r in self.running.values()
                ):
                    return lead
            await trio.sleep(0.01)

    def member(self, i: int) -> Member:
        return self.running[i].member
