"""What the Table and printer tests build rows from: a fixed clock, timestamps relative to it,
an object with the usual metadata, and a kind's ResourceInfo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from raftkube.apiserver import resources

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def obj(kind_meta: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    metadata = {
        "name": "x",
        "namespace": "default",
        "creationTimestamp": ago(122),
        "resourceVersion": "7",
        "uid": "u-1",
    }
    metadata.update(kind_meta or {})
    return {"metadata": metadata, **fields}


def info(group: str, kind: str) -> resources.ResourceInfo:
    found = next(r for r in resources.RESOURCES if r.group == group and r.kind == kind)
    return found
