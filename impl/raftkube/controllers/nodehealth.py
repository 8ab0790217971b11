"""The node lifecycle controller's decisions, as plain functions of cached objects and the
controller's own clock reading.

Upstream's ``pkg/controller/nodelifecycle`` (``tryUpdateNodeHealth``, ``ComputeZoneState``,
``handleDisruption``, ``doNoScheduleTaintingPass``) and ``k8s.io/component-helpers``'
``GetZoneKey``. The controller keeps one :class:`NodeHealth` per node: the time *on its own
clock* at which it last saw the node's Ready heartbeat or its Lease change
(``probe_timestamp``). A node is judged by ``now - probe_timestamp`` against the grace period,
never by a remote ``renewTime`` or ``lastHeartbeatTime`` against the local clock: those remote
times are only compared with the previous remote time of the same object, to see that it
changed. So the verdict holds under any offset between the kubelet's and the controller's
clocks, though not under a rate difference larger than the grace period absorbs.

Departure from upstream: a node that never posted a Ready condition starts its startup grace
period when the controller first sees it, not at ``metadata.creationTimestamp`` (a remote wall
time upstream compares with the local clock).
"""

from __future__ import annotations

import copy
import datetime
import enum
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

Obj = dict[str, Any]

NODE_LEASE_NAMESPACE = "kube-node-lease"

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
TAINT_DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
TAINT_NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"
TAINT_PID_PRESSURE = "node.kubernetes.io/pid-pressure"

NO_EXECUTE = "NoExecute"
NO_SCHEDULE = "NoSchedule"

UNREACHABLE_TAINT: Obj = {"key": TAINT_UNREACHABLE, "effect": NO_EXECUTE}
"""upstream's ``UnreachableTaintTemplate``."""
NOT_READY_TAINT: Obj = {"key": TAINT_NOT_READY, "effect": NO_EXECUTE}
"""upstream's ``NotReadyTaintTemplate``."""

CONDITION_TO_TAINT: dict[str, dict[str, str]] = {
    "Ready": {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE},
    "MemoryPressure": {"True": TAINT_MEMORY_PRESSURE},
    "DiskPressure": {"True": TAINT_DISK_PRESSURE},
    "NetworkUnavailable": {"True": TAINT_NETWORK_UNAVAILABLE},
    "PIDPressure": {"True": TAINT_PID_PRESSURE},
}
"""upstream's ``nodeConditionToTaintKeyStatusMap``: the NoSchedule taint each condition means."""
_CONDITION_TAINT_KEYS = frozenset(k for m in CONDITION_TO_TAINT.values() for k in m.values())

UNKNOWN_CONDITION_TYPES = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
"""The conditions set to Unknown when the kubelet falls silent (NetworkUnavailable is the
control plane's own and is left alone)."""

LABEL_ZONE = "topology.kubernetes.io/zone"
LABEL_REGION = "topology.kubernetes.io/region"
LABEL_ZONE_BETA = "failure-domain.beta.kubernetes.io/zone"
LABEL_REGION_BETA = "failure-domain.beta.kubernetes.io/region"
LABEL_EXCLUDE_DISRUPTION = "node.kubernetes.io/exclude-disruption"


