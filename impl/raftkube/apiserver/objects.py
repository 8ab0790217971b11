"""Small facts about any object: its metadata, its identity, timestamps, generated names.

Everything here is deterministic given its inputs: uids and generated name suffixes come from
a ``random.Random`` the server is built with (seeded from the OS in production, from the run's
seed in simulation), and timestamps from the server's wall clock.
"""

from __future__ import annotations

import datetime
import random
import uuid
from typing import Any

from raftkube.apiserver import errors
from raftkube.apiserver.resources import ResourceInfo

# Upstream's generateName alphabet: no vowels (no words), no 0/1/3 (no look-alikes).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_NAME_SUFFIX = 5
_MAX_GENERATE_PREFIX = 63 - _NAME_SUFFIX


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj["metadata"]``, created if absent (a body may omit it)."""
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    return m


def name_of(obj: dict[str, Any]) -> str:
    return str(meta(obj).get("name") or "")


def namespace_of(obj: dict[str, Any]) -> str:
    return str(meta(obj).get("namespace") or "")


def rv_of(obj: dict[str, Any]) -> int:
    """The object's resourceVersion as the store revision it is; 0 if it has none."""
    text = str(meta(obj).get("resourceVersion") or "")
    return parse_rv(text) if text else 0


def parse_rv(text: str) -> int:
    """A resourceVersion the client sent, which must be one we gave out: a decimal revision."""
    try:
        value = int(text)
    except ValueError:
        raise errors.bad_request(f'invalid resource version "{text}"') from None
    if value < 0:
        raise errors.bad_request(f'invalid resource version "{text}"')
    return value


def new_uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def generate_name(prefix: str, rng: random.Random) -> str:
    """``prefix`` (cut to leave room) plus five random characters, as upstream's
    ``names.SimpleNameGenerator``."""
    suffix = "".join(rng.choice(_NAME_ALPHABET) for _ in range(_NAME_SUFFIX))
    return prefix[:_MAX_GENERATE_PREFIX] + suffix


def rfc3339(epoch_seconds: float) -> str:
    """``2024-05-01T12:00:00Z``: Kubernetes timestamps have whole seconds."""
    when = datetime.datetime.fromtimestamp(int(epoch_seconds), tz=datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(epoch_seconds: float) -> str:
    """``MicroTime`` (Lease renew times, event series): microsecond precision."""
    when = datetime.datetime.fromtimestamp(epoch_seconds, tz=datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> float:
    """Epoch seconds from an RFC 3339 timestamp as written by :func:`rfc3339` or clients."""
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise errors.bad_request(f"invalid timestamp {text!r}") from None
    return when.timestamp()


def check_type(info: ResourceInfo, obj: dict[str, Any]) -> None:
    """Fill in ``apiVersion`` and ``kind`` if the body left them out, and refuse a body of
    another type with upstream's wording."""
    api_version = obj.get("apiVersion") or info.group_version
    kind = obj.get("kind") or info.kind
    if api_version != info.group_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({info.group_version})"
        )
    if kind != info.kind:
        raise errors.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({info.kind})"
        )
    obj["apiVersion"], obj["kind"] = api_version, kind


def check_namespace(info: ResourceInfo, obj: dict[str, Any], url_namespace: str) -> None:
    """Set the object's namespace from the URL (a mismatch is refused, as upstream)."""
    m = meta(obj)
    if not info.namespaced:
        m.pop("namespace", None)
        return
    body_ns = m.get("namespace") or ""
    if body_ns and url_namespace and body_ns != url_namespace:
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    m["namespace"] = url_namespace or body_ns
    if not m["namespace"]:
        raise errors.bad_request("the namespace of the object is required")
