"""The namespace controller against a real API server, and its decisions as functions."""

from __future__ import annotations

import random

import pytest
import trio

from raftkube.clock import TrioClock
from raftkube.controllers.informer import SharedInformerFactory
from raftkube.controllers.namespace import (
    CONDITION_TYPES,
    ContentReport,
    NamespaceController,
    failure_conditions,
    updated_conditions,
    with_terminating_phase,
    without_kubernetes_finalizer,
)
from raftkube.controllers.resources import (
    CONFIG_MAPS,
    NAMESPACES,
    SERVICE_ACCOUNTS,
    namespaced_stored_resources,
    resource,
)
from raftkube.kubeclient import KubeAPIError
from tests.helpers.api_server import APIHarness
from tests.helpers.controllers import configmap, get_or_none
from tests.helpers.polling import eventually

PODS = resource("", "v1", "pods")
SECRETS = resource("", "v1", "secrets")
ROLES = resource("rbac.authorization.k8s.io", "v1", "roles")


def test_walks_every_namespaced_stored_resource() -> None:
    names = {r.qualified for r in namespaced_stored_resources()}
    assert {"pods", "configmaps", "secrets", "leases.coordination.k8s.io"} <= names
    assert "roles.rbac.authorization.k8s.io" in names
    assert "bindings" not in names and "namespaces" not in names and "nodes" not in names


def test_conditions_follow_upstream_wording_and_transition_times() -> None:
    report = ContentReport(
        {
            CONFIG_MAPS: [{"metadata": {"name": "a", "finalizers": ["example.com/hold"]}}],
            PODS: [],
        },
        ["secrets: boom"],
    )
    failures = failure_conditions(report)
    by_type = {c["type"]: c for c in failures}
    assert by_type["NamespaceDeletionContentFailure"]["message"] == (
        "Failed to delete all resource types, 1 remaining: secrets: boom"
    )
    assert by_type["NamespaceContentRemaining"]["message"] == (
        "Some resources are remaining: configmaps. has 1 resource instances"
    )
    assert by_type["NamespaceFinalizersRemaining"]["reason"] == "SomeFinalizersRemain"
    assert by_type["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: "
        "example.com/hold in 1 resource instances"
    )
    first = updated_conditions([], failures, 1_700_000_000)
    assert first is not None and [c["type"] for c in first] == list(CONDITION_TYPES)
    assert {c["status"] for c in first if c["type"] in by_type} == {"True"}
    assert updated_conditions(first, failures, 1_700_000_100) is None
    # Content removed: status flips (new time); the message-only change keeps its time.
    later = updated_conditions(first, [], 1_700_000_200)
    assert later is not None
    remaining = next(c for c in later if c["type"] == "NamespaceContentRemaining")
    assert remaining["status"] == "False" and remaining["reason"] == "ContentRemoved"
    assert remaining["lastTransitionTime"] == "2023-11-14T22:16:40Z"
    discovery = next(c for c in later if c["type"] == "NamespaceDeletionDiscoveryFailure")
    assert discovery["lastTransitionTime"] == "2023-11-14T22:13:20Z"


