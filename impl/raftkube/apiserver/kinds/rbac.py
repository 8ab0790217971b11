"""rbac.authorization.k8s.io/v1 Role, ClusterRole, RoleBinding and ClusterRoleBinding.

Names need only be usable as a path segment (upstream's ``ValidateRBACName``). Rules need
verbs, and either non-resource URLs (cluster roles only) or API groups and resources.
Bindings default ``roleRef.apiGroup`` and each subject's ``apiGroup``; the role reference is
validated and can never change (``cannot change roleRef``); subjects are ServiceAccounts
(namespace required in a cluster binding), Users or Groups.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import Cause
from . import field as f
from .names import is_dns1123_subdomain, is_path_segment_name, name_is_path_segment
from .schema import LABEL_SELECTOR, STRING, STRINGS, Schema, arr, kind_schema, obj
from .strategy import Obj, Strategy, as_dict, dicts, sub

GROUP = "rbac.authorization.k8s.io"

POLICY_RULE = obj(
    ("verbs",),
    verbs=STRINGS,
    apiGroups=STRINGS,
    resources=STRINGS,
    resourceNames=STRINGS,
    nonResourceURLs=STRINGS,
)
ROLE = kind_schema(rules=arr(POLICY_RULE))
CLUSTER_ROLE = kind_schema(
    rules=arr(POLICY_RULE), aggregationRule=obj(clusterRoleSelectors=arr(LABEL_SELECTOR))
)
_SUBJECT = obj(("kind", "name"), kind=STRING, apiGroup=STRING, name=STRING, namespace=STRING)
_ROLE_REF = obj(("apiGroup", "kind", "name"), apiGroup=STRING, kind=STRING, name=STRING)
ROLE_BINDING = kind_schema(subjects=arr(_SUBJECT), roleRef=_ROLE_REF)


def _rules(rules: Any, namespaced: bool) -> list[Cause]:
    causes: list[Cause] = []
    for i, rule in enumerate(dicts(rules)):
        at = f.index("rules", i)
        if not rule.get("verbs"):
            causes.append(f.required(f.child(at, "verbs"), "verbs must contain at least one value"))
        urls = rule.get("nonResourceURLs") or []
        if urls:
            if namespaced:
                causes.append(
                    f.invalid(
                        f.child(at, "nonResourceURLs"),
                        urls,
                        "namespaced rules cannot apply to non-resource URLs",
                    )
                )
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                causes.append(
                    f.invalid(
                        f.child(at, "nonResourceURLs"),
                        urls,
                        "rules cannot apply to both regular resources and non-resource URLs",
                    )
                )
            continue
        if not rule.get("apiGroups"):
            causes.append(
                f.required(
                    f.child(at, "apiGroups"), "resource rules must supply at least one api group"
                )
            )
        if not rule.get("resources"):
            causes.append(
                f.required(
                    f.child(at, "resources"), "resource rules must supply at least one resource"
                )
            )
    return causes


class RoleStrategy(Strategy):
    schema: ClassVar[Schema] = ROLE

    def check_name(self, name: str, prefix: bool) -> list[str]:
        return name_is_path_segment(name, prefix)

    def _validate(self, obj: Obj) -> list[Cause]:
        return _rules(obj.get("rules"), True)


class ClusterRoleStrategy(RoleStrategy):
    schema: ClassVar[Schema] = CLUSTER_ROLE

    def _validate(self, obj: Obj) -> list[Cause]:
        return _rules(obj.get("rules"), False)


def _subject(subject: Obj, namespaced: bool, path: str) -> list[Cause]:
    causes: list[Cause] = []
    name, kind, group = (
        subject.get("name") or "",
        subject.get("kind"),
        subject.get("apiGroup") or "",
    )
    if not name:
        causes.append(f.required(f.child(path, "name")))
    if kind == "ServiceAccount":
        if name:
            causes += f.each(f.child(path, "name"), name, is_dns1123_subdomain(str(name)))
        if group:
            causes.append(f.not_supported(f.child(path, "apiGroup"), group, ("",)))
        if not namespaced and not subject.get("namespace"):
            causes.append(f.required(f.child(path, "namespace")))
    elif kind in ("User", "Group"):
        if group != GROUP:
            causes.append(f.not_supported(f.child(path, "apiGroup"), group, (GROUP,)))
    else:
        causes.append(
            f.not_supported(f.child(path, "kind"), kind or "", ("ServiceAccount", "User", "Group"))
        )
    return causes


class RoleBindingStrategy(Strategy):
    schema: ClassVar[Schema] = ROLE_BINDING

    def check_name(self, name: str, prefix: bool) -> list[str]:
        return name_is_path_segment(name, prefix)

    role_kinds: ClassVar[tuple[str, ...]] = ("Role", "ClusterRole")

    def _default(self, obj: Obj) -> None:
        ref = sub(obj, "roleRef")
        if not ref.get("apiGroup"):
            ref["apiGroup"] = GROUP
        for subject in dicts(obj.get("subjects")):
            if not subject.get("apiGroup"):
                subject["apiGroup"] = "" if subject.get("kind") == "ServiceAccount" else GROUP
                if subject.get("kind") not in ("ServiceAccount", "User", "Group"):
                    subject.pop("apiGroup")

    def _validate(self, obj: Obj) -> list[Cause]:
        ref = as_dict(obj.get("roleRef"))
        causes: list[Cause] = []
        if ref.get("apiGroup") != GROUP:
            causes.append(f.not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", (GROUP,)))
        if ref.get("kind") not in self.role_kinds:
            causes.append(f.not_supported("roleRef.kind", ref.get("kind") or "", self.role_kinds))
        name = ref.get("name")
        if not name:
            causes.append(f.required("roleRef.name"))
        else:
            causes += f.each("roleRef.name", name, is_path_segment_name(str(name)))
        for i, subject in enumerate(dicts(obj.get("subjects"))):
            causes += _subject(subject, self.info.namespaced, f.index("subjects", i))
        return causes

    def _validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        if new.get("roleRef") != old.get("roleRef"):
            ref = as_dict(new.get("roleRef"))
            shown = f.Raw(
                "rbac.RoleRef{"
                + ", ".join(
                    f'{go}:"{ref.get(k, "")}"'
                    for k, go in (("apiGroup", "APIGroup"), ("kind", "Kind"), ("name", "Name"))
                )
                + "}"
            )
            return [f.invalid("roleRef", shown, "cannot change roleRef")]
        return []


class ClusterRoleBindingStrategy(RoleBindingStrategy):
    role_kinds = ("ClusterRole",)
