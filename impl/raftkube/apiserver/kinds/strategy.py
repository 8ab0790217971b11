"""What every kind's strategy does, and the create/update preparation shared by all kinds.

A :class:`Strategy` is upstream's ``RESTCreateStrategy``/``RESTUpdateStrategy`` for one
resource, on plain JSON objects. The handler calls, in upstream's order:

- create: ``default(obj)`` (what decoding does upstream), admission, then
  :func:`prepare_create` (uid, creationTimestamp, the kind's ``PrepareForCreate``), then
  ``validate_create(obj)``;
- update: ``default(new)``, admission, :func:`prepare_update` (identity metadata and
  generation from the stored object, the status-subresource rule, the generation bump), then
  ``validate_update(new, old)``, or ``validate_status_update(new, old)`` for ``/status``.

Subclasses override the ``_validate``/``_validate_update``/``_validate_status`` hooks and the
``prepare_*`` ones;
the metadata rules, the unknown-field check and the ``metadata.*`` field labels are common.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import Cause
from ..resources import ResourceInfo
from . import schema as s
from .meta import validate_object_meta, validate_object_meta_update
from .names import name_is_dns_subdomain

Obj = dict[str, Any]


def meta_of(obj: Obj) -> Obj:
    """``obj["metadata"]``, created empty when missing so defaulting can write into it."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def as_dict(value: Any) -> Obj:
    """``value`` if it is an object, else an empty one (the schema check reports the type)."""
    return value if isinstance(value, dict) else {}


def sub(obj: Obj, *path: str) -> Obj:
    """The nested object at ``path``, created empty where missing (for defaulting)."""
    for name in path:
        value = obj.get(name)
        if not isinstance(value, dict):
            value = obj[name] = {}
        obj = value
    return obj


