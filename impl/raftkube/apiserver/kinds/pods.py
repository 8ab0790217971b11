"""core/v1 Pod and its ``binding`` subresource: upstream's pod strategy on JSON objects.

On create a pod's status is reset to ``phase: Pending`` with its ``qosClass`` computed from
the containers' requests and limits (``qos.GetPodQOS``), and a ``PodScheduled=False``
condition if scheduling gates hold it. A pod's spec is immutable except
container and init-container images, ``activeDeadlineSeconds`` (set, or lowered),
additions to ``tolerations`` (existing ones may only change ``tolerationSeconds``) and
removal of scheduling gates; any other change, ``nodeName`` included (only a Binding sets
it), is upstream's ``Forbidden: pod updates may not change fields other than ...``. The diff
upstream appends is rendered here as one line per changed path rather than Go's cmp output.

``/status`` takes the spec and the owner references from the stored pod (old kubelets used
to corrupt owner references), and keeps the stored QoS class if the writer dropped it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import Cause
from ..quantity import Quantity, QuantityError, parse_quantity_json
from . import field as f
from .names import inclusive_range_error, is_dns1123_subdomain, is_valid_ip
from .poddefaults import default_pod_spec
from .podschema import BINDING, POD
from .podspec import validate_pod_spec, validate_tolerations
from .schema import Schema
from .strategy import Obj, Strategy, as_dict, dicts, get, sub

# Priority classes every cluster has (the Priority admission plugin's built-ins).
SYSTEM_PRIORITY_CLASSES = {
    "system-node-critical": 2000001000,
    "system-cluster-critical": 2000000000,
}

POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
    "set to 1 if it was previously negative)"
)
_MAX_INT32 = 2**31 - 1


def qos_class(spec: Obj) -> str:
    """``Guaranteed``, ``Burstable`` or ``BestEffort``, as upstream's ``GetPodQOS``."""
    requests: dict[str, Quantity] = {}
    limits: dict[str, Quantity] = {}
    guaranteed = True
    for container in dicts(spec.get("containers")) + dicts(spec.get("initContainers")):
        resources = container.get("resources") or {}
        found: set[str] = set()
        for part, into in (("requests", requests), ("limits", limits)):
            values = resources.get(part) if isinstance(resources, dict) else None
            for name, value in (values or {}).items() if isinstance(values, dict) else ():
                if name not in ("cpu", "memory"):
                    continue
                try:
                    quantity = parse_quantity_json(value)
                except QuantityError:
                    continue
                if quantity.is_zero():
                    continue
                into[name] = into[name] + quantity if name in into else quantity
                if part == "limits":
                    found.add(name)
        if found != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    equal = all(limits.get(n) == q for n, q in requests.items())
    if guaranteed and equal and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def _requests(container: Obj) -> dict[str, Quantity]:
    requests = get(container, "resources", "requests")
    found: dict[str, Quantity] = {}
    for name, value in requests.items() if isinstance(requests, dict) else ():
        try:
            found[name] = parse_quantity_json(value)
        except QuantityError:
            continue
    return found


def _add(into: dict[str, Quantity], more: dict[str, Quantity]) -> None:
    for name, quantity in more.items():
        into[name] = into[name] + quantity if name in into else quantity


def _max(into: dict[str, Quantity], more: dict[str, Quantity]) -> None:
    for name, quantity in more.items():
        if name not in into or quantity > into[name]:
            into[name] = quantity


def pod_requests(spec: Obj) -> dict[str, Quantity]:
    """What a pod requests of a node, as upstream's ``resourcehelper.PodRequests``: the sum of
    its containers and restartable (sidecar) init containers, at least what any init container
    needs while it runs beside the sidecars started before it, plus the pod's ``overhead``.
    The scheduler and kubelet compare this with a node's allocatable; call it on a defaulted
    spec (requests default to limits)."""
    total: dict[str, Quantity] = {}
    for container in dicts(spec.get("containers")):
        _add(total, _requests(container))
    sidecars: dict[str, Quantity] = {}
    init_peak: dict[str, Quantity] = {}
    for container in dicts(spec.get("initContainers")):
        requests = _requests(container)
        if container.get("restartPolicy") == "Always":
            _add(total, requests)
            _add(sidecars, requests)
            _max(init_peak, sidecars)
        else:
            running = dict(requests)
            _add(running, sidecars)
            _max(init_peak, running)
    _max(total, init_peak)
    overhead = spec.get("overhead")
    if isinstance(overhead, dict):
        _add(total, _requests({"resources": {"requests": overhead}}))
    return total