def rfc3339(wall: float) -> str:
    """A ``metav1.Time`` as the API serialises it (whole seconds, UTC)."""
    return datetime.datetime.fromtimestamp(int(wall), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_condition(node: Obj | None, condition_type: str) -> Obj | None:
    """upstream's ``GetNodeCondition``."""
    for condition in ((node or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == condition_type:
            return dict(condition)
    return None


def ready_status(node: Obj) -> str | None:
    """The Ready condition's status ("True", "False", "Unknown"), None if there is none."""
    condition = node_condition(node, "Ready")
    return None if condition is None else str(condition.get("status"))


def zone_key(node: Obj) -> str:
    """``GetZoneKey``: region and zone from the GA labels (else the beta ones), joined by
    ``":\\x00:"``; "" when the node has neither."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    region = labels.get(LABEL_REGION) or labels.get(LABEL_REGION_BETA) or ""
    zone = labels.get(LABEL_ZONE) or labels.get(LABEL_ZONE_BETA) or ""
    if not region and not zone:
        return ""
    return f"{region}:\x00:{zone}"


def excluded_from_disruption(node: Obj) -> bool:
    return LABEL_EXCLUDE_DISRUPTION in ((node.get("metadata") or {}).get("labels") or {})


def taint_exists(taints: Sequence[Obj], template: Obj) -> bool:
    """``TaintExists``: a taint with the template's key and effect (``MatchTaint``)."""
    return any(
        t.get("key") == template["key"] and t.get("effect") == template["effect"] for t in taints
    )


def node_taints(node: Obj) -> list[Obj]:
    return list((node.get("spec") or {}).get("taints") or [])


def swap_taints(
    taints: Sequence[Obj], add: Sequence[Obj], remove: Sequence[Obj], time_added: str
) -> list[Obj]:
    """The taints after ``AddOrUpdateTaintOnNode(add)`` then ``RemoveTaintOffNode(remove)``:
    a taint to add replaces one with its key and effect, and NoExecute ones carry
    ``timeAdded`` (``SwapNodeControllerTaint`` stamps every taint it adds)."""
    result = [dict(t) for t in taints]
    for taint in add:
        new = dict(taint)
        new["timeAdded"] = time_added
        result = [t for t in result if not taint_exists([t], new)]
        result.append(new)
    return [t for t in result if not any(taint_exists([t], r) for r in remove)]


# --- health -------------------------------------------------------------------------------


@attrs.frozen
class NodeHealth:
    """upstream's ``nodeHealthData``: what the controller last saw, and when (its clock)."""

    probe_timestamp: float
    ready_transition_timestamp: float
    ready: Obj | None
    """The Ready condition last seen in the node's status."""
    lease_renew_time: str | None
    """The ``spec.renewTime`` of the Lease last seen (compared only with the next one)."""


@attrs.frozen
class HealthVerdict:
    """What :func:`update_node_health` decided for one node."""

    health: NodeHealth
    observed_ready: Obj
    """The Ready condition as the node had it (a made-up Unknown one if it had none)."""
    current_ready: Obj | None
    """The Ready condition after this decision."""
    status_update: Obj | None
    """The node with its conditions set Unknown, to PUT to ``nodes/{name}/status``; None if
    nothing is to be written."""


def _parse_time(text: str | None) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _before(saved: str, observed: str | None) -> bool:
    """``metav1.MicroTime.Before``: the saved renewTime is earlier than the observed one (two
    readings of the same remote clock; a missing time counts as the zero time)."""
    earlier, later = _parse_time(saved), _parse_time(observed)
    if later is None:
        return False
    return earlier is None or earlier < later


def _timestamp_of(condition: Obj | None, field: str) -> Any:
    return None if condition is None else condition.get(field)


def update_node_health(
    node: Obj,
    lease: Obj | None,
    saved: NodeHealth | None,
    now: float,
    wall: float,
    *,
    grace_period: float,
    startup_grace_period: float,
) -> HealthVerdict:
    """``tryUpdateNodeHealth``: renew the probe time when the Ready heartbeat or the Lease
    changed since last seen; past the grace period (the startup one for a node that never
    posted Ready), the node's Ready, MemoryPressure, DiskPressure and PIDPressure conditions
    become Unknown ("Kubelet stopped posting node status.", or "Kubelet never posted node
    status." for one it lacks). ``wall`` only stamps the conditions written."""
    current = node_condition(node, "Ready")
    stamp = rfc3339(wall)
    if current is None:
        created = (node.get("metadata") or {}).get("creationTimestamp")
        observed: Obj = {
            "type": "Ready",
            "status": "Unknown",
            "lastHeartbeatTime": created,
            "lastTransitionTime": created,
        }
        grace = startup_grace_period
    else:
        observed = dict(current)
        grace = grace_period
    saved_ready = saved.ready if saved is not None else None
    health = saved
    if saved is None or (saved_ready is None) != (current is None):
        health = NodeHealth(now, now, current, None if saved is None else saved.lease_renew_time)
    elif current is not None and _timestamp_of(saved_ready, "lastHeartbeatTime") != current.get(
        "lastHeartbeatTime"
    ):
        transition = saved.ready_transition_timestamp
        if _timestamp_of(saved_ready, "lastTransitionTime") != current.get("lastTransitionTime"):
            transition = now
        health = NodeHealth(now, transition, current, saved.lease_renew_time)
    assert health is not None
    renew = ((lease or {}).get("spec") or {}).get("renewTime")
    if lease is not None and (
        health.lease_renew_time is None or _before(health.lease_renew_time, renew)
    ):
        health = attrs.evolve(health, probe_timestamp=now, lease_renew_time=renew)
    if now <= health.probe_timestamp + grace:
        return HealthVerdict(health, observed, current, None)

    updated = copy.deepcopy(node)
    conditions = updated.setdefault("status", {}).setdefault("conditions", [])
    for condition_type in UNKNOWN_CONDITION_TYPES:
        existing = next((c for c in conditions if c.get("type") == condition_type), None)
        if existing is None:
            conditions.append(
                {
                    "type": condition_type,
                    "status": "Unknown",
                    "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.",
                    "lastHeartbeatTime": (node.get("metadata") or {}).get("creationTimestamp"),
                    "lastTransitionTime": stamp,
                }
            )
        elif existing.get("status") != "Unknown":
            existing["status"] = "Unknown"
            existing["reason"] = "NodeStatusUnknown"
            existing["message"] = "Kubelet stopped posting node status."
            existing["lastTransitionTime"] = stamp
    new_ready = node_condition(updated, "Ready")
    if new_ready == observed:
        return HealthVerdict(health, observed, current, None)
    health = NodeHealth(health.probe_timestamp, now, new_ready, renew)
    return HealthVerdict(health, observed, new_ready, updated)


def no_schedule_taint_changes(node: Obj) -> tuple[list[Obj], list[Obj]]:
    """``doNoScheduleTaintingPass``: the NoSchedule taints the node's conditions (and
    ``spec.unschedulable``) call for, against those it carries: (to add, to remove)."""
    wanted: list[Obj] = []
    for condition in (node.get("status") or {}).get("conditions") or []:
        key = CONDITION_TO_TAINT.get(condition.get("type", ""), {}).get(condition.get("status"))
        if key is not None:
            wanted.append({"key": key, "effect": NO_SCHEDULE})
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.append({"key": TAINT_UNSCHEDULABLE, "effect": NO_SCHEDULE})
    have = [
        t
        for t in node_taints(node)
        if t.get("effect") == NO_SCHEDULE
        and (t.get("key") == TAINT_UNSCHEDULABLE or t.get("key") in _CONDITION_TAINT_KEYS)
    ]
    to_add = [w for w in wanted if not taint_exists(have, w)]
    to_remove = [h for h in have if not taint_exists(wanted, h)]
    return to_add, to_remove


# --- zones --------------------------------------------------------------------------------


class ZoneState(enum.StrEnum):
    INITIAL = "Initial"
    NORMAL = "Normal"
    FULL_DISRUPTION = "FullDisruption"
    PARTIAL_DISRUPTION = "PartialDisruption"


@attrs.frozen
class DisruptionConfig:
    """The flags of zone disruption, with upstream's defaults."""

    eviction_rate: float = 0.1  # --node-eviction-rate
    secondary_eviction_rate: float = 0.01  # --secondary-node-eviction-rate
    unhealthy_zone_threshold: float = 0.55  # --unhealthy-zone-threshold
    large_cluster_threshold: int = 50  # --large-cluster-size-threshold


def compute_zone_state(
    ready_statuses: Sequence[str | None], config: DisruptionConfig
) -> tuple[int, ZoneState]:
    """``ComputeZoneState``: (not-ready count, state) of a zone from its nodes' Ready
    statuses. FullDisruption when none is ready; PartialDisruption when more than two are not
    and they are at least the threshold's share."""
    ready = sum(1 for s in ready_statuses if s == "True")
    not_ready = len(ready_statuses) - ready
    if ready == 0 and not_ready > 0:
        return not_ready, ZoneState.FULL_DISRUPTION
    if not_ready > 2 and not_ready / (not_ready + ready) >= config.unhealthy_zone_threshold:
        return not_ready, ZoneState.PARTIAL_DISRUPTION
    return not_ready, ZoneState.NORMAL


def zone_qps(state: ZoneState, zone_size: int, config: DisruptionConfig) -> float:
    """``setLimiterInZone``: the eviction rate for a zone in ``state``. A partially disrupted
    zone of a large cluster evicts at the secondary rate and a small one not at all
    (``ReducedQPSFunc``); a fully disrupted zone, while others are not, at the normal rate
    (``HealthyQPSFunc``)."""
    if state == ZoneState.PARTIAL_DISRUPTION:
        return config.secondary_eviction_rate if zone_size > config.large_cluster_threshold else 0
    return config.eviction_rate


@attrs.frozen
class DisruptionDecision:
    """What ``handleDisruption`` does after a monitoring pass."""

    zone_states: dict[str, ZoneState]
    limiter_qps: dict[str, float]
    """The zones whose tainting rate changes, and the new rate (0 stops tainting)."""
    enter_full_disruption: bool = False
    """Every zone is fully disrupted: remove the NoExecute taints of every node."""
    exit_full_disruption: bool = False
    """Leaving the all-zones-down mode: every node's probe time restarts now."""


def handle_disruption(
    zone_states: Mapping[str, ZoneState],
    zone_ready: Mapping[str, Sequence[str | None]],
    config: DisruptionConfig,
) -> DisruptionDecision:
    """``handleDisruption`` from the previous zone states and this pass's Ready statuses per
    zone. When every zone is fully disrupted the fault is most likely the control plane's own
    view (a network partition), so evictions stop everywhere; leaving that mode resets the
    limiters; otherwise each zone whose state changed gets its state's rate. Zones without
    nodes any more are forgotten."""
    new_states = {
        zone: compute_zone_state(statuses, config)[1] for zone, statuses in zone_ready.items()
    }
    all_are_full = all(s == ZoneState.FULL_DISRUPTION for s in new_states.values())
    states = {z: s for z, s in zone_states.items() if z in zone_ready}
    for zone in zone_ready:
        states.setdefault(zone, ZoneState.INITIAL)
    all_were_full = all(s == ZoneState.FULL_DISRUPTION for s in states.values())
    if all_are_full and all_were_full:
        return DisruptionDecision(states, {})
    if all_are_full:
        return DisruptionDecision(
            {z: ZoneState.FULL_DISRUPTION for z in states},
            {z: 0.0 for z in states},
            enter_full_disruption=True,
        )
    sizes = {zone: len(statuses) for zone, statuses in zone_ready.items()}
    if all_were_full:
        return DisruptionDecision(
            dict(new_states),
            {z: zone_qps(new_states[z], sizes[z], config) for z in states},
            exit_full_disruption=True,
        )
    qps = {
        z: zone_qps(new_states[z], sizes[z], config)
        for z, old in states.items()
        if new_states[z] != old
    }
    return DisruptionDecision({z: new_states[z] for z in states}, qps)
