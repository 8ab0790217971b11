"""core/v1 Namespace, Node and ServiceAccount.

Namespaces: DNS-label names; on create ``spec.finalizers`` gets ``kubernetes`` and
``status.phase`` is ``Active``; the label ``kubernetes.io/metadata.name`` always equals the
name (set by defaulting and again after name generation, as upstream's ``Canonicalize``).
An update of the namespace keeps the stored finalizers and status; ``/finalize`` changes only
the finalizers, ``/status`` only the status.

Nodes: subdomain names, taints (qualified keys, known effects, unique by key and effect),
capacity and allocatable quantities (``allocatable`` defaults to ``capacity``); a node may be
created with its status, as kubelets do. ``podCIDR(s)`` and ``providerID`` may be set once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import Cause
from . import field as f
from .meta import finalizer_name_problems
from .names import is_qualified_name, name_is_dns_label
from .poddefaults import canonical_quantities
from .podspec import TAINT_EFFECTS, validate_quantity
from .schema import (
    BOOLEAN,
    INT32,
    INT64,
    OBJECT_REFERENCE,
    QUANTITY_MAP,
    STRING,
    STRINGS,
    TIME,
    Schema,
    arr,
    conditions,
    kind_schema,
    obj,
)
from .strategy import Obj, Strategy, as_dict, dicts, get, meta_of, sub

METADATA_NAME_LABEL = "kubernetes.io/metadata.name"

NAMESPACE = kind_schema(
    spec=obj(finalizers=STRINGS),
    status=obj(phase=STRING, conditions=conditions()),
)

_NODE_CONFIG_SOURCE = obj(
    configMap=obj(
        namespace=STRING,
        name=STRING,
        uid=STRING,
        resourceVersion=STRING,
        kubeletConfigKey=STRING,
    )
)
TAINT = obj(("key", "effect"), key=STRING, value=STRING, effect=STRING, timeAdded=TIME)
_ADDRESS = obj(("type", "address"), type=STRING, address=STRING)
NODE = kind_schema(
    spec=obj(
        podCIDR=STRING,
        podCIDRs=arr(STRING, strategy="merge"),
        providerID=STRING,
        unschedulable=BOOLEAN,
        taints=arr(TAINT),
        configSource=_NODE_CONFIG_SOURCE,
        externalID=STRING,
    ),
    status=obj(
        capacity=QUANTITY_MAP,
        allocatable=QUANTITY_MAP,
        phase=STRING,
        conditions=conditions("lastHeartbeatTime"),
        addresses=arr(_ADDRESS, "type"),
        daemonEndpoints=obj(kubeletEndpoint=obj(Port=INT32)),
        nodeInfo=obj(
            machineID=STRING,
            systemUUID=STRING,
            bootID=STRING,
            kernelVersion=STRING,
            osImage=STRING,
            containerRuntimeVersion=STRING,
            kubeletVersion=STRING,
            kubeProxyVersion=STRING,
            operatingSystem=STRING,
            architecture=STRING,
            swap=obj(capacity=INT64),
        ),
        images=arr(obj(names=STRINGS, sizeBytes=INT64)),
        volumesInUse=STRINGS,
        volumesAttached=arr(obj(name=STRING, devicePath=STRING)),
        config=obj(
            assigned=_NODE_CONFIG_SOURCE,
            active=_NODE_CONFIG_SOURCE,
            lastKnownGood=_NODE_CONFIG_SOURCE,
            error=STRING,
        ),
        runtimeHandlers=arr(
            obj(name=STRING, features=obj(recursiveReadOnlyMounts=BOOLEAN, userNamespaces=BOOLEAN))
        ),
        features=obj(supplementalGroupsPolicy=BOOLEAN),
    ),
)

SERVICE_ACCOUNT = kind_schema(
    secrets=arr(
        OBJECT_REFERENCE,
        "name",
    ),
    imagePullSecrets=arr(obj(name=STRING)),
    automountServiceAccountToken=BOOLEAN,
)


def _set_name_label(obj: Obj) -> None:
    meta = meta_of(obj)
    if meta.get("name"):
        labels = meta.get("labels")
        if not isinstance(labels, dict):
            labels = meta["labels"] = {}
        labels[METADATA_NAME_LABEL] = meta["name"]


class NamespaceStrategy(Strategy):
    schema: ClassVar[Schema] = NAMESPACE

    def check_name(self, name: str, prefix: bool) -> list[str]:
        return name_is_dns_label(name, prefix)

    extra_field_labels = ("status.phase", "name")

    def _default(self, obj: Obj) -> None:
        _set_name_label(obj)

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Active"}
        spec = sub(obj, "spec")
        finalizers = spec.get("finalizers")
        if not isinstance(finalizers, list):
            finalizers = spec["finalizers"] = []
        if "kubernetes" not in finalizers:
            finalizers.append("kubernetes")
        _set_name_label(obj)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        old_finalizers = get(old, "spec", "finalizers")
        spec = sub(new, "spec")
        if old_finalizers is None:
            spec.pop("finalizers", None)
        else:
            spec["finalizers"] = list(old_finalizers)
        _set_name_label(new)

    def prepare_for_subresource_update(self, subresource: str, new: Obj, old: Obj) -> None:
        """``/finalize`` writes the finalizers only: the status stays the stored one."""
        if subresource != "finalize":
            super().prepare_for_subresource_update(subresource, new, old)
            return
        if "status" in old:
            new["status"] = old["status"]
        _set_name_label(new)

    def _validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        # A namespace's own finalizers are reported at the list, item by item.
        for name in get(obj, "spec", "finalizers") or []:
            name = str(name)
            causes += f.each("spec.finalizers", name, is_qualified_name(name))
            causes += f.each("spec.finalizers", name, finalizer_name_problems(name))
        return causes

    def _field_labels(self, obj: Mapping[str, Any]) -> dict[str, str]:
        return {
            "status.phase": str(get(obj, "status", "phase") or ""),
            "name": str(get(obj, "metadata", "name") or ""),
        }


def _valid_cidr(value: Any) -> bool:
    try:
        ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return False
    return "/" in str(value)


class NodeStrategy(Strategy):
    schema: ClassVar[Schema] = NODE
    extra_field_labels = ("spec.unschedulable",)

    def _default(self, obj: Obj) -> None:
        status = obj.get("status")
        if isinstance(status, dict):
            canonical_quantities(status.get("capacity"))
            canonical_quantities(status.get("allocatable"))
            if isinstance(status.get("capacity"), dict) and "allocatable" not in status:
                status["allocatable"] = dict(status["capacity"])

    def prepare_for_create(self, obj: Obj) -> None:
        """Nodes are created with their status (kubelets register that way); only the
        retired dynamic kubelet configuration fields are dropped, as upstream does."""
        as_dict(obj.get("spec")).pop("configSource", None)
        as_dict(obj.get("status")).pop("config", None)

    def _validate(self, obj: Obj) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        causes: list[Cause] = []
        seen: set[tuple[Any, Any]] = set()
        for i, taint in enumerate(dicts(spec.get("taints"))):
            at = f.index("spec.taints", i)
            key, effect = taint.get("key") or "", taint.get("effect") or ""
            causes += f.each(f.child(at, "key"), key, is_qualified_name(str(key)))
            if not effect:
                causes.append(f.required(f.child(at, "effect")))
            elif effect not in TAINT_EFFECTS:
                causes.append(f.not_supported(f.child(at, "effect"), effect, TAINT_EFFECTS))
            if (key, effect) in seen:
                shown = f.Raw(
                    f'core.Taint{{Key:"{key}", Value:"{taint.get("value") or ""}", '
                    f'Effect:"{effect}", TimeAdded:<nil>}}'
                )
                causes.append(
                    f.duplicate(at, shown, "taints must be unique by key and effect pair")
                )
            seen.add((key, effect))
        for i, cidr in enumerate(spec.get("podCIDRs") or []):
            if not _valid_cidr(cidr):
                causes.append(
                    f.invalid(
                        f.index("spec.podCIDRs", i),
                        cidr,
                        "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                    )
                )
        status = as_dict(obj.get("status"))
        for part in ("capacity", "allocatable"):
            for name, value in (status.get(part) or {}).items():
                causes += validate_quantity(f.key(f.child("status", part), name), value)[1]
        return causes

    def _validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes: list[Cause] = []
        old_cidrs = get(old, "spec", "podCIDRs") or []
        if old_cidrs and get(new, "spec", "podCIDRs") != old_cidrs:
            causes.append(
                f.forbidden(
                    "spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'
                )
            )
        old_provider = get(old, "spec", "providerID")
        if old_provider and get(new, "spec", "providerID") != old_provider:
            causes.append(
                f.forbidden(
                    "spec.providerID",
                    'node updates may not change providerID except from "" to valid',
                )
            )
        return causes

    def _field_labels(self, obj: Mapping[str, Any]) -> dict[str, str]:
        return {"spec.unschedulable": "true" if get(obj, "spec", "unschedulable") else "false"}


class ServiceAccountStrategy(Strategy):
    schema: ClassVar[Schema] = SERVICE_ACCOUNT
