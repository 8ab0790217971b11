"""ObjectMeta validation, as ``k8s.io/apimachinery/pkg/api/validation/objectmeta.go``.

Labels are reported at ``metadata.labels`` and annotations at ``metadata.annotations`` (not
at the key), with the offending key or value as the bad value, exactly as upstream does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import Cause
from . import field as f
from .names import NameCheck, is_dns1123_label, is_label_value, is_qualified_name

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def validate_labels(labels: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for k, v in _map(labels).items():
        causes += f.each(path, k, is_qualified_name(k))
        if not isinstance(v, str):
            causes.append(f.invalid(path, v, "must be a string"))
        else:
            causes += f.each(path, v, is_label_value(v))
    return causes


def validate_annotations(annotations: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    total = 0
    for k, v in _map(annotations).items():
        # Annotation keys are qualified names, except that case does not matter.
        causes += f.each(path, k, is_qualified_name(k.lower()))
        total += len(k.encode()) + len(str(v).encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(f.too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return causes


def validate_owner_references(refs: Any, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not isinstance(refs, list):
        return causes
    first_controller = ""
    for ref in refs:
        ref = _map(ref)
        api_version = str(ref.get("apiVersion") or "")
        if not api_version.rpartition("/")[2]:
            causes.append(
                f.invalid(f.child(path, "apiVersion"), api_version, "version must not be empty")
            )
        for name in ("kind", "name", "uid"):
            if not ref.get(name):
                causes.append(
                    f.invalid(f.child(path, name), ref.get(name) or "", "must not be empty")
                )
        if api_version == "v1" and ref.get("kind") == "Event":
            causes.append(
                f.invalid(path, dict(ref), "/v1, Kind=Event is disallowed from being an owner")
            )
        if ref.get("controller") is True:
            current = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if first_controller:
                causes.append(
                    f.invalid(
                        path,
                        refs,
                        "Only one reference can have Controller "
                        f'set to true. Found "true" in references for '
                        f"{first_controller} and {current}",
                    )
                )
            else:
                first_controller = current
    return causes


def finalizer_name_problems(name: str) -> list[str]:
    """Core's ``validateKubeFinalizerName``: an unqualified finalizer must be a standard one."""
    if "/" not in name and name not in STANDARD_FINALIZERS:
        return ["name is neither a standard finalizer name nor is it fully qualified"]
    return []


def validate_finalizers(finalizers: Any, path: str) -> list[Cause]:
    """``metadata.finalizers``: qualified names (reported at the list, as apimachinery does),
    then the standard-name rule core adds (reported at each item, ``finalizers[i]``)."""
    causes: list[Cause] = []
    if not isinstance(finalizers, list):
        return causes
    names = [str(name) for name in finalizers]
    for name in names:
        causes += f.each(path, name, is_qualified_name(name))
    if "orphan" in names and "foregroundDeletion" in names:
        causes.append(
            f.invalid(path, names, "finalizer orphan and foregroundDeletion cannot be both set")
        )
    for i, name in enumerate(names):
        causes += f.each(f.index(path, i), name, finalizer_name_problems(name))
    return causes
    for name in finalizers:
        name = str(name)
        causes += f.each(path, name, is_qualified_name(name))
        if "/" not in name and name not in STANDARD_FINALIZERS:
            causes.append(
                f.invalid(
                    path,
                    name,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        causes.append(
            f.invalid(
                path, finalizers, "finalizer orphan and foregroundDeletion cannot be both set"
            )
        )
    return causes


def validate_object_meta(
    meta: Mapping[str, Any], namespaced: bool, name_check: NameCheck, path: str = "metadata"
) -> list[Cause]:
    """``ValidateObjectMeta`` for a create: name generation has already happened."""
    causes: list[Cause] = []
    generate_name = meta.get("generateName")
    if generate_name:
        causes += f.each(
            f.child(path, "generateName"), generate_name, name_check(str(generate_name), True)
        )
    name = meta.get("name")
    if not name:
        causes.append(f.required(f.child(path, "name"), "name or generateName is required"))
    else:
        causes += f.each(f.child(path, "name"), name, name_check(str(name), False))
    causes += _common(meta, namespaced, path)
    return causes


def _common(meta: Mapping[str, Any], namespaced: bool, path: str) -> list[Cause]:
    causes: list[Cause] = []
    namespace = meta.get("namespace")
    if namespaced:
        if not namespace:
            causes.append(f.required(f.child(path, "namespace")))
        else:
            causes += f.each(
                f.child(path, "namespace"), namespace, is_dns1123_label(str(namespace))
            )
    elif namespace:
        causes.append(f.forbidden(f.child(path, "namespace"), "not allowed on this type"))
    causes += f.nonnegative(f.child(path, "generation"), meta.get("generation"))
    causes += validate_labels(meta.get("labels"), f.child(path, "labels"))
    causes += validate_annotations(meta.get("annotations"), f.child(path, "annotations"))
    causes += validate_owner_references(
        meta.get("ownerReferences"), f.child(path, "ownerReferences")
    )
    causes += validate_finalizers(meta.get("finalizers"), f.child(path, "finalizers"))
    return causes


_IMMUTABLE_META = (
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


def validate_object_meta_update(
    new: Mapping[str, Any], old: Mapping[str, Any], namespaced: bool, path: str = "metadata"
) -> list[Cause]:
    """``ValidateObjectMetaUpdate``: identity fields never change, generation never goes back,
    and an object being deleted takes no new finalizers. The resourceVersion precondition is
    the handler's (upstream fills it in for kinds that allow unconditional updates)."""
    causes: list[Cause] = []
    if old.get("deletionTimestamp"):
        added = sorted(set(new.get("finalizers") or []) - set(old.get("finalizers") or []))
        if added:
            shown = "[]string{" + ", ".join(f'"{a}"' for a in added) + "}"
            causes.append(
                f.forbidden(
                    f.child(path, "finalizers"),
                    "no new finalizers can be "
                    f"added if the object is being deleted, found new "
                    f"finalizers {shown}",
                )
            )
    new_generation = new.get("generation") or 0
    if isinstance(new_generation, int) and new_generation < (old.get("generation") or 0):
        causes.append(
            f.invalid(f.child(path, "generation"), new_generation, "must not be decremented")
        )
    for name in _IMMUTABLE_META:
        if (new.get(name) or None) != (old.get(name) or None):
            causes.append(f.immutable(f.child(path, name), new.get(name) or ""))
    causes += _common(new, namespaced, path)
    return causes
