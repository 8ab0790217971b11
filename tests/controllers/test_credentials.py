"""Controllers acting as their own service accounts (``--use-service-account-credentials``)."""

from __future__ import annotations

import datetime
import random
import ssl
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from raftkube.clock import TrioClock
from raftkube.controllers.credentials import ServiceAccountClientBuilder, token_lifetime
from raftkube.controllers.manager import run_controller_manager
from raftkube.controllers.resources import NAMESPACES, SERVICE_ACCOUNTS
from raftkube.kubeclient import KubeAPIError, KubeConnectionError
from tests.helpers.api_server import APIHarness
from tests.helpers.controllers import get_or_none
from tests.helpers.polling import eventually

Obj = dict[str, Any]


def test_token_lifetime() -> None:
    assert token_lifetime("2024-01-01T01:00:00Z", 1704067200.0, 3600) == 3600.0
    assert token_lifetime("garbage", 0.0, 600) == 600.0


@attrs.define
class FakeManagerClient:
    """The manager's client as the builder uses it: accounts and TokenRequests."""

    wall: Any
    server: str = "https://127.0.0.1:1"
    tls_server_name: str | None = None
    observer: Any = None
    tracer: Any = None
    accounts: set[str] = attrs.Factory(set)
    issued: list[str] = attrs.Factory(list)

    async def get(self, resource: Any, name: str, *, namespace: str = "") -> Obj:
        if name not in self.accounts:
            raise KubeAPIError({"code": 404, "reason": "NotFound"})
        return {"metadata": {"name": name}}

    async def create(self, resource: Any, obj: Obj, **kw: Any) -> Obj:
        if kw.get("subresource") == "token":
            token = f"token-{len(self.issued)}"
            self.issued.append(token)
            expires = datetime.datetime.fromtimestamp(self.wall() + 100, datetime.UTC)
            return {"status": {"token": token, "expirationTimestamp": expires.isoformat()}}
        self.accounts.add(obj["metadata"]["name"])
        return obj


@attrs.define
class FlakyManagerClient(FakeManagerClient):
    """Fails its first calls as a restarting API server would, then works."""

    failures: list[Exception] = attrs.Factory(list)
    calls: list[float] = attrs.Factory(list)

    async def get(self, resource: Any, name: str, *, namespace: str = "") -> Obj:
        self.calls.append(trio.current_time())
        if self.failures:
            raise self.failures.pop(0)
        return await super().get(resource, name, namespace=namespace)


@pytest.mark.trio
async def test_a_server_that_cannot_answer_yet_is_waited_for_with_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FlakyManagerClient(
        lambda: 1_700_000_000.0,
        failures=[
            KubeConnectionError("connection broke while sending: connection reset"),
            KubeAPIError({"code": 503, "reason": "ServiceUnavailable"}),
            KubeAPIError({"code": 429, "reason": "TooManyRequests"}),
        ],
    )
    builder = ServiceAccountClientBuilder(
        fake,  # type: ignore[arg-type]
        ssl.create_default_context(),
        TrioClock(),
        fake.wall,
    )
    client = await builder.client_for("endpoint-controller")
    assert client.token == "token-0"
    assert fake.accounts == {"endpoint-controller"}
    gaps = [round(b - a, 3) for a, b in zip(fake.calls, fake.calls[1:], strict=False)]
    assert gaps == [1.0, 2.0, 4.0]


@pytest.mark.trio
async def test_a_refusal_is_not_retried(autojump_clock: trio.testing.MockClock) -> None:
    fake = FlakyManagerClient(
        lambda: 1_700_000_000.0, failures=[KubeAPIError({"code": 403, "reason": "Forbidden"})]
    )
    builder = ServiceAccountClientBuilder(
        fake,  # type: ignore[arg-type]
        ssl.create_default_context(),
        TrioClock(),
        fake.wall,
    )
    with pytest.raises(KubeAPIError):
        await builder.client_for("endpoint-controller")
    assert len(fake.calls) == 1


@pytest.mark.trio
async def test_tokens_are_renewed_at_80_percent_of_their_life(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = TrioClock()

    def wall() -> float:
        return 1_700_000_000 + trio.current_time()

    fake = FakeManagerClient(wall)
    builder = ServiceAccountClientBuilder(
        fake,  # type: ignore[arg-type]
        ssl.create_default_context(),
        clock,
        wall,
    )
    client = await builder.client_for("namespace-controller")
    assert fake.accounts == {"namespace-controller"}
    assert client.token == "token-0"
    assert await builder.client_for("namespace-controller") is client
    with trio.fail_after(1000):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(builder.run)
            await trio.sleep(79)
            assert client.token == "token-0"
            await trio.sleep(2)
            assert client.token == "token-1"
            await trio.sleep(80)
            assert client.token == "token-2"
            nursery.cancel_scope.cancel()
    await builder.aclose()


@pytest.mark.trio
async def test_controllers_act_as_their_service_accounts(api: APIHarness) -> None:
    """As ``system:kube-controller-manager`` the manager may not empty a namespace itself
    (its role has no deletecollection); with service-account credentials the namespace
    controller acts as ``kube-system/namespace-controller``, whose role allows it."""
    client = api.admin
    async with api.client_for("system:kube-controller-manager") as kcm:
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(
                    lambda: run_controller_manager(
                        kcm,
                        controllers=["serviceaccount", "namespace"],
                        clock=TrioClock(),
                        identity="kcm",
                        rng=random.Random(14),
                        use_service_account_credentials=True,
                        server_ca=api.pki.ca.cert.read_bytes(),
                        lease_duration=2.0,
                        renew_deadline=1.5,
                        retry_period=0.25,
                    )
                )
                for account in ("namespace-controller", "service-account-controller"):
                    await eventually(
                        lambda a=account: get_or_none(client, SERVICE_ACCOUNTS, a, "kube-system"),
                        f"the {account} account",
                    )
                await client.create(NAMESPACES, {"metadata": {"name": "team"}})
                await eventually(
                    lambda: get_or_none(client, SERVICE_ACCOUNTS, "default", "team"),
                    "the default account",
                )
                await client.delete(NAMESPACES, "team")

                async def namespace_gone() -> bool:
                    return await get_or_none(client, NAMESPACES, "team") is None

                await eventually(namespace_gone, "the namespace removed", timeout=30)
                nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_the_controllers_clients_report_to_the_managers_observer() -> None:
    def observe(method: str, path: str, body: Any, outcome: int | BaseException) -> None:
        """Never called here: no request is made on the built client."""

    fake = FakeManagerClient(lambda: 1_700_000_000.0, observer=observe)
    builder = ServiceAccountClientBuilder(
        fake,  # type: ignore[arg-type]
        ssl.create_default_context(),
        TrioClock(),
        fake.wall,
    )
    client = await builder.client_for("replicaset-controller")
    assert client.observer is observe
    await client.aclose()