def _diff(old: Any, new: Any, path: str, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for name in sorted(set(old) | set(new)):
            _diff(old.get(name), new.get(name), f.child(path, name), out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff(a, b, f.index(path, i), out)
    elif old != new:
        out.append(f"  {path}: {f.show(old)} -> {f.show(new)}")


def _munge_images(new: Obj, old: Obj, name: str) -> None:
    for mine, theirs in zip(dicts(new.get(name)), dicts(old.get(name)), strict=False):
        if "image" in theirs:
            mine["image"] = theirs["image"]
        else:
            mine.pop("image", None)


def _only_added_tolerations(new: Any, old: Any, path: str) -> list[Cause]:
    new_list = dicts(new)
    for existing in dicts(old):
        wanted = {k: v for k, v in existing.items() if k != "tolerationSeconds"}
        if not any(
            {k: v for k, v in t.items() if k != "tolerationSeconds"} == wanted for t in new_list
        ):
            return [
                f.forbidden(
                    path, "existing toleration can not be modified except its tolerationSeconds"
                )
            ]
    return validate_tolerations(new, path)


def validate_pod_spec_update(new: Obj, old: Obj) -> list[Cause]:
    """``ValidatePodUpdate``'s spec rules."""
    path = "spec"
    causes: list[Cause] = []
    for name in ("containers", "initContainers"):
        if len(dicts(new.get(name))) != len(dicts(old.get(name))):
            return [
                f.forbidden(f.child(path, name), "pod updates may not add or remove containers")
            ]
        for i, container in enumerate(dicts(new.get(name))):
            if not container.get("image"):
                causes.append(f.required(f.child(f.index(f.child(path, name), i), "image")))
    deadline_path = f.child(path, "activeDeadlineSeconds")
    new_deadline, old_deadline = new.get("activeDeadlineSeconds"), old.get("activeDeadlineSeconds")
    if isinstance(new_deadline, int):
        if not 0 <= new_deadline <= _MAX_INT32:
            return [
                *causes,
                f.invalid(deadline_path, new_deadline, inclusive_range_error(0, _MAX_INT32)),
            ]
        if isinstance(old_deadline, int) and old_deadline < new_deadline:
            return [
                *causes,
                f.invalid(
                    deadline_path, new_deadline, "must be less than or equal to previous value"
                ),
            ]
    elif old_deadline is not None:
        causes.append(
            f.invalid(deadline_path, None, "must not update from a positive integer to nil value")
        )
    old_gates = {g.get("name") for g in dicts(old.get("schedulingGates"))}
    for gate in dicts(new.get("schedulingGates")):
        if gate.get("name") not in old_gates:
            causes.append(
                f.forbidden(
                    f.child(path, "schedulingGates"),
                    f"only deletion is allowed, but found new scheduling gate '{gate.get('name')}'",
                )
            )
    causes += _only_added_tolerations(
        new.get("tolerations"), old.get("tolerations"), f.child(path, "tolerations")
    )

    munged = copy.deepcopy(new)
    _munge_images(munged, old, "containers")
    _munge_images(munged, old, "initContainers")
    for name in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        if name in old:
            munged[name] = copy.deepcopy(old[name])
        else:
            munged.pop(name, None)
    old_grace = old.get("terminationGracePeriodSeconds")
    if (
        isinstance(old_grace, int)
        and old_grace < 0
        and munged.get("terminationGracePeriodSeconds") == 1
    ):
        munged["terminationGracePeriodSeconds"] = old_grace
    if munged != old:
        lines: list[str] = []
        _diff(old, munged, path, lines)
        causes.append(f.forbidden(path, "\n".join([POD_UPDATE_FORBIDDEN, *lines])))
    return causes


class PodStrategy(Strategy):
    schema: ClassVar[Schema] = POD
    extra_field_labels = (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    )

    def _default(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        default_pod_spec(spec)
        spec.setdefault("enableServiceLinks", True)
        # The Priority admission plugin's part: a pod's priority comes from its class.
        if "priority" not in spec:
            spec["priority"] = SYSTEM_PRIORITY_CLASSES.get(spec.get("priorityClassName", ""), 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")

    def prepare_for_create(self, obj: Obj) -> None:
        spec = as_dict(obj.get("spec"))
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}
        if dicts(spec.get("schedulingGates")):
            # Upstream's applySchedulingGatedCondition: a gated pod says why it waits.
            obj["status"]["conditions"] = [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "SchedulingGated",
                    "message": "Scheduling is blocked due to non-empty scheduling gates",
                }
            ]

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_status_update(new, old)
        meta, old_meta = sub(new, "metadata"), old.get("metadata") or {}
        if "ownerReferences" in old_meta:
            meta["ownerReferences"] = copy.deepcopy(old_meta["ownerReferences"])
        else:
            meta.pop("ownerReferences", None)
        qos = get(old, "status", "qosClass")
        if qos and isinstance(new.get("status"), dict) and not new["status"].get("qosClass"):
            new["status"]["qosClass"] = qos

    def _validate(self, obj: Obj) -> list[Cause]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [f.required("spec")]
        return validate_pod_spec(spec)

    def _validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        new_spec, old_spec = new.get("spec"), old.get("spec")
        if not isinstance(new_spec, dict) or not isinstance(old_spec, dict):
            return []
        return validate_pod_spec_update(new_spec, old_spec)

    def _validate_status(self, status: Obj, old_status: Obj) -> list[Cause]:
        """``ValidatePodStatusUpdate``'s address and name checks."""
        causes: list[Cause] = []
        nominated = status.get("nominatedNodeName")
        if nominated:
            causes += f.each(
                "status.nominatedNodeName", nominated, is_dns1123_subdomain(str(nominated))
            )
        for part in ("podIPs", "hostIPs"):
            for i, entry in enumerate(dicts(status.get(part))):
                ip = entry.get("ip")
                at = f.child(f.index(f.child("status", part), i), "ip")
                causes += f.each(at, ip or "", is_valid_ip(str(ip)))
        return causes

    def _field_labels(self, obj: Mapping[str, Any]) -> dict[str, str]:
        # Asked of any stored pod, and of bodies not yet validated: a spec or status of the
        # wrong JSON type has no field values, it does not fail the selector.
        spec: Mapping[str, Any] = _mapping(obj.get("spec"))
        status: Mapping[str, Any] = _mapping(obj.get("status"))
        pod_ips = dicts(status.get("podIPs"))
        return {
            "spec.nodeName": str(spec.get("nodeName") or ""),
            "spec.restartPolicy": str(spec.get("restartPolicy") or ""),
            "spec.schedulerName": str(spec.get("schedulerName") or ""),
            "spec.serviceAccountName": str(spec.get("serviceAccountName") or ""),
            "spec.hostNetwork": "true" if spec.get("hostNetwork") is True else "false",
            "status.phase": str(status.get("phase") or ""),
            "status.podIP": str(pod_ips[0].get("ip") or "") if pod_ips else "",
            "status.nominatedNodeName": str(status.get("nominatedNodeName") or ""),
        }


class BindingStrategy(Strategy):
    """``pods/binding`` and ``bindings``: assigns a pod to a node (``ValidatePodBinding``)."""

    schema: ClassVar[Schema] = BINDING

    def _validate(self, obj: Obj) -> list[Cause]:
        target = as_dict(obj.get("target"))
        causes: list[Cause] = []
        kind = target.get("kind") or ""
        if kind and kind != "Node":
            causes.append(f.not_supported("target.kind", kind, ("Node", "<empty>")))
        if not target.get("name"):
            causes.append(f.required("target.name"))
        return causes


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}
