"""Eventual stable reconciliation's view of a Service's Endpoints (upstream's output): the
selected pods' IPs, the Ready ones as ``addresses``, the others as ``notReadyAddresses``,
both exactly, on hand-made revisions."""

from __future__ import annotations

import json
from typing import Any

from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.checks.reconciliation import unreconciled
from raftkube_spec.kv.types import KeyValue

SERVICE = {
    "kind": "Service",
    "metadata": {"name": "svc", "namespace": "default"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
}


def _pod(name: str, ip: str, ready: bool) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": f"u-{name}",
                     "labels": {"app": "web"}},
        "spec": {"nodeName": ""},
        "status": {"phase": "Running", "podIP": ip,
                   "conditions": [{"type": "Ready", "status": str(ready)}]},
    }  # fmt: skip


def _address(ip: str) -> dict[str, Any]:
    """The address of the pod ``_pod`` names after the last digit of ``ip`` (1: a, 2: b)."""
    name = "ab"[int(ip[-1]) - 1]
    return {"ip": ip, "targetRef": {"kind": "Pod", "namespace": "default", "name": name,
                                    "uid": f"u-{name}"}}  # fmt: skip


def _endpoints(ready: list[str], not_ready: list[str]) -> dict[str, Any]:
    subset: dict[str, Any] = {"ports": [{"port": 8080, "protocol": "TCP"}]}
    if ready:
        subset["addresses"] = [_address(ip) for ip in ready]
    if not_ready:
        subset["notReadyAddresses"] = [_address(ip) for ip in not_ready]
    return {"kind": "Endpoints", "metadata": {"name": "svc", "namespace": "default"},
            "subsets": [subset] if ready or not_ready else []}  # fmt: skip


def _problems(pods: list[dict[str, Any]], endpoints: dict[str, Any]) -> list[str]:
    """What reconciliation says of ``endpoints`` for SERVICE with ``pods`` (written in
    order, one revision each, so a pod named twice changes)."""
    objects = [("/registry/services/default/svc", SERVICE)]
    objects += [(f"/registry/pods/default/{p['metadata']['name']}", p) for p in pods]
    objects.append(("/registry/endpoints/default/svc", endpoints))
    observer = ClusterObserver()
    observer.follow(
        {
            2 + i: (KeyValue(key.encode(), 2 + i, 2 + i, 1, json.dumps(obj).encode()),)
            for i, (key, obj) in enumerate(objects)
        }
    )
    return [p for p in unreconciled(observer) if p.startswith("service ")]


def test_endpoints_as_upstream_writes_them_are_reconciled() -> None:
    pods = [_pod("a", "10.0.0.1", True), _pod("b", "10.0.0.2", False)]
    assert _problems(pods, _endpoints(["10.0.0.1"], ["10.0.0.2"])) == []
    assert _problems([], _endpoints([], [])) == []


def test_a_gone_pod_still_listed_as_not_ready_is_unreconciled() -> None:
    assert _problems([], _endpoints([], ["10.0.0.2"])) == [
        "service svc: notReadyAddresses ['10.0.0.2'], not-ready pods []"
    ]


def test_a_pod_listed_under_its_old_readiness_is_unreconciled() -> None:
    was_ready_then_not = [_pod("a", "10.0.0.1", True), _pod("a", "10.0.0.1", False)]
    assert _problems(was_ready_then_not, _endpoints(["10.0.0.1"], [])) == [
        "service svc: addresses ['10.0.0.1'], ready pods []",
        "service svc: notReadyAddresses [], not-ready pods ['10.0.0.1']",
    ]
