"""Pod volumes as files: upstream's volume plugins for ``emptyDir``, ``configMap``,
``secret``, ``downwardAPI`` and ``projected`` (with ``serviceAccountToken``, which is how the
service-account token reaches every pod).

Each volume is a directory ``{root}/{pod uid}/volumes/{name}`` filled before the pod's first
container starts; containers get it as a CRI mount (container path, host path). Keys become
files (``items`` pick and rename them), modes follow ``defaultMode``/``mode``. The token is
requested through ``serviceaccounts/{name}/token`` bound to the pod (what the Node
authorizer and NodeRestriction allow a kubelet), with the volume's ``expirationSeconds`` and
``audience``. A missing ConfigMap or Secret that is not ``optional`` is :class:`VolumeError`:
the container waits in ``ContainerCreating`` with upstream's message until it appears.
Simplified: files are written once when the pod starts (not refreshed when the ConfigMap
changes or the token nears expiry), written directly rather than through upstream's atomic
``..data`` symlink swap, and other volume types (hostPath, persistent volumes) are skipped.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from raftkube.kubelet.env import Fetch, field_value

Obj = dict[str, Any]
RequestToken = Callable[[str, Obj], Awaitable[str]]
"""``request_token(service_account, token_request_spec)``: a token for the pod."""


class VolumeError(Exception):
    reason = "ContainerCreating"


def _write(directory: Path, relative: str, data: bytes, mode: int) -> None:
    path = directory / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)


async def _keys(fetch: Fetch, resource: str, name: str, optional: bool) -> dict[str, bytes]:
    obj = await fetch(resource, name)
    if obj is None:
        if optional:
            return {}
        kind = "configmap" if resource == "configmaps" else "secret"
        raise VolumeError(f'{kind} "{name}" not found')
    if resource == "secrets":
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
    out = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return out


def _project(
    directory: Path, data: dict[str, bytes], items: list[Obj] | None, mode: int, what: str
) -> None:
    if not items:
        for key, value in data.items():
            _write(directory, key, value, mode)
        return
    for item in items:
        if item["key"] not in data:
            raise VolumeError(
                f"configmap references non-existent config key: {item['key']}"
                if what == "configmaps"
                else f"references non-existent secret key: {item['key']}"
            )
        _write(directory, item["path"], data[item["key"]], int(item.get("mode") or mode))


async def _source(
    pod: Obj, directory: Path, source: Obj, mode: int, fetch: Fetch, token: RequestToken,
    pod_ip: str, host_ip: str,
) -> None:  # fmt: skip
    if "configMap" in source or "secret" in source:
        resource = "configmaps" if "configMap" in source else "secrets"
        ref = source.get("configMap") or source.get("secret") or {}
        name = ref.get("name") or ref.get("secretName") or ""
        data = await _keys(fetch, resource, name, bool(ref.get("optional")))
        _project(directory, data, ref.get("items"), int(ref.get("defaultMode") or mode), resource)
    elif "downwardAPI" in source:
        for item in source["downwardAPI"].get("items") or []:
            path = (item.get("fieldRef") or {}).get("fieldPath", "")
            value = field_value(pod, path, pod_ip, host_ip)
            _write(directory, item["path"], value.encode(), int(item.get("mode") or mode))
    elif "serviceAccountToken" in source:
        request = source["serviceAccountToken"]
        spec: Obj = {"expirationSeconds": int(request.get("expirationSeconds") or 3600)}
        if request.get("audience"):
            spec["audiences"] = [request["audience"]]
        account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        _write(directory, request["path"], (await token(account, spec)).encode(), mode)


async def materialize(
    pod: Obj,
    root: Path,
    fetch: Fetch,
    token: RequestToken,
    pod_ip: str,
    host_ip: str,
) -> dict[str, str]:
    """Write every supported volume of ``pod`` under ``root``; its host directory by name.

    Supported: emptyDir, configMap, secret, downwardAPI and projected sources. Any other kind
    (hostPath, persistentVolumeClaim, ...) is left out of the answer, so its mounts are not
    made: this runtime has no storage of its own to back them."""
    base = root / pod["metadata"]["uid"] / "volumes"
    out: dict[str, str] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        directory = base / volume["name"]
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        if "emptyDir" in volume:
            pass  # the fresh directory is the whole of an emptyDir
        elif "projected" in volume:
            mode = int(volume["projected"].get("defaultMode") or 0o644)
            for source in volume["projected"].get("sources") or []:
                await _source(pod, directory, source, mode, fetch, token, pod_ip, host_ip)
        elif any(kind in volume for kind in ("configMap", "secret", "downwardAPI")):
            kind = next(k for k in ("configMap", "secret", "downwardAPI") if k in volume)
            mode = int(volume[kind].get("defaultMode") or 0o644)
            await _source(pod, directory, {kind: volume[kind]}, mode, fetch, token, pod_ip, host_ip)
        else:
            continue
        out[volume["name"]] = str(directory)
    return out


def remove(pod_uid: str, root: Path) -> None:
    shutil.rmtree(root / pod_uid, ignore_errors=True)
