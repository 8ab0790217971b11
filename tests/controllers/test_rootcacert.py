"""The root CA certificate publisher against a real API server."""

from __future__ import annotations

import random

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.resources import CONFIG_MAPS, NAMESPACES
from raftkube.controllers.rootcacert import (
    DESCRIPTION,
    DESCRIPTION_ANNOTATION,
    ROOT_CA_CERT_CONFIG_MAP_NAME,
    RootCACertPublisher,
    desired_root_ca_config_map,
)
from tests.helpers.api_server import APIHarness
from tests.helpers.controllers import get_or_none
from tests.helpers.polling import eventually

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_decision() -> None:
    created = desired_root_ca_config_map("ns", None, CA)
    assert created is not None and created.verb == "create"
    assert created.obj["data"] == {"ca.crt": CA}
    assert created.obj["metadata"]["annotations"] == {DESCRIPTION_ANNOTATION: DESCRIPTION}
    good = {
        "metadata": {"annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
        "data": {"ca.crt": CA},
    }
    assert desired_root_ca_config_map("ns", good, CA) is None
    tampered = {"metadata": {"annotations": {"mine": "x"}}, "data": {"ca.crt": "x", "extra": "y"}}
    fixed = desired_root_ca_config_map("ns", tampered, CA)
    assert fixed is not None and fixed.verb == "update"
    assert fixed.obj["data"] == {"ca.crt": CA}
    assert fixed.obj["metadata"]["annotations"] == {
        "mine": "x",
        DESCRIPTION_ANNOTATION: DESCRIPTION,
    }
    assert tampered["data"] == {"ca.crt": "x", "extra": "y"}  # the cached copy is untouched


@pytest.mark.trio
async def test_published_everywhere_and_kept_correct(api: APIHarness) -> None:
    client = api.admin
    root_ca = api.pki.ca.cert.read_bytes()
    clock = TrioClock()
    factory = SharedInformerFactory(client, clock=clock, rng=random.Random(8))
    publisher = RootCACertPublisher(client, factory, clock, root_ca)

    async def published(ns: str) -> object:
        cm = await get_or_none(client, CONFIG_MAPS, ROOT_CA_CERT_CONFIG_MAP_NAME, ns)
        return cm if cm and cm["data"] == {"ca.crt": root_ca.decode()} else None

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            factory.start(nursery)
            nursery.start_soon(publisher.run)
            for ns in ("default", "kube-system", "kube-public"):
                await eventually(lambda ns=ns: published(ns), f"the CA in {ns}")
            await client.create(NAMESPACES, {"metadata": {"name": "team"}})
            cm = await eventually(lambda: published("team"), "the CA in team")
            assert cm["metadata"]["annotations"][DESCRIPTION_ANNOTATION] == DESCRIPTION

            cm["data"] = {"ca.crt": "not a CA"}
            cm["metadata"]["annotations"]["mine"] = "kept"
            await client.update(CONFIG_MAPS, cm)
            fixed = await eventually(lambda: published("team"), "the CA restored")
            assert fixed["metadata"]["annotations"]["mine"] == "kept"

            await client.delete(CONFIG_MAPS, ROOT_CA_CERT_CONFIG_MAP_NAME, namespace="team")
            again = await eventually(lambda: published("team"), "the CA recreated")
            assert again["metadata"]["uid"] != cm["metadata"]["uid"]
            nursery.cancel_scope.cancel()
