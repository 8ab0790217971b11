"""Namespaces in the ``cluster`` suite: ``kubectl delete namespace team-a`` empties and removes
it through the namespace controller, creates in it are refused meanwhile (403, then 404 once
it is gone), and it can be created again and used. One short run of the whole control plane
with fixed steps; the suite's own checks (``NamespaceEmptiedBeforeFinalized`` on every
revision, reconciliation at the end, the kept token refused once its account went with the
namespace) judge it too."""

from __future__ import annotations

import pytest

from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.cluster import namespaces
from raftkube_fuzz.example import run_steps
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite

TEAM = "team-a"
STEPS = [
    Step.of("apply_rs", name="rs-b", replicas=2, namespace=TEAM),
    Step.of("apply_service", target="rs-b", namespace=TEAM),
    Step.of("request_token", name="sa-a", namespace=TEAM),
    Step.of("create_account", name="sa-a", namespace=TEAM),
    Step.of("long_wait", seconds=5.0),
    Step.of("request_token", name="sa-a", namespace=TEAM),
    Step.of("long_wait", seconds=5.0),
    Step.of("delete_namespace", name=TEAM),
    Step.of("long_wait", seconds=2.0),
    Step.of("apply_rs", name="rs-a", replicas=1, namespace=TEAM),
    Step.of("delete_namespace", name=TEAM),
    Step.of("long_wait", seconds=30.0),
    Step.of("apply_rs", name="rs-a", replicas=1, namespace=TEAM),
    Step.of("long_wait", seconds=2.0),
    Step.of("create_namespace", name=TEAM),
    Step.of("long_wait", seconds=5.0),
    Step.of("apply_rs", name="rs-a", replicas=1, namespace=TEAM),
    Step.of("long_wait", seconds=10.0),
]
CONFIG = {"servers": 1, "nodes": 2, "store_faults": "off", "accounts": "none"}


def test_a_deleted_namespace_is_emptied_refuses_content_and_comes_back() -> None:
    suite = get_suite("cluster")
    run = run_steps(suite, {**suite.default_config, **CONFIG}, 7, STEPS)
    assert run.violation is None, run.violation
    texts = [line.text for line in run.timeline.lines()]

    def answered(prefix: str) -> list[str]:
        return [t.removeprefix(prefix) for t in texts if t.startswith(prefix)]

    assert answered("user: create namespace team-a: ") == ["created", "created"]
    first, second = answered("user: delete namespace team-a: ")
    assert first == "deleted"
    assert second == (
        "delete refused: 409 409 Conflict: Operation cannot be fulfilled on namespaces "
        '"team-a": The system is ensuring all content is removed from this namespace.  Upon '
        "completion, this namespace will automatically be purged by the system."
    )
    assert answered("user: apply rs-a -n team-a x1: ") == [
        'create refused: 403 403 Forbidden: replicasets.apps "rs-a" is forbidden: unable to '
        "create new content in namespace team-a because it is being terminated",
        'create refused: 404 404 NotFound: namespaces "team-a" not found',
        "created",
    ]
    # The token issued while its account lived was judged refused once the account went
    # with the namespace (the suite's check would have failed the run otherwise).
    assert any(t.startswith("token 2 of team-a/sa-a") and "refused" in t for t in texts)
    observer: ClusterObserver = run.extras["observer"]
    assert [rs["metadata"]["name"] for rs in observer.of("ReplicaSet", TEAM)] == ["rs-a"]
    assert observer.of("Service", TEAM) == []
    assert [p["metadata"]["name"][:5] for p in observer.of("Pod", TEAM)] == ["rs-a-"]
    assert observer.namespaces.live() >= {"default", TEAM}


def test_one_workload_step_in_four_targets_team_a_and_an_unknown_namespace_is_refused() -> None:
    drawn = [namespaces.namespace_at(x) for x in range(400)]
    assert (drawn.count(TEAM), drawn.count("default"), drawn[0]) == (100, 300, "default")
    assert namespaces.namespace_of(Step.of("apply_rs", name="rs-a", replicas=1)) == "default"
    with pytest.raises(ValueError, match="'kube-system': not one of"):
        namespaces.namespace_of(Step.of("apply_rs", name="rs-a", namespace="kube-system"))
