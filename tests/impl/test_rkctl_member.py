"""``rkctl member add/promote/remove`` against a real cluster: etcdctl's output and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from tests.helpers.member_cluster import Cluster
from tests.helpers.polling import eventually
from tests.helpers.rkctl import Rk, assert_one_error

ABSENT = "http://127.0.0.1:25011"
"""A peer URL nothing listens on (the learner never starts: promotion must be refused)."""


@pytest.mark.trio
async def test_member_add_promote_remove_print_as_etcdctl(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            cluster = Cluster(tmp_path, nursery, max_members=8)
            await cluster.start_all()
            await cluster.leader()
            rk = Rk(cluster)
            peers = {
                i: f"http://{r.peer_address.host}:{r.peer_address.port}"
                for i, r in cluster.running.items()
            }

            code, out, err = await rk("member", "add", "n3", f"--peer-urls={ABSENT}", "--learner")
            assert (code, err) == (0, "")
            initial = ",".join(f"={peers[i]}" for i in range(3))
            assert out.splitlines() == [
                f"Member {3:16x} added as learner to cluster {'test':>16}",
                "",
                'ETCD_NAME="n3"',
                f'ETCD_INITIAL_CLUSTER="{initial},n3={ABSENT}"',
                f'ETCD_INITIAL_ADVERTISE_PEER_URLS="{ABSENT}"',
                'ETCD_INITIAL_CLUSTER_STATE="existing"',
            ]
            code, out, _ = await rk("member", "list")
            assert out.splitlines()[3] == f"3, started, n3, {ABSENT}, , true"

            assert_one_error(
                *await rk("member", "promote", "3"),
                "etcdserver: can only promote a learner member which is in sync with leader",
            )
            assert_one_error(
                *await rk("member", "promote", "1"), "etcdserver: can only promote a learner member"
            )
            assert_one_error(*await rk("member", "remove", "2a"), "etcdserver: member not found")
            assert_one_error(*await rk("member", "remove", "zz"), "expecting ID in Hex")
            assert_one_error(*await rk("member", "add", "x"), "member peer urls not provided")
            assert_one_error(*await rk("member", "remove"), "member ID is not provided")

            code, out, _ = await rk("member", "remove", "3", "-w", "json")
            doc = json.loads(out)
            assert code == 0 and [m["ID"] for m in doc["members"]] == [0, 1, 2]
            assert doc["header"]["cluster_id"] == "test"

            async def applied_everywhere() -> bool:
                return all(
                    r.member.node.membership.members == (0, 1, 2) for r in cluster.running.values()
                )

            await eventually(applied_everywhere)
            code, out, _ = await rk("member", "add", "n4", f"--peer-urls={ABSENT}", "-w", "json")
            added = json.loads(out)["member"]
            assert added == {"ID": 4, "name": "n4", "peerURLs": [ABSENT]}
            # A voter that never starts: 3 of 4 voters still make a quorum.
            code, out, _ = await rk("member", "remove", "4")
            assert out == f"Member {4:16x} removed from cluster {'test':>16}\n"
            nursery.cancel_scope.cancel()
