"""Pod admission: does a pod fit what the node has left? Upstream's ``predicateAdmitHandler``
with ``noderesources.Fits``, for CPU, memory and the pod count.

A pod is admitted against the node's ``allocatable`` minus the requests of the pods already
admitted and not finished; pods are considered in creation order, so of two that do not both
fit the older one wins, as upstream's ``HandlePodAdditions`` sorts them. Simplified: extended
resources, node affinity, taints and host ports are the scheduler's to judge and not checked
again here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from raftkube.apiserver.kinds.pods import pod_requests
from raftkube.apiserver.quantity import Quantity, QuantityError, parse_quantity_json

Obj = dict[str, Any]


@attrs.frozen
class Rejection:
    """Why a pod is refused: ``reason`` (``OutOfcpu``) and upstream's message, which the
    kubelet prefixes with "Pod was rejected: " in the pod's status."""

    reason: str
    message: str


def _amount(name: str, value: Any) -> int:
    """CPU in millicores, the rest in whole units, rounded up as upstream's Quantity does."""
    try:
        quantity = value if isinstance(value, Quantity) else parse_quantity_json(value)
    except QuantityError:
        return 0
    return quantity.milli_value() if name == "cpu" else quantity.value()


def requests_of(pod: Obj) -> dict[str, int]:
    requested = pod_requests(pod.get("spec") or {})
    return {name: _amount(name, requested[name]) for name in ("cpu", "memory") if name in requested}


def allocatable_of(allocatable: Mapping[str, Any]) -> dict[str, int]:
    return {name: _amount(name, value) for name, value in allocatable.items()}


def admit(pod: Obj, admitted: Iterable[Obj], allocatable: Mapping[str, int]) -> Rejection | None:
    """None if ``pod`` fits beside ``admitted`` within ``allocatable`` (amounts from
    :func:`allocatable_of`), else the first shortfall in upstream's order: pods, cpu, memory.
    Its message is ``InsufficientResourceError.Error()``."""
    others = list(admitted)
    used = {"pods": len(others), "cpu": 0, "memory": 0}
    for other in others:
        for name, value in requests_of(other).items():
            used[name] += value
    wanted = {"pods": 1, **requests_of(pod)}
    for name in ("pods", "cpu", "memory"):
        request = wanted.get(name, 0)
        if name != "pods" and request == 0:
            continue
        capacity = allocatable.get(name, 0)
        if used[name] + request > capacity:
            return Rejection(
                f"OutOf{name}",
                f"Node didn't have enough resource: {name}, requested: {request}, "
                f"used: {used[name]}, capacity: {capacity}",
            )
    return None