def get(obj: Any, *path: str | int) -> Any:
    """The value at ``path``, or None where anything along it is missing or of another type."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(obj, list) or step >= len(obj):
                return None
        elif not isinstance(obj, dict):
            return None
        obj = obj[step] if isinstance(step, int) else obj.get(step)
    return obj


def dicts(value: Any) -> list[Obj]:
    """The dict items of a list field (anything else is the schema check's to report)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


class Strategy:
    """The meaning of one resource: defaults, validation, field labels, schema."""

    schema: ClassVar[s.Schema] = s.kind_schema()
    # Field-selector labels beyond metadata.name and metadata.namespace.
    extra_field_labels: ClassVar[tuple[str, ...]] = ()
    # Kinds whose metadata.generation counts spec changes (upstream sets it in PrepareForCreate).
    tracks_generation: ClassVar[bool] = False

    def __init__(self, info: ResourceInfo) -> None:
        self.info = info

    def check_name(self, name: str, prefix: bool) -> list[str]:
        """The kind's name rule (``prefix`` for a ``generateName``); most kinds use DNS
        subdomains."""
        return name_is_dns_subdomain(name, prefix)

    # -- defaulting -------------------------------------------------------------------------

    def default(self, obj: Obj) -> None:
        """Upstream's defaulting functions for this kind, applied in place; an object with
        values of the wrong type is left as it is (validation reports them)."""
        if not self.type_problems(obj):
            self._default(obj)

    def default_well_typed(self, obj: Obj) -> None:
        """:meth:`default` for an object whose field types were just found right (the
        handlers refuse any other with the decoder's 400 first), without walking it again."""
        self._default(obj)

    def _default(self, obj: Obj) -> None:
        """The kind's defaults, on an object whose field types are right."""

    # -- decoding ------------------------------------------------------------------------------

    def type_problems(self, obj: Obj) -> list[s.TypeProblem]:
        """Fields holding a value of the wrong JSON type."""
        return s.type_problems(type(self).schema, obj)

    def decode_errors(self, obj: Obj) -> list[str]:
        """What upstream's decoder answers with a 400 before defaulting or validation
        (``json: cannot unmarshal string into Go struct field spec.replicas of type int32``);
        the handler prefixes ``{Kind} in version "{v}" cannot be handled as a {Kind}: ``."""
        return [problem.message() for problem in self.type_problems(obj)]

    def _type_causes(self, obj: Obj) -> list[Cause]:
        """The type problems as causes, for a handler that did not refuse them earlier: the
        kind's rules assume well-typed fields."""
        return [
            Cause(
                p.path,
                "FieldValueTypeInvalid",
                f'Invalid value: "{p.got}": must be of type {p.expected}',
            )
            for p in self.type_problems(obj)
        ]

    # -- create and update preparation ---------------------------------------------------------

    def prepare_for_create(self, obj: Obj) -> None:
        """The kind's ``PrepareForCreate``: by default, a status subresource starts empty."""
        if self.info.has("status"):
            obj.pop("status", None)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """The kind's ``PrepareForUpdate`` on the main resource: status is the stored one."""
        if self.info.has("status"):
            _copy_key(new, old, "status")

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        """``/status``: everything outside ``status`` and ``metadata`` is the stored one."""
        for name in set(new) | set(old):
            if name not in {"status", "metadata", "apiVersion", "kind"}:
                _copy_key(new, old, name)

    def prepare_for_subresource_update(self, subresource: str, new: Obj, old: Obj) -> None:
        """Another subresource written with the whole object (``/scale`` once the handler has
        applied it, a namespace's ``/finalize``): by default as the main resource."""
        self.prepare_for_update(new, old)

    def spec_changed(self, new: Obj, old: Obj) -> bool:
        """Whether an update bumps ``metadata.generation`` (upstream compares the spec)."""
        return bool(new.get("spec") != old.get("spec"))

    # -- validation ----------------------------------------------------------------------------

    def validate_create(self, obj: Obj) -> list[Cause]:
        if typed := self._type_causes(obj):
            return typed
        meta = as_dict(obj.get("metadata"))
        causes = validate_object_meta(meta, self.info.namespaced, self.check_name)
        return causes + self._validate(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        if typed := self._type_causes(new) or self._type_causes(old):
            return typed
        new_meta = as_dict(new.get("metadata"))
        old_meta = as_dict(old.get("metadata"))
        causes = validate_object_meta_update(new_meta, old_meta, self.info.namespaced)
        return causes + self._validate(new) + self._validate_update(new, old)

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        """``/status`` writes: the metadata rules and the kind's status rules."""
        if typed := self._type_causes(new) or self._type_causes(old):
            return typed
        new_meta = as_dict(new.get("metadata"))
        old_meta = as_dict(old.get("metadata"))
        causes = validate_object_meta_update(new_meta, old_meta, self.info.namespaced)
        return causes + self._validate_status(
            as_dict(new.get("status")), as_dict(old.get("status"))
        )

    def _validate_status(self, status: Obj, old_status: Obj) -> list[Cause]:
        """The kind's status rules (counts consistent, addresses valid)."""
        return []

    def _validate(self, obj: Obj) -> list[Cause]:
        """The kind's own rules, checked on create and again on every update."""
        return []

    def _validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        """The kind's update-only rules (immutable fields)."""
        return []

    # -- field selectors and schema ------------------------------------------------------------

    def field_label_names(self) -> tuple[str, ...]:
        """Labels a field selector may name; any other is upstream's 400 ``field label not
        supported``. Cluster-scoped kinds have no ``metadata.namespace`` label upstream."""
        common = (
            ("metadata.name", "metadata.namespace") if self.info.namespaced else ("metadata.name",)
        )
        return (*common, *self.extra_field_labels)

    def field_labels(self, obj: Mapping[str, Any]) -> dict[str, str]:
        """The values field selectors match against (upstream's ``GetAttrs`` field set)."""
        meta = obj.get("metadata") or {}
        labels = {"metadata.name": str(meta.get("name") or "")}
        if self.info.namespaced:
            labels["metadata.namespace"] = str(meta.get("namespace") or "")
        labels.update(self._field_labels(obj))
        return labels

    def _field_labels(self, obj: Mapping[str, Any]) -> dict[str, str]:
        return {}

    def unknown_fields(self, obj: Obj) -> list[str]:
        """Paths in ``obj`` this kind does not define, for ``fieldValidation=Strict|Warn``."""
        return s.unknown_fields(type(self).schema, obj)


def _copy_key(new: Obj, old: Obj, name: str) -> None:
    if name in old:
        new[name] = copy.deepcopy(old[name])
    else:
        new.pop(name, None)


def prepare_create(strategy: Strategy, obj: Obj, now_rfc3339: str, uid: str) -> None:
    """Upstream's ``BeforeCreate`` system fields, then the kind's ``PrepareForCreate``."""
    meta = meta_of(obj)
    meta.pop("deletionTimestamp", None)
    meta.pop("deletionGracePeriodSeconds", None)
    meta.pop("selfLink", None)
    strategy.prepare_for_create(obj)
    meta["uid"] = uid
    meta["creationTimestamp"] = now_rfc3339
    if strategy.tracks_generation:
        meta["generation"] = 1


def prepare_update(strategy: Strategy, new: Obj, old: Obj, subresource: str = "") -> None:
    """Upstream's ``BeforeUpdate``: the stored object's system fields, then the kind's rule for
    the main resource or for ``/status``, then the generation bump on a spec change."""
    meta, old_meta = meta_of(new), old.get("metadata") or {}
    if "generation" in old_meta:
        meta["generation"] = old_meta["generation"]
    else:
        meta.pop("generation", None)
    if subresource == "status":
        strategy.prepare_for_status_update(new, old)
    elif subresource:
        strategy.prepare_for_subresource_update(subresource, new, old)
    else:
        strategy.prepare_for_update(new, old)
    if not meta.get("uid") and old_meta.get("uid"):
        meta["uid"] = old_meta["uid"]
    if old_meta.get("creationTimestamp"):
        meta["creationTimestamp"] = old_meta["creationTimestamp"]
    if old_meta.get("deletionTimestamp"):
        meta["deletionTimestamp"] = old_meta["deletionTimestamp"]
    if "deletionGracePeriodSeconds" in old_meta and "deletionGracePeriodSeconds" not in meta:
        meta["deletionGracePeriodSeconds"] = old_meta["deletionGracePeriodSeconds"]
    meta.pop("selfLink", None)
    if strategy.tracks_generation and subresource != "status" and strategy.spec_changed(new, old):
        meta["generation"] = int(old_meta.get("generation") or 0) + 1
