"""What the kind (strategy) tests share: a resource by group and name, and validation causes as
the ``field: message`` lines they are compared as."""

from __future__ import annotations

from typing import Any

from raftkube.apiserver import kinds, resources
from raftkube.apiserver.errors import Cause


def resource_info(group: str, resource: str) -> resources.ResourceInfo:
    """The v1 resource ``resource`` of ``group`` (which must be served)."""
    found = resources.lookup(group, "v1", resource)
    assert found is not None
    return found


def text(causes: list[Cause]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


def errors_of(resource: resources.ResourceInfo, body: dict[str, Any]) -> list[str]:
    """What creating ``body`` is refused for, after the kind's defaults."""
    strategy = kinds.strategy_for(resource)
    strategy.default(body)
    return text(strategy.validate_create(body))
