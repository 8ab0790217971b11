"""A container's environment: upstream's ``makeEnvironmentVariables``.

``envFrom`` (ConfigMaps and Secrets, with ``prefix``) first, then ``env`` in order, where a
value may refer to earlier variables as ``$(NAME)`` (``$$`` escapes) and ``valueFrom`` reads the
downward API (``fieldRef``: the pod's name, namespace, uid, labels and annotations, node name,
service account, host and pod IPs; ``resourceFieldRef``: the container's requests and limits)
or one key of a ConfigMap or Secret. A missing ConfigMap, Secret or key that is not
``optional`` is :class:`ConfigError`, shown as upstream's ``CreateContainerConfigError``.
Simplified: the service environment variables (``{SVC}_SERVICE_HOST``...) are not added.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from typing import Any

from raftkube.apiserver.quantity import QuantityError, parse_quantity_json

Obj = dict[str, Any]
Fetch = Callable[[str, str], Awaitable[Obj | None]]
"""``fetch(resource, name)``: a ConfigMap or Secret of the pod's namespace, or None."""


class ConfigError(Exception):
    reason = "CreateContainerConfigError"


_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, known: dict[str, str]) -> str:
    """``$(NAME)`` of a variable defined before becomes its value; others stay as written."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return known.get(match.group(1), match.group(0))

    return _REFERENCE.sub(sub, text)


def field_value(pod: Obj, path: str, pod_ip: str, host_ip: str) -> str:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    subscript = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if subscript:
        return str((meta.get(subscript.group(1)) or {}).get(subscript.group(2), ""))
    values = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
    }
    if path not in values:
        raise ConfigError(f'unsupported fieldRef path "{path}"')
    return str(values[path])


def resource_value(container: Obj, ref: Obj) -> str:
    """``resourceFieldRef``: ``limits.cpu`` etc. divided by ``divisor`` and rounded up."""
    kind, _, name = str(ref.get("resource", "")).partition(".")
    amount = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if amount is None:
        return "0"
    try:
        value = parse_quantity_json(amount)
        divisor = parse_quantity_json(ref.get("divisor") or "1")
    except QuantityError as exc:
        raise ConfigError(str(exc)) from None
    milli, per = value.milli_value(), max(divisor.milli_value(), 1)
    return str(-(-milli // per))


async def _key(fetch: Fetch, resource: str, ref: Obj) -> str | None:
    obj = await fetch(resource, ref.get("name", ""))
    kind = "configmap" if resource == "configmaps" else "secret"
    optional = bool(ref.get("optional"))
    if obj is None:
        if optional:
            return None
        raise ConfigError(f'{kind} "{ref.get("name", "")}" not found')
    data = obj.get("data") or {}
    if ref.get("key") not in data:
        if optional:
            return None
        raise ConfigError(
            f"couldn't find key {ref.get('key')} in {kind.title()} "
            f"{obj['metadata'].get('namespace')}/{ref.get('name')}"
        )
    value = str(data[ref["key"]])
    return base64.b64decode(value).decode() if resource == "secrets" else value


async def container_env(
    pod: Obj, container: Obj, pod_ip: str, host_ip: str, fetch: Fetch
) -> tuple[tuple[str, str], ...]:
    """The environment of ``container`` in ``pod`` (see the module docstring)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        resource, ref = (
            ("configmaps", source["configMapRef"])
            if source.get("configMapRef")
            else ("secrets", source.get("secretRef") or {})
        )
        obj = await fetch(resource, ref.get("name", ""))
        if obj is None:
            if ref.get("optional"):
                continue
            kind = "configmap" if resource == "configmaps" else "secret"
            raise ConfigError(f'{kind} "{ref.get("name", "")}" not found')
        for key, data in (obj.get("data") or {}).items():
            text = base64.b64decode(data).decode() if resource == "secrets" else str(data)
            env[f"{source.get('prefix', '')}{key}"] = text
    for var in container.get("env") or []:
        source = var.get("valueFrom")
        if source is None:
            env[var["name"]] = expand(str(var.get("value", "")), env)
            continue
        value: str | None
        if "fieldRef" in source:
            value = field_value(pod, source["fieldRef"].get("fieldPath", ""), pod_ip, host_ip)
        elif "resourceFieldRef" in source:
            value = resource_value(container, source["resourceFieldRef"])
        elif "configMapKeyRef" in source:
            value = await _key(fetch, "configmaps", source["configMapKeyRef"])
        else:
            value = await _key(fetch, "secrets", source.get("secretKeyRef") or {})
        if value is not None:
            env[var["name"]] = value
    return tuple(env.items())
