"""core/v1 Secret and ConfigMap.

Secrets default to ``type: Opaque``; ``stringData`` is merged into ``data`` (base64) and
dropped, as upstream's v1 conversion does, so it is never stored. Keys must be valid config
keys, values valid base64, the whole at most 1 MiB, and each built-in secret type must carry
its required keys. ``immutable: true`` freezes the data (and itself); a secret's ``type`` never
changes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import Cause
from . import field as f
from .names import is_config_map_key
from .schema import BOOLEAN, BYTES, STRING, STRING_MAP, Schema, kind_schema, map_of
from .strategy import Obj, Strategy, as_dict, get

MAX_SECRET_SIZE = 1024 * 1024
_IMMUTABLE_SET = "field is immutable when `immutable` is set"

SECRET = kind_schema(data=map_of(BYTES), stringData=STRING_MAP, type=STRING, immutable=BOOLEAN)
CONFIG_MAP = kind_schema(data=STRING_MAP, binaryData=map_of(BYTES), immutable=BOOLEAN)

# The keys each built-in secret type requires (``ValidateSecret``).
_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def _decode(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _keys(values: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for name in values if isinstance(values, dict) else {}:
        causes += f.each(f.key(path, name), name, is_config_map_key(str(name)))
    return causes


def _immutable(new: Obj, old: Obj, fields: tuple[str, ...]) -> list[Cause]:
    if old.get("immutable") is not True:
        return []
    causes: list[Cause] = []
    if new.get("immutable") is not True:
        causes.append(f.forbidden("immutable", _IMMUTABLE_SET))
    for name in fields:
        if (new.get(name) or {}) != (old.get(name) or {}):
            causes.append(f.forbidden(name, _IMMUTABLE_SET))
    return causes


class SecretStrategy(Strategy):
    schema: ClassVar[Schema] = SECRET
    extra_field_labels = ("type",)

    def _default(self, obj: Obj) -> None:
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict) and string_data:
            data = obj.get("data")
            if not isinstance(data, dict):
                data = obj["data"] = {}
            for name, value in string_data.items():
                data[name] = base64.b64encode(str(value).encode()).decode()

    def _validate(self, obj: Obj) -> list[Cause]:
        data = as_dict(obj.get("data"))
        causes = _keys(data, "data")
        total = 0
        for name, value in data.items():
            raw = _decode(value)
            if raw is None:
                causes.append(
                    f.invalid(
                        f.key("data", name), "<secret contents redacted>", "must be valid base64"
                    )
                )
            else:
                total += len(raw)
        if total > MAX_SECRET_SIZE:
            causes.append(f.too_long("data", MAX_SECRET_SIZE))
        kind = obj.get("type")
        for required in _REQUIRED_KEYS.get(str(kind), ()):
            if required not in data:
                causes.append(f.required(f.key("data", required)))
        if kind == "kubernetes.io/service-account-token" and not get(
            obj, "metadata", "annotations", "kubernetes.io/service-account.name"
        ):
            causes.append(f.required("metadata.annotations[kubernetes.io/service-account.name]"))
        if kind == "kubernetes.io/basic-auth" and not ({"username", "password"} & set(data)):
            causes.append(
                f.required(
                    "data[username]",
                    "either username or password is required to use basic authentication",
                )
            )
        return causes

    def _validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes: list[Cause] = []
        if new.get("type") != old.get("type"):
            causes.append(f.immutable("type", new.get("type") or ""))
        return causes + _immutable(new, old, ("data",))

    def _field_labels(self, obj: Mapping[str, Any]) -> dict[str, str]:
        return {"type": str(obj.get("type") or "")}


class ConfigMapStrategy(Strategy):
    schema: ClassVar[Schema] = CONFIG_MAP

    def _validate(self, obj: Obj) -> list[Cause]:
        data = as_dict(obj.get("data"))
        binary = as_dict(obj.get("binaryData"))
        causes = _keys(data, "data") + _keys(binary, "binaryData")
        total = 0
        for value in data.values():
            total += len(str(value).encode())
        for name, value in binary.items():
            if name in data:
                causes.append(
                    f.invalid(f.key("binaryData", name), name, "duplicate of key present in data")
                )
            raw = _decode(value)
            if raw is None:
                causes.append(
                    f.invalid(f.key("binaryData", name), "<binary data>", "must be valid base64")
                )
            else:
                total += len(raw)
        if total > MAX_SECRET_SIZE:
            causes.append(f.too_long("", MAX_SECRET_SIZE))
        return causes

    def _validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return _immutable(new, old, ("data", "binaryData"))
