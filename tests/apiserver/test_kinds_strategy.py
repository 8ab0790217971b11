"""What every kind gets on create and update: system metadata, generation, subresources."""

from __future__ import annotations

import copy
from typing import Any

from raftkube.apiserver import kinds, resources

CONFIGMAPS = resources.lookup("", "v1", "configmaps")
DEPLOYMENTS = resources.lookup("apps", "v1", "deployments")
assert CONFIGMAPS is not None and DEPLOYMENTS is not None


def config_map() -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {
            "name": "c",
            "namespace": "default",
            "uid": "client-chosen",
            "creationTimestamp": "1999-01-01T00:00:00Z",
            "deletionTimestamp": "1999-01-01T00:00:00Z",
            "deletionGracePeriodSeconds": 0,
            "selfLink": "/api/v1/namespaces/default/configmaps/c",
        },
        "data": {"a": "1"},
    }
    kinds.prepare_create(CONFIGMAPS, body, "2026-01-01T00:00:00Z", "uid-1")
    return body


def test_create_sets_system_fields_and_drops_client_ones() -> None:
    meta = config_map()["metadata"]
    assert meta == {
        "name": "c",
        "namespace": "default",
        "uid": "uid-1",
        "creationTimestamp": "2026-01-01T00:00:00Z",
    }


def test_update_keeps_identity_and_reports_a_changed_uid() -> None:
    old = config_map()
    new = copy.deepcopy(old)
    del new["metadata"]["uid"]
    new["metadata"]["creationTimestamp"] = "2030-01-01T00:00:00Z"
    new["metadata"]["generation"] = 9
    kinds.prepare_update(CONFIGMAPS, new, old)
    assert new["metadata"]["uid"] == "uid-1"
    assert new["metadata"]["creationTimestamp"] == "2026-01-01T00:00:00Z"
    assert "generation" not in new["metadata"]
    strategy = kinds.strategy_for(CONFIGMAPS)
    assert strategy.validate_update(new, old) == []

    other = copy.deepcopy(old)
    other["metadata"]["uid"] = "someone-else"
    other["metadata"]["name"] = "d"
    kinds.prepare_update(CONFIGMAPS, other, old)
    assert [f"{c.field}: {c.message}" for c in strategy.validate_update(other, old)] == [
        'metadata.name: Invalid value: "d": field is immutable',
        'metadata.uid: Invalid value: "someone-else": field is immutable',
    ]


def test_deletion_timestamp_survives_updates() -> None:
    old = config_map()
    old["metadata"]["deletionTimestamp"] = "2026-02-01T00:00:00Z"
    old["metadata"]["deletionGracePeriodSeconds"] = 30
    new = copy.deepcopy(old)
    del new["metadata"]["deletionTimestamp"]
    del new["metadata"]["deletionGracePeriodSeconds"]
    kinds.prepare_update(CONFIGMAPS, new, old)
    assert new["metadata"]["deletionTimestamp"] == "2026-02-01T00:00:00Z"
    assert new["metadata"]["deletionGracePeriodSeconds"] == 30


def test_scale_writes_bump_the_generation_status_writes_do_not() -> None:
    strategy = kinds.strategy_for(DEPLOYMENTS)
    old: dict[str, Any] = {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "a", "image": "x"}]},
            },
        },
    }
    strategy.default(old)
    kinds.prepare_create(DEPLOYMENTS, old, "2026-01-01T00:00:00Z", "uid-1")
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 5
    kinds.prepare_update(DEPLOYMENTS, scaled, old, "scale")
    assert scaled["metadata"]["generation"] == 2
    status = copy.deepcopy(old)
    status["status"] = {"observedGeneration": 1}
    kinds.prepare_update(DEPLOYMENTS, status, old, "status")
    assert status["metadata"]["generation"] == 1
    assert status["status"] == {"observedGeneration": 1}
