"""The API server compacting its store on its own clock, and what a compaction does to its
readers: a list at a compacted resourceVersion is 410 Expired; a watch cache that must resume
from a compacted revision lists again, and an informer whose resourceVersion that list left
behind is answered 410 "too old resource version" and lists again too."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
import trio

from raftkube.apiserver.resources import lookup
from raftkube.clock import TrioClock
from raftkube.controllers.backoff import Backoff
from raftkube.controllers.listwatch import ListWatch
from raftkube.controllers.reflector import Reflector
from raftkube.controllers.resources import CONFIG_MAPS
from raftkube.controllers.store import Indexer
from raftkube.kubeclient import KubeAPIError
from raftkube.server.member import MemberConfig
from raftkube.server.wiring import open_member
from tests.helpers.api_server import serving
from tests.helpers.clocks import JumpClock
from tests.helpers.controllers import configmap
from tests.helpers.polling import wait_for
from tests.helpers.processes import free_ports

SECRETS = lookup("", "v1", "secrets")
assert SECRETS is not None
INTERVAL = 60.0
"""Under the HTTP server's 90 s idle timeout, which runs on the same clock: a jump of a whole
interval must not close the admin client's kept-alive connection under its next create."""
CONFIG = MemberConfig(member_id=0, servers=1, cluster_id="t")


def secret(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default"},
    }


class Informed:
    """The reflector's store: an indexer of what it lists and watches."""

    def __init__(self) -> None:
        self.indexer = Indexer()

    def add(self, obj: dict[str, object]) -> None:
        self.indexer.add(obj)

    def update(self, obj: dict[str, object]) -> None:
        self.indexer.update(obj)

    def delete(self, obj: dict[str, object]) -> None:
        self.indexer.delete(obj)

    def replace(self, items: list[dict[str, object]], resource_version: str) -> None:
        self.indexer.replace(items)


@pytest.mark.trio
async def test_compaction_on_the_servers_clock_expires_old_resource_versions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "raftkube")
    (port,) = free_ports(1)
    clock = JumpClock()

    async def member(
        task_status: trio.TaskStatus[tuple[trio.CancelScope, trio.Event]],
    ) -> None:
        stopped = trio.Event()
        try:
            with trio.CancelScope() as scope:
                async with open_member(CONFIG, tmp_path / "m0", client_port=port):
                    task_status.started((scope, stopped))
                    await trio.sleep_forever()
        finally:
            stopped.set()

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            running_member = await nursery.start(member)
            async with serving(
                tmp_path, f"127.0.0.1:{port}", clock=clock, etcd_compaction_interval=INTERVAL
            ) as api:
                compactor = api.running.compactor
                a = await api.admin.create(CONFIG_MAPS, configmap("a"))
                old = a["metadata"]["resourceVersion"]
                informed = Informed()
                backoff = Backoff(TrioClock(), initial=0.01, maximum=0.05, rng=random.Random(1))
                reflector = Reflector(
                    "configmaps", ListWatch(api.admin, CONFIG_MAPS, "default"), informed,
                    TrioClock(), backoff=backoff,
                )  # fmt: skip
                nursery.start_soon(reflector.run)
                await wait_for(lambda: reflector.watches == 1, "the informer's watch")

                # Two intervals of the server's clock, with writes (not to ConfigMaps) in
                # each: the second compacts at the revision the first recorded.
                for interval in (1, 2):
                    for i in range(3):
                        await api.admin.create(SECRETS, secret(f"x{interval}{i}"))
                    clock.advance(INTERVAL)
                    # Only the server's clock jumped: to it, the admin client's idle
                    # connections are now a minute older than the client's own clock says,
                    # closer to its 90 s idle timeout than the client's 60 s reuse limit
                    # allows for, so the client must not reuse them.
                    await api.admin.pool.aclose()
                    await wait_for(lambda: compactor.compact_time == interval, "a compaction")  # noqa: B023
                await wait_for(lambda: compactor.compactions == 1, "the compaction")
                assert compactor.compact_revision > int(old)
                assert "etcd: compacted rev" in caplog.text

                # A list at the old revision is gone; the informer, watching from the cache's
                # ring, has lost nothing and not listed again.
                with pytest.raises(KubeAPIError) as err:
                    await api.admin.list(
                        CONFIG_MAPS, namespace="default", resource_version=old,
                        query={"resourceVersionMatch": "Exact"},
                    )  # fmt: skip
                assert err.value.code == 410
                assert reflector.lists == 1

                # The store restarts: the ConfigMaps cache, last moved by "a", must resume
                # below the compaction, so it lists again and ends its watchers; the informer
                # comes back with "a"'s resourceVersion, is told it is too old, and relists.
                cache = api.running.caches[CONFIG_MAPS.qualified]
                scope, stopped = running_member
                scope.cancel()
                await stopped.wait()
                await nursery.start(member)
                await wait_for(lambda: cache.relists == 2, "the cache's relist")
                await wait_for(lambda: reflector.lists == 2, "the informer's relist")
                assert "too old resource version" in caplog.text
                await api.admin.create(CONFIG_MAPS, configmap("b"))
                await wait_for(lambda: informed.indexer.get_by_key("default/b"), "b")
                assert informed.indexer.get_by_key("default/a") is not None
                nursery.cancel_scope.cancel()
