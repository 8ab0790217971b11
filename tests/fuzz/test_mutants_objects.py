"""Behaviour scenarios of the object-lifecycle mutants (:mod:`raftkube_fuzz.mutants.objects`):
each patch changes what a small deterministic scenario does, and is fully undone on exit. The
marker diff of every mutant is in ``test_mutants.py``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric import ec

from raftkube.apiserver.auth.tokens import TokenError, TokenIssuer, TokenVerifier
from raftkube.apiserver.resources import by_kind
from raftkube.controllers.garbagecollector import FOREGROUND, GarbageCollector, Node
from tests.helpers.mutant_scenarios import Scenario, check_scenario

# --- scenarios: each returns what the mutant changes ---------------------------------------------


def _pod(name: str, uid: str, labels: dict[str, str], owner: str, owner_uid: str) -> dict[str, Any]:
    ref = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": owner,
        "uid": owner_uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": uid,
            "labels": labels,
            "ownerReferences": [ref],
        },
    }


def foreground_deletion_beside_a_canary() -> list[str]:
    """ReplicaSet ``rs-a`` (selector ``app=rs-a``) deleted in the foreground, its pod ``a-1``
    still there, beside pod ``canary-1`` (labels ``app=rs-a, track=canary``) that ReplicaSet
    ``canary`` owns. What the collector does for ``rs-a``'s foreground deletion."""
    pods, replica_sets = by_kind("v1", "Pod"), by_kind("apps/v1", "ReplicaSet")
    assert pods is not None and replica_sets is not None
    owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": "rs-a",
            "namespace": "default",
            "uid": "uid-rs-a",
            "deletionTimestamp": "2026-01-01T00:00:00Z",
            "finalizers": [FOREGROUND],
        },
        "spec": {"selector": {"matchLabels": {"app": "rs-a"}}},
    }
    canary = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "canary", "namespace": "default", "uid": "uid-canary"},
    }
    nodes = {
        "uid-rs-a": Node(replica_sets, owner),
        "uid-canary": Node(replica_sets, canary),
        "uid-a-1": Node(pods, _pod("a-1", "uid-a-1", {"app": "rs-a"}, "rs-a", "uid-rs-a")),
        "uid-canary-1": Node(
            pods,
            _pod(
                "canary-1",
                "uid-canary-1",
                {"app": "rs-a", "track": "canary"},
                "canary",
                "uid-canary",
            ),
        ),
    }
    done: list[str] = []

    async def delete(node: Node, policy: str) -> None:
        done.append(f"delete {node.name} ({policy})")

    async def remove_finalizer(node: Node, finalizer: str) -> None:
        done.append(f"remove {finalizer} from {node.name}")

    collector: Any = SimpleNamespace(
        nodes=nodes,
        dependents={"uid-rs-a": {"uid-a-1"}, "uid-canary": {"uid-canary-1"}},
        attempt_to_delete=SimpleNamespace(add=lambda uid: done.append(f"queue {uid}")),
        _delete=delete,
        remove_finalizer=remove_finalizer,
    )
    trio.run(GarbageCollector.process_deleting_dependents, collector, nodes["uid-rs-a"], owner)
    return done


def token_of_a_deleted_account() -> str:
    """A token issued for ServiceAccount ``default/sa-a`` (uid ``uid-1``), presented after the
    account was deleted and re-created (uid ``uid-2``): whom it authenticates."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = TokenIssuer(key, "https://issuer", lambda: 1000.0, new_jti=lambda: "jti-1")
    token = issuer.issue("default", "sa-a", "uid-1").token
    accounts = {("default", "sa-a"): {"metadata": {"name": "sa-a", "uid": "uid-2"}}}

    async def lookup(namespace: str, name: str) -> dict[str, Any] | None:
        return accounts.get((namespace, name))

    verifier = TokenVerifier([key.public_key()], "https://issuer", ["https://issuer"],
                             lambda: 1010.0, lookup)  # fmt: skip
    try:
        return trio.run(verifier.verify, token).name
    except TokenError as exc:
        return f"refused: {exc}"


SCENARIOS: dict[str, Scenario] = {
    "gc-selects-by-label": (
        foreground_deletion_beside_a_canary,
        ["queue uid-a-1"],
        ["delete a-1 (Background)", "delete canary-1 (Background)"],
    ),
    "token-outlives-account": (
        token_of_a_deleted_account,
        "refused: service account UID (uid-2) does not match claim (uid-1)",
        "system:serviceaccount:default:sa-a",
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_patch_changes_behavior_and_is_undone(name: str) -> None:
    check_scenario(name, SCENARIOS[name])