def test_status_and_finalize_bodies() -> None:
    ns = {
        "metadata": {"name": "x", "deletionTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"finalizers": ["kubernetes", "other"]},
        "status": {"phase": "Active"},
    }
    marked = with_terminating_phase(ns)
    assert marked is not None and marked["status"]["phase"] == "Terminating"
    assert with_terminating_phase(marked) is None
    assert without_kubernetes_finalizer(ns)["spec"]["finalizers"] == ["other"]
    assert ns["spec"]["finalizers"] == ["kubernetes", "other"]
    assert ContentReport({PODS: [{"spec": {"terminationGracePeriodSeconds": 30}}]}).estimate() == 30


@pytest.mark.trio
async def test_deleted_namespace_is_emptied_then_removed(api: APIHarness) -> None:
    client = api.admin
    clock = TrioClock()
    factory = SharedInformerFactory(client, clock=clock, rng=random.Random(9))
    controller = NamespaceController(client, factory, clock, deletion_grace_period=0.05)
    await client.create(NAMESPACES, {"metadata": {"name": "doomed"}})
    await client.create(NAMESPACES, {"metadata": {"name": "spared"}})
    for ns in ("doomed", "spared"):
        await client.create(CONFIG_MAPS, configmap("cm", ns))
        await client.create(SECRETS, {"metadata": {"name": "s", "namespace": ns}})
        await client.create(
            ROLES, {"metadata": {"name": "r", "namespace": ns}, "rules": []}, namespace=ns
        )
    held = configmap("held", "doomed")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await client.create(CONFIG_MAPS, held)

    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            factory.start(nursery)
            nursery.start_soon(controller.run)
            await client.delete(NAMESPACES, "doomed")

            async def reports_the_held_object() -> object:
                ns = await client.get(NAMESPACES, "doomed")
                conditions = {c["type"]: c for c in ns["status"].get("conditions") or []}
                held = conditions.get("NamespaceFinalizersRemaining", {})
                return ns if held.get("status") == "True" else None

            ns = await eventually(reports_the_held_object, "the conditions")
            assert ns["status"]["phase"] == "Terminating"
            assert ns["spec"]["finalizers"] == ["kubernetes"]
            conditions = {c["type"]: c for c in ns["status"]["conditions"]}
            assert conditions["NamespaceContentRemaining"]["message"] == (
                "Some resources are remaining: configmaps. has 1 resource instances"
            )
            assert conditions["NamespaceDeletionContentFailure"]["reason"] == "ContentDeleted"
            for kind, name in ((CONFIG_MAPS, "cm"), (SECRETS, "s"), (ROLES, "r")):
                assert await get_or_none(client, kind, name, "doomed") is None
            left = await client.get(CONFIG_MAPS, "held", namespace="doomed")
            assert left["metadata"].get("deletionTimestamp")
            # Deleting it again is refused as upstream refuses it, the namespace unchanged.
            with pytest.raises(KubeAPIError) as refused:
                await client.delete(NAMESPACES, "doomed")
            assert (refused.value.code, refused.value.reason) == (409, "Conflict")
            assert refused.value.message == (
                'Operation cannot be fulfilled on namespaces "doomed": The system is ensuring '
                "all content is removed from this namespace.  Upon completion, this namespace "
                "will automatically be purged by the system."
            )
            again = await client.get(NAMESPACES, "doomed")
            assert again["metadata"]["resourceVersion"] == ns["metadata"]["resourceVersion"]

            # The finalizer lets go: the controller's next look empties and finalizes it.
            await client.patch(
                CONFIG_MAPS,
                "held",
                {"metadata": {"finalizers": None}},
                namespace="doomed",
                patch_type="merge",
            )

            async def namespace_gone() -> bool:
                return await get_or_none(client, NAMESPACES, "doomed") is None

            await eventually(namespace_gone, "the namespace removed")
            for kind, name in ((CONFIG_MAPS, "cm"), (SECRETS, "s"), (ROLES, "r")):
                assert await get_or_none(client, kind, name, "spared") is not None
            assert (await client.get(NAMESPACES, "spared"))["status"]["phase"] == "Active"
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_namespace_can_be_recreated_after_deletion(api: APIHarness) -> None:
    client = api.admin
    clock = TrioClock()
    factory = SharedInformerFactory(client, clock=clock, rng=random.Random(10))
    controller = NamespaceController(client, factory, clock, deletion_grace_period=0.05)
    await client.create(NAMESPACES, {"metadata": {"name": "again"}})
    await client.create(
        SERVICE_ACCOUNTS, {"metadata": {"name": "robot", "namespace": "again"}}, namespace="again"
    )
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            factory.start(nursery)
            nursery.start_soon(controller.run)
            await client.delete(NAMESPACES, "again")

            async def namespace_gone() -> bool:
                return await get_or_none(client, NAMESPACES, "again") is None

            await eventually(namespace_gone, "the namespace removed")
            await client.create(NAMESPACES, {"metadata": {"name": "again"}})
            assert await get_or_none(client, SERVICE_ACCOUNTS, "robot", "again") is None
            nursery.cancel_scope.cancel()
