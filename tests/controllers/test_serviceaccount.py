"""The service account controller against a real API server."""

from __future__ import annotations

import random

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.resources import NAMESPACES, SERVICE_ACCOUNTS, resource
from raftkube.controllers.serviceaccount import (
    ServiceAccountsController,
    service_accounts_to_create,
)
from tests.helpers.api_server import APIHarness
from tests.helpers.controllers import get_or_none
from tests.helpers.polling import eventually

PODS = resource("", "v1", "pods")


def test_decision() -> None:
    active = {"metadata": {"name": "a"}, "status": {"phase": "Active"}}
    made = service_accounts_to_create(active, set(), ("default",))
    assert made == [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": "a"},
        }
    ]
    assert service_accounts_to_create(active, {"default"}, ("default",)) == []
    terminating = {"metadata": {"name": "a"}, "status": {"phase": "Terminating"}}
    assert service_accounts_to_create(terminating, set(), ("default",)) == []
    assert service_accounts_to_create(None, set(), ("default",)) == []


@pytest.mark.trio
async def test_default_account_everywhere_and_recreated(api: APIHarness) -> None:
    client = api.admin
    clock = TrioClock()
    factory = SharedInformerFactory(client, clock=clock, rng=random.Random(7))
    controller = ServiceAccountsController(client, factory, clock)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            factory.start(nursery)
            nursery.start_soon(controller.run)
            for ns in ("default", "kube-system", "kube-public"):
                await eventually(
                    lambda ns=ns: get_or_none(client, SERVICE_ACCOUNTS, "default", ns),
                    f"the default account of {ns}",
                )
            await client.create(NAMESPACES, {"metadata": {"name": "team"}})
            first = await eventually(
                lambda: get_or_none(client, SERVICE_ACCOUNTS, "default", "team"), "team's account"
            )
            # The ServiceAccount admission plugin now lets pods in.
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p", "namespace": "team"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            }
            created = await client.create(PODS, pod)
            assert created["spec"]["serviceAccountName"] == "default"

            await client.delete(SERVICE_ACCOUNTS, "default", namespace="team")

            async def recreated() -> object:
                again = await get_or_none(client, SERVICE_ACCOUNTS, "default", "team")
                return again and again["metadata"]["uid"] != first["metadata"]["uid"]

            await eventually(recreated, "the account recreated")
            nursery.cancel_scope.cancel()
