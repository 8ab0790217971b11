"""Validation of a PodSpec, as ``ValidatePodSpec`` in ``pkg/apis/core/validation``.

Covered, with upstream's fields and messages: containers (required, DNS-label names unique
across all containers, image required, pull policy, termination message policy, ports, env
names, volume mounts naming a volume, probes with one handler, resources), volumes (DNS-label
names, unique, one source), restart and DNS policies, ``activeDeadlineSeconds``,
``terminationGracePeriodSeconds``, node selector labels, service account and node names,
host name and subdomain, tolerations, and resource quantities (valid, non-negative, standard
names, requests no greater than limits).

Simplified: security contexts, affinity terms, DNS config, topology spread constraints and
the less common volume sources are checked by the schema (field names) only.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from ..errors import Cause
from ..quantity import Quantity, QuantityError, parse_quantity_json
from . import field as f
from .meta import validate_labels
from .names import (
    inclusive_range_error,
    is_config_map_key,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    is_relaxed_env_var_name,
    is_valid_port_name,
    is_valid_port_num,
)
from .podschema import VOLUME_SOURCES
from .strategy import Obj, dicts

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("SCTP", "TCP", "UDP")
TERMINATION_MESSAGE_POLICIES = ("FallbackToLogsOnError", "File")
TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
_MAX_INT32 = 2**31 - 1


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _enum(path: str, value: Any, supported: tuple[str, ...]) -> list[Cause]:
    if value is None or value == "":
        return [f.required(path)]
    if value not in supported:
        return [f.not_supported(path, value, supported)]
    return []


def validate_quantity(path: str, value: Any) -> tuple[Quantity | None, list[Cause]]:
    """A quantity that parses and is not negative (upstream answers a parse failure at decode
    time with a 400; here it is an ``Invalid value`` cause at the field)."""
    try:
        quantity = parse_quantity_json(value)
    except QuantityError as error:
        return None, [f.invalid(path, value, str(error))]
    if quantity.amount < 0:
        return quantity, [f.invalid(path, quantity.canonical(), f.NEGATIVE)]
    return quantity, []


def _resource_name(path: str, name: str) -> list[Cause]:
    causes = f.each(path, name, is_qualified_name(name))
    if (
        "/" not in name
        and name not in _STANDARD_CONTAINER_RESOURCES
        and not name.startswith("hugepages-")
    ):
        causes.append(f.invalid(path, name, "must be a standard resource for containers"))
    return causes


def _overcommit_allowed(name: str) -> bool:
    """Native resources but huge pages may be requested below their limit; extended ones
    (``example.com/gpu``) must be requested exactly at it (upstream's ``IsOvercommitAllowed``)."""
    native = "/" not in name or "kubernetes.io/" in name
    return native and not name.startswith("hugepages-")


def validate_resources(resources: Any, path: str) -> list[Cause]:
    """``ValidateResourceRequirements``: names, quantities, and requests <= limits (== for
    resources that cannot be overcommitted, which also need a limit)."""
    if not isinstance(resources, dict):
        return []
    causes: list[Cause] = []
    limits: dict[str, Quantity] = {}
    limit_names = set(resources.get("limits") or {})
    for part in ("limits", "requests"):
        values = resources.get(part)
        if not isinstance(values, dict):
            continue
        for name, value in values.items():
            at = f.key(f.child(path, part), name)
            causes += _resource_name(at, name)
            quantity, problems = validate_quantity(at, value)
            causes += problems
            if quantity is None:
                continue
            if part == "limits":
                limits[name] = quantity
                continue
            if name in limits:
                limit = limits[name]
                if quantity != limit and not _overcommit_allowed(name):
                    causes.append(
                        f.invalid(
                            f.child(path, "requests"),
                            quantity.canonical(),
                            f"must be equal to {name} limit of {limit.canonical()}",
                        )
                    )
                elif quantity > limit:
                    causes.append(
                        f.invalid(
                            f.child(path, "requests"),
                            quantity.canonical(),
                            f"must be less than or equal to {name} limit of {limit.canonical()}",
                        )
                    )
            elif name not in limit_names and not _overcommit_allowed(name):
                causes.append(
                    f.required(
                        f.child(path, "limits"),
                        "Limit must be set for non overcommitable resources",
                    )
                )
    return causes


def _ports(ports: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, port in enumerate(dicts(ports)):
        at = f.index(path, i)
        name = port.get("name")
        if name:
            problems = is_valid_port_name(str(name))
            if problems:
                causes += f.each(f.child(at, "name"), name, problems)
            elif name in names:
                causes.append(f.duplicate(f.child(at, "name"), name))
            names.add(str(name))
        container_port = port.get("containerPort")
        if not container_port:
            causes.append(f.required(f.child(at, "containerPort")))
        elif _is_int(container_port):
            causes += f.each(
                f.child(at, "containerPort"), container_port, is_valid_port_num(container_port)
            )
        host_port = port.get("hostPort")
        if _is_int(host_port) and host_port != 0:
            causes += f.each(f.child(at, "hostPort"), host_port, is_valid_port_num(host_port))
        causes += _enum(f.child(at, "protocol"), port.get("protocol"), PROTOCOLS)
    return causes


_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")


def _probe(probe: Any, path: str, must_succeed_once: bool) -> list[Cause]:
    if not isinstance(probe, dict):
        return []
    causes: list[Cause] = []
    present = [h for h in _HANDLERS if probe.get(h) is not None]
    if not present:
        causes.append(f.required(path, "must specify a handler type"))
    for extra in present[1:]:
        causes.append(f.forbidden(f.child(path, extra), "may not specify more than 1 handler type"))
    for name in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        causes += f.nonnegative(f.child(path, name), probe.get(name))
    success = probe.get("successThreshold")
    if must_succeed_once and _is_int(success) and success != 1:
        causes.append(f.invalid(f.child(path, "successThreshold"), success, "must be 1"))
    return causes


_VALUE_FROM_SOURCES = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")


def _key_selector(selector: Obj, path: str) -> list[Cause]:
    causes = f.each(
        f.child(path, "name"),
        selector.get("name") or "",
        is_dns1123_subdomain(str(selector.get("name") or "")),
    )
    key = selector.get("key")
    if not key:
        causes.append(f.required(f.child(path, "key")))
    else:
        causes += f.each(f.child(path, "key"), key, is_config_map_key(str(key)))
    return causes


def _value_from(var: Obj, path: str) -> list[Cause]:
    """``validateEnvVarValueFrom``: exactly one source, and not together with ``value``."""
    value_from = var.get("valueFrom")
    if not isinstance(value_from, dict):
        return []
    causes: list[Cause] = []
    sources = [s for s in _VALUE_FROM_SOURCES if value_from.get(s) is not None]
    for source in ("configMapKeyRef", "secretKeyRef"):
        if isinstance(value_from.get(source), dict):
            causes += _key_selector(value_from[source], f.child(path, source))
    field_ref = value_from.get("fieldRef")
    if isinstance(field_ref, dict) and not field_ref.get("fieldPath"):
        causes.append(f.required(f.child(path, "fieldRef", "fieldPath")))
    if not sources:
        causes.append(
            f.invalid(
                path,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, "
                "`configMapKeyRef` or `secretKeyRef`",
            )
        )
    elif var.get("value"):
        causes.append(f.invalid(path, "", "may not be specified when `value` is not empty"))
    elif len(sources) > 1:
        causes.append(f.invalid(path, "", "may not have more than one field specified at a time"))
    return causes


def _env(env: Any, path: str) -> list[Cause]:
    """``ValidateEnv`` with 1.32's relaxed names (any printable ASCII but ``=``)."""
    causes: list[Cause] = []
    for i, var in enumerate(dicts(env)):
        at = f.index(path, i)
        name = str(var.get("name") or "")
        if not name:
            causes.append(f.required(f.child(at, "name")))
        causes += f.each(f.child(at, "name"), name, is_relaxed_env_var_name(name))
        causes += _value_from(var, f.child(at, "valueFrom"))
    return causes


def _volume_mounts(mounts: Any, path: str, volumes: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, mount in enumerate(dicts(mounts)):
        at = f.index(path, i)
        name = mount.get("name")
        if not name:
            causes.append(f.required(f.child(at, "name")))
        elif name not in volumes:
            causes.append(f.not_found(f.child(at, "name"), name))
        mount_path = mount.get("mountPath")
        if not mount_path:
            causes.append(f.required(f.child(at, "mountPath")))
        elif mount_path in seen:
            causes.append(f.invalid(f.child(at, "mountPath"), mount_path, "must be unique"))
        else:
            seen.add(str(mount_path))
    return causes


def _unique_label_name(item: Obj, at: str, names: set[str]) -> list[Cause]:
    """A container's or volume's ``name``: required, a DNS-1123 label, and not one already in
    ``names`` (which it joins)."""
    name = item.get("name")
    if not name:
        return [f.required(f.child(at, "name"))]
    causes = f.each(f.child(at, "name"), name, is_dns1123_label(str(name)))
    if name in names:
        causes.append(f.duplicate(f.child(at, "name"), name))
    names.add(str(name))
    return causes


def _containers(
    containers: Any, path: str, volumes: set[str], names: set[str], init: bool
) -> list[Cause]:
    causes: list[Cause] = []
    for i, container in enumerate(dicts(containers)):
        at = f.index(path, i)
        causes += _unique_label_name(container, at, names)
        image = container.get("image")
        if not image:
            causes.append(f.required(f.child(at, "image")))
        elif isinstance(image, str) and image.strip() != image:
            causes.append(
                f.invalid(
                    f.child(at, "image"), image, "must not have leading or trailing whitespace"
                )
            )
        if "imagePullPolicy" in container:
            causes += _enum(
                f.child(at, "imagePullPolicy"), container["imagePullPolicy"], PULL_POLICIES
            )
        if "terminationMessagePolicy" in container:
            causes += _enum(
                f.child(at, "terminationMessagePolicy"),
                container["terminationMessagePolicy"],
                TERMINATION_MESSAGE_POLICIES,
            )
        causes += _ports(container.get("ports"), f.child(at, "ports"))
        causes += _env(container.get("env"), f.child(at, "env"))
        causes += _volume_mounts(
            container.get("volumeMounts"), f.child(at, "volumeMounts"), volumes
        )
        if init and container.get("restartPolicy") != "Always":
            for probe in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if container.get(probe) is not None:
                    causes.append(
                        f.forbidden(
                            f.child(at, probe),
                            "may not be set for init containers without restartPolicy=Always",
                        )
                    )
        else:
            causes += _probe(container.get("livenessProbe"), f.child(at, "livenessProbe"), True)
            causes += _probe(container.get("readinessProbe"), f.child(at, "readinessProbe"), False)
            causes += _probe(container.get("startupProbe"), f.child(at, "startupProbe"), True)
        causes += validate_resources(container.get("resources"), f.child(at, "resources"))
    return causes


def _volumes(volumes: Any, path: str) -> tuple[set[str], list[Cause]]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, volume in enumerate(dicts(volumes)):
        at = f.index(path, i)
        causes += _unique_label_name(volume, at, names)
        sources = [s for s in volume if s in VOLUME_SOURCES]
        if not sources:
            causes.append(f.required(at, "must specify a volume type"))
        for extra in sources[1:]:
            causes.append(
                f.forbidden(f.child(at, extra), "may not specify more than 1 volume type")
            )
    return names, causes


def validate_tolerations(tolerations: Any, path: str) -> list[Cause]:
    """``ValidateTolerations``, check for check and in upstream's order."""
    causes: list[Cause] = []
    for i, toleration in enumerate(dicts(tolerations)):
        at = f.index(path, i)
        key, operator = toleration.get("key") or "", toleration.get("operator") or ""
        value, effect = toleration.get("value") or "", toleration.get("effect") or ""
        if key:
            causes += f.each(f.child(at, "key"), key, is_qualified_name(str(key)))
        elif operator != "Exists":
            causes.append(
                f.invalid(
                    f.child(at, "operator"),
                    operator,
                    "operator must be Exists when `key` is empty, which means "
                    '"match all values and all keys"',
                )
            )
        if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
            causes.append(
                f.invalid(
                    f.child(at, "effect"),
                    effect,
                    "effect must be 'NoExecute' when `tolerationSeconds` is set",
                )
            )
        if operator in ("Equal", ""):
            problems = is_label_value(str(value))
            if problems:
                causes.append(f.invalid(f.child(at, "operator"), value, ";".join(problems)))
        elif operator == "Exists":
            if value:
                causes.append(
                    f.invalid(
                        f.child(at, "operator"),
                        toleration,
                        "value must be empty when `operator` is 'Exists'",
                    )
                )
        else:
            causes.append(f.not_supported(f.child(at, "operator"), operator, TOLERATION_OPERATORS))
        if effect and effect not in TAINT_EFFECTS:
            causes.append(f.not_supported(f.child(at, "effect"), effect, TAINT_EFFECTS))
    return causes


def validate_pod_spec(spec: Obj, path: str = "spec") -> list[Cause]:
    """``ValidatePodSpec`` after defaulting (so the policies are present)."""
    volumes, causes = _volumes(spec.get("volumes"), f.child(path, "volumes"))
    names: set[str] = set()
    containers = spec.get("containers")
    if not dicts(containers):
        causes.append(f.required(f.child(path, "containers")))
    causes += _containers(containers, f.child(path, "containers"), volumes, names, False)
    causes += _containers(
        spec.get("initContainers"), f.child(path, "initContainers"), volumes, names, True
    )
    causes += _enum(f.child(path, "restartPolicy"), spec.get("restartPolicy"), RESTART_POLICIES)
    causes += _enum(f.child(path, "dnsPolicy"), spec.get("dnsPolicy"), DNS_POLICIES)
    causes += validate_labels(spec.get("nodeSelector"), f.child(path, "nodeSelector"))
    for name, check in (
        ("serviceAccountName", is_dns1123_subdomain),
        ("nodeName", is_dns1123_subdomain),
        ("hostname", is_dns1123_label),
        ("subdomain", is_dns1123_label),
    ):
        value = spec.get(name)
        if value:
            causes += f.each(f.child(path, name), value, check(str(value)))
    causes += f.nonnegative(
        f.child(path, "terminationGracePeriodSeconds"), spec.get("terminationGracePeriodSeconds")
    )
    deadline = spec.get("activeDeadlineSeconds")
    if _is_int(deadline) and not 1 <= deadline <= _MAX_INT32:
        causes.append(
            f.invalid(
                f.child(path, "activeDeadlineSeconds"),
                deadline,
                inclusive_range_error(1, _MAX_INT32),
            )
        )
    causes += validate_tolerations(spec.get("tolerations"), f.child(path, "tolerations"))
    return causes
