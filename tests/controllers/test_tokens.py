"""The token controller against a real API server: legacy token Secrets filled in, and gone
with their account."""

from __future__ import annotations

import base64
import random
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.resources import SERVICE_ACCOUNTS
from raftkube.controllers.tokens import (
    NAME_KEY,
    SECRETS,
    SERVICE_ACCOUNT_TOKEN_TYPE,
    UID_KEY,
    TokensController,
    secret_action,
)
from tests.helpers.api_server import APIHarness
from tests.helpers.controllers import get_or_none
from tests.helpers.polling import eventually

Obj = dict[str, Any]


def token_secret(name: str, account: str, uid: str = "") -> Obj:
    annotations = {NAME_KEY: account}
    if uid:
        annotations[UID_KEY] = uid
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "type": SERVICE_ACCOUNT_TOKEN_TYPE,
    }


def test_decision() -> None:
    account = {"metadata": {"name": "a", "namespace": "default", "uid": "u1"}}
    secret = token_secret("s", "a", "u1")
    assert secret_action(secret, None, b"", None) is not None
    assert secret_action(secret, None, b"", None).verb == "delete"  # type: ignore[union-attr]
    other = {"metadata": {"name": "a", "namespace": "default", "uid": "u2"}}
    assert secret_action(secret, other, b"", None).verb == "delete"  # type: ignore[union-attr]
    assert secret_action(secret, account, b"", None) is None  # nothing to sign with
    plain = {**secret, "type": "Opaque"}
    assert secret_action(plain, None, b"", None) is None


@pytest.mark.trio
async def test_token_secrets_filled_and_deleted_with_their_account(api: APIHarness) -> None:
    client = api.admin
    clock = TrioClock()
    key = api.pki.sa_private_key.read_bytes()
    root_ca = api.pki.ca.cert.read_bytes()
    factory = SharedInformerFactory(client, clock=clock, rng=random.Random(5))
    controller = TokensController(client, factory, clock, root_ca=root_ca, private_key_pem=key)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            factory.start(nursery)
            nursery.start_soon(controller.run)
            account = await client.create(
                SERVICE_ACCOUNTS, {"metadata": {"name": "builder"}}, namespace="default"
            )
            await client.create(SECRETS, token_secret("builder-token", "builder"))
            await client.create(SECRETS, token_secret("orphan-token", "nobody"))

            async def filled() -> Obj | None:
                s = await client.get(SECRETS, "builder-token", namespace="default")
                return s if (s.get("data") or {}).get("token") else None

            secret = await eventually(filled, "the token Secret filled in")
            data = secret["data"]
            assert base64.b64decode(data["ca.crt"]) == root_ca
            assert base64.b64decode(data["namespace"]) == b"default"
            assert secret["metadata"]["annotations"][UID_KEY] == account["metadata"]["uid"]
            claims = jwt.decode(
                base64.b64decode(data["token"]), options={"verify_signature": False}
            )
            assert claims["iss"] == "kubernetes/serviceaccount"
            assert claims["sub"] == "system:serviceaccount:default:builder"
            assert claims["kubernetes.io/serviceaccount/secret.name"] == "builder-token"

            async def orphan_gone() -> bool:
                return await get_or_none(client, SECRETS, "orphan-token", "default") is None

            await eventually(orphan_gone, "the Secret of a missing account deleted")

            await client.delete(SERVICE_ACCOUNTS, "builder", namespace="default")

            async def token_gone() -> bool:
                return await get_or_none(client, SECRETS, "builder-token", "default") is None

            await eventually(token_gone, "the token Secret deleted with its account")
            nursery.cancel_scope.cancel()


def test_a_cached_account_with_another_uid_is_looked_up_live() -> None:
    """Upstream's ``getServiceAccount(..., fetchOnCacheMiss=true)``: a cache still showing
    the account's previous incarnation misses, and the live account with the Secret's uid is
    found, so its token is not deleted (before, the cache's other uid was taken as the
    account gone)."""
    stale = {"metadata": {"name": "a", "namespace": "default", "uid": "u1"}}
    live = {"metadata": {"name": "a", "namespace": "default", "uid": "u2"}}
    asked: list[str] = []

    async def get(resource: Any, name: str, namespace: str) -> Obj:
        asked.append(f"{namespace}/{name}")
        return live

    controller: Any = SimpleNamespace(
        accounts=SimpleNamespace(get=lambda name, namespace: stale),
        client=SimpleNamespace(get=get),
    )
    found = trio.run(TokensController._account_for, controller, token_secret("s", "a", "u2"))
    assert found is live and asked == ["default/a"]
    gone = trio.run(TokensController._account_for, controller, token_secret("s", "a", "u3"))
    assert gone is None  # the live one has another uid too
    same = trio.run(TokensController._account_for, controller, token_secret("s", "a", "u1"))
    assert same is stale and asked == ["default/a", "default/a"]  # a cache hit asks nothing
