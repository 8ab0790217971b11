"""API server identity Leases: each server's ``kube-system/apiserver-<hash>`` Lease, named,
labelled and renewed as upstream's, and the collection of other servers' expired ones."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
import trio

from raftkube.apiserver.identity import IdentityLeaseGC, apiserver_id, micro_time
from raftkube.apiserver.watchcache import not_ready
from raftkube.clock import TrioClock
from raftkube.controllers.resources import LEASES
from raftkube.server.member import MemberConfig
from raftkube.server.wiring import open_member
from tests.helpers.api_server import serving
from tests.helpers.clocks import JumpClock
from tests.helpers.polling import wait_for

EPOCH = 1_767_225_600.0
HOST = "control-plane-a"


def test_the_id_is_upstreams_hash_of_the_host_name() -> None:
    # cryptobyte's uint16-length-prefixed host name and "kube-apiserver", SHA-256, the first
    # 16 bytes in unpadded lower-case base32: 26 characters.
    data = b"\x00\x0f" + HOST.encode() + b"\x00\x0e" + b"kube-apiserver"
    digest = hashlib.sha256(data).digest()[:16]
    expected = "apiserver-" + base64.b32encode(digest).decode().rstrip("=").lower()
    assert apiserver_id(HOST) == expected and len(expected) == len("apiserver-") + 26
    assert apiserver_id("other-host") != expected


def identity_lease(name: str, renewed: float, labels: dict[str, str]) -> dict[str, object]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
        "spec": {
            "holderIdentity": f"{name}_x",
            "leaseDurationSeconds": 3600,
            "renewTime": micro_time(renewed),
        },
    }


@pytest.mark.trio
async def test_own_lease_is_kept_and_expired_ones_of_others_are_collected(
    tmp_path: Path,
) -> None:
    clock = JumpClock()

    def wall() -> float:
        return EPOCH + clock.now()

    config = MemberConfig(member_id=0, servers=1, cluster_id="t")
    with trio.fail_after(30):
        async with (
            open_member(config, tmp_path / "m0") as member,
            serving(tmp_path, member.client_endpoint, clock=clock, wall=wall, hostname=HOST) as api,
        ):
            name = apiserver_id(HOST)
            identity = api.running.identity
            await wait_for(lambda: identity.latest is not None, "the identity Lease")
            lease = await api.admin.get(LEASES, name, namespace="kube-system")
            assert lease["metadata"]["labels"] == {
                "apiserver.kubernetes.io/identity": "kube-apiserver",
                "kubernetes.io/hostname": HOST,
            }
            assert lease["spec"]["holderIdentity"].startswith(f"{name}_")
            assert lease["spec"]["leaseDurationSeconds"] == 3600
            first = lease["spec"]["renewTime"]
            # Renewed every 10 s (plus jitter) of the server's clock.
            clock.advance(10.5)
            await wait_for(
                lambda: (
                    identity.latest is not None and identity.latest["spec"]["renewTime"] != first
                ),
                "a renewal",
            )
            # A server on another host stopped two hours ago; an old Lease that is no
            # identity Lease (a leader election's) is not the collector's business.
            dead, other = apiserver_id("gone-host"), "kube-scheduler"
            labels = {"apiserver.kubernetes.io/identity": "kube-apiserver"}
            await api.admin.create(LEASES, identity_lease(dead, wall() - 7200, labels))
            await api.admin.create(LEASES, identity_lease(other, wall() - 7200, {}))
            gc = api.running.lease_gc
            # The collector looks every hour: jump there in steps the renewals keep up with.
            for _ in range(6):
                clock.advance(600.0)
                renewals = identity.renewals
                await wait_for(lambda: identity.renewals > renewals, "a renewal")  # noqa: B023
            await wait_for(lambda: gc.deleted == 1, "the collection")
            names = {
                item["metadata"]["name"]
                for item in (await api.admin.list(LEASES, namespace="kube-system"))["items"]
            }
            assert names == {name, other} and gc.deleted == 1


class Relisting:
    """A watch cache in the middle of listing again: it answers 429 until it is ready."""

    def list(self, *args: object, **kwargs: object) -> object:
        raise not_ready()


@pytest.mark.trio
async def test_a_cache_listing_again_only_postpones_the_collection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gc = IdentityLeaseGC(api=None, leases=Relisting(), clock=TrioClock(), wall=lambda: EPOCH)  # type: ignore[arg-type]
    await gc.gc()  # does not raise: the server goes on, the next period tries again
    assert "Error while listing apiserver leases" in caplog.text and gc.deleted == 0
