"""What the member and endpoint commands gather for the printer: one row per member or
endpoint, in the shape etcdctl prints it (:mod:`raftkube.rkctl.output`)."""

from __future__ import annotations

import attrs

from raftkube.api.wire import WireHeader


@attrs.frozen
class MemberRow:
    """One member as ``member list`` shows it."""

    id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool = False


@attrs.frozen
class StatusRow:
    """One endpoint as ``endpoint status`` shows it (etcd's DB-size columns are omitted:
    raftkube's store does not report a size)."""

    endpoint: str
    header: WireHeader
    version: str
    leader: int
    raft_index: int
    raft_applied_index: int
    is_learner: bool = False
    errors: tuple[str, ...] = ()
    """Why the member cannot serve everything (a disk fault), as etcd lists its alarms."""


@attrs.frozen
class HealthRow:
    """One endpoint as ``endpoint health`` shows it."""

    endpoint: str
    health: bool
    took: float
    error: str = ""
