"""Role-based access control, as upstream's RBAC authorizer decides it.

A request is allowed when some rule of some role bound to the user matches it; nothing is ever
denied explicitly. The walk is upstream's ``DefaultRuleResolver.VisitRulesFor``: every
ClusterRoleBinding first, then the RoleBindings of the request's namespace; a binding applies
when one of its subjects is the user (``User`` by name, ``Group`` by membership,
``ServiceAccount`` by the ``system:serviceaccount:{ns}:{name}`` user name, its namespace
defaulting to the binding's), and a RoleBinding may refer to a ClusterRole, whose rules then
apply in that namespace only. A binding whose role is missing contributes an error instead of
rules; when nothing allows, those errors become the reason (``RBAC: role.rbac.authorization.k8s.io
"x" not found``), as kubectl users see them.

The rule match is upstream's ``RuleAllows``: verbs, API groups, resources (``pods/status`` for a
subresource, ``*`` for everything, ``*/status`` for a subresource of anything) and resource
names for resource requests; verbs and ``nonResourceURLs`` (exact, ``*``, or a prefix ending in
``*``) for the others.

Aggregated ClusterRoles (``aggregationRule.clusterRoleSelectors``, as ``admin``, ``edit`` and
``view`` are) are computed when read, from the ClusterRoles whose labels the selectors match:
upstream's aggregation controller writes the same union into the role, so the answer is the
same, without waiting for a controller. :func:`aggregate_rules` is that computation, for an
integrator that wants to store the result as upstream does.

The roles and bindings are read from a :class:`RBACSource`, synchronous reads of cached objects
(the integrator backs it with watch caches): authorization runs on every request and must not
wait on the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from raftkube.apiserver.request_info import RequestInfo

from .authorize import Decision
from .tokens import SERVICE_ACCOUNT_PREFIX
from .user import UserInfo

Obj = Mapping[str, Any]

RBAC_GROUP = "rbac.authorization.k8s.io"


class RBACSource(Protocol):
    """Cached reads of the four RBAC kinds; a missing object is ``None``."""

    def cluster_roles(self) -> Iterable[Obj]: ...

    def cluster_role(self, name: str) -> Obj | None: ...

    def cluster_role_bindings(self) -> Iterable[Obj]: ...

    def roles(self, namespace: str) -> Iterable[Obj]: ...

    def role(self, namespace: str, name: str) -> Obj | None: ...

    def role_bindings(self, namespace: str) -> Iterable[Obj]: ...


# --- rule matching -------------------------------------------------------------------------


def _verb_matches(rule: Obj, verb: str) -> bool:
    return any(v in ("*", verb) for v in rule.get("verbs") or ())


def _group_matches(rule: Obj, group: str) -> bool:
    return any(g in ("*", group) for g in rule.get("apiGroups") or ())


def _resource_matches(rule: Obj, combined: str, subresource: str) -> bool:
    for resource in rule.get("resources") or ():
        if resource in ("*", combined):
            return True
        # "*/status" matches the status subresource of every resource.
        if subresource and resource == f"*/{subresource}":
            return True
    return False


def _name_matches(rule: Obj, name: str) -> bool:
    names = rule.get("resourceNames") or ()
    return not names or name in names


def _url_matches(rule: Obj, path: str) -> bool:
    for url in rule.get("nonResourceURLs") or ():
        if url in ("*", path):
            return True
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


def rule_allows(info: RequestInfo, rule: Obj) -> bool:
    """Whether one PolicyRule (a JSON dict) allows the request: upstream's ``RuleAllows``."""
    if not _verb_matches(rule, info.verb):
        return False
    if not info.is_resource_request:
        return _url_matches(rule, info.path)
    combined = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    return (
        _group_matches(rule, info.api_group)
        and _resource_matches(rule, combined, info.subresource)
        and _name_matches(rule, info.name)
    )


def rules_allow(info: RequestInfo, rules: Iterable[Obj]) -> bool:
    return any(rule_allows(info, rule) for rule in rules)


# --- aggregation ---------------------------------------------------------------------------


def _expression_matches(expression: Obj, labels: Mapping[str, str]) -> bool:
    key = expression.get("key", "")
    operator = expression.get("operator", "")
    values = expression.get("values") or ()
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False  # an unknown operator selects nothing, as upstream's conversion error does


def selector_matches(selector: Obj, labels: Mapping[str, str]) -> bool:
    """A ``metav1.LabelSelector`` (``matchLabels`` and ``matchExpressions``) against labels;
    the empty selector matches everything, as ``LabelSelectorAsSelector`` makes it."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(_expression_matches(e, labels) for e in selector.get("matchExpressions") or ())


def _labels(obj: Obj) -> Mapping[str, str]:
    labels: Mapping[str, str] = (obj.get("metadata") or {}).get("labels") or {}
    return labels


def _name(obj: Obj) -> str:
    name: str = (obj.get("metadata") or {}).get("name", "")
    return name


def aggregate_rules(role: Obj, cluster_roles: Iterable[Obj]) -> list[Obj]:
    """The rules of ``role``: its own, or, when it has an ``aggregationRule``, the union of
    the rules of every other ClusterRole its selectors match, role by role in name order,
    each rule once (upstream's aggregation controller). Matched roles that aggregate in turn
    (``view`` into ``edit`` into ``admin``) contribute their own aggregation."""
    by_name = {_name(r): r for r in cluster_roles}
    return _aggregate(role, by_name, frozenset())


def _aggregate(role: Obj, by_name: Mapping[str, Obj], seen: frozenset[str]) -> list[Obj]:
    aggregation = role.get("aggregationRule")
    if not aggregation:
        return list(role.get("rules") or ())
    seen = seen | {_name(role)}
    rules: list[Obj] = []
    for selector in aggregation.get("clusterRoleSelectors") or ():
        for name in sorted(by_name):
            other = by_name[name]
            if name in seen or not selector_matches(selector, _labels(other)):
                continue
            for rule in _aggregate(other, by_name, seen):
                if rule not in rules:
                    rules.append(rule)
    return rules


# --- the authorizer ------------------------------------------------------------------------


def _not_found(kind: str, name: str) -> str:
    # Upstream's listers name the resource in the singular here.
    return f'{kind}.{RBAC_GROUP} "{name}" not found'


def _applies(user: UserInfo, subject: Obj, namespace: str) -> bool:
    kind = subject.get("kind")
    name = str(subject.get("name", ""))
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        sa_namespace = subject.get("namespace") or namespace
        return bool(sa_namespace) and user.name == f"{SERVICE_ACCOUNT_PREFIX}{sa_namespace}:{name}"
    return False


def _describe_subject(subject: Obj, binding_namespace: str) -> str:
    kind = subject.get("kind", "")
    name = subject.get("name", "")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


@attrs.frozen
class _Grant:
    """The rules one applicable binding brings, or the error resolving its role met."""

    source: str
    rules: Sequence[Obj]
    error: str = ""


@attrs.frozen
class RBACAuthorizer:
    source: RBACSource

    def role_ref_rules(self, role_ref: Obj, namespace: str) -> tuple[Sequence[Obj], str]:
        """The rules a binding's ``roleRef`` names, or an error in upstream's words."""
        kind = role_ref.get("kind")
        name = role_ref.get("name", "")
        if kind == "Role":
            role = self.source.role(namespace, name)
            if role is None:
                return (), _not_found("role", name)
            return list(role.get("rules") or ()), ""
        if kind == "ClusterRole":
            cluster_role = self.source.cluster_role(name)
            if cluster_role is None:
                return (), _not_found("clusterrole", name)
            if cluster_role.get("aggregationRule"):
                return aggregate_rules(cluster_role, self.source.cluster_roles()), ""
            return list(cluster_role.get("rules") or ()), ""
        return (), f'unsupported role reference kind: "{kind}"'

    def _grants(self, user: UserInfo, namespace: str) -> Iterable[_Grant]:
        """The bindings that apply to ``user``, cluster-wide first, lazily: the first
        allowing rule ends the walk."""
        for binding in self.source.cluster_role_bindings():
            subject = next(
                (s for s in binding.get("subjects") or () if _applies(user, s, "")), None
            )
            if subject is None:
                continue
            role_ref = binding.get("roleRef") or {}
            rules, error = self.role_ref_rules(role_ref, "")
            source = (
                f'ClusterRoleBinding "{_name(binding)}" of {role_ref.get("kind")} '
                f'"{role_ref.get("name")}" to {_describe_subject(subject, "")}'
            )
            yield _Grant(source, rules, error)
        if not namespace:
            return
        for binding in self.source.role_bindings(namespace):
            subject = next(
                (s for s in binding.get("subjects") or () if _applies(user, s, namespace)), None
            )
            if subject is None:
                continue
            role_ref = binding.get("roleRef") or {}
            rules, error = self.role_ref_rules(role_ref, namespace)
            source = (
                f'RoleBinding "{_name(binding)}/{namespace}" of {role_ref.get("kind")} '
                f'"{role_ref.get("name")}" to {_describe_subject(subject, namespace)}'
            )
            yield _Grant(source, rules, error)

    def authorize(self, user: UserInfo, info: RequestInfo) -> Decision:
        """Allowed with ``RBAC: allowed by {binding}`` when a rule matches; otherwise not,
        with the errors met on the way (missing roles) as the reason."""
        errors: list[str] = []
        for grant in self._grants(user, info.namespace):
            if grant.error:
                errors.append(grant.error)
            if rules_allow(info, grant.rules):
                return Decision(True, f"RBAC: allowed by {grant.source}")
        return Decision(False, f"RBAC: {_aggregate_errors(errors)}" if errors else "")

    def rules_for(self, user: UserInfo, namespace: str) -> dict[str, Any]:
        """A SelfSubjectRulesReview's ``status`` (``kubectl auth can-i --list``): every rule
        that applies to ``user`` in ``namespace``, split into resource and non-resource rules
        as upstream's ``RulesFor`` splits them, with any resolution error."""
        resource_rules: list[dict[str, Any]] = []
        non_resource_rules: list[dict[str, Any]] = []
        errors: list[str] = []
        for grant in self._grants(user, namespace):
            if grant.error:
                errors.append(grant.error)
            for rule in grant.rules:
                if rule.get("resources"):
                    entry: dict[str, Any] = {
                        "verbs": list(rule.get("verbs") or ()),
                        "apiGroups": list(rule.get("apiGroups") or ()),
                        "resources": list(rule["resources"]),
                    }
                    if rule.get("resourceNames"):
                        entry["resourceNames"] = list(rule["resourceNames"])
                    resource_rules.append(entry)
                if rule.get("nonResourceURLs"):
                    non_resource_rules.append(
                        {
                            "verbs": list(rule.get("verbs") or ()),
                            "nonResourceURLs": list(rule["nonResourceURLs"]),
                        }
                    )
        status: dict[str, Any] = {
            "resourceRules": resource_rules,
            "nonResourceRules": non_resource_rules,
            "incomplete": False,
        }
        if errors:
            status["evaluationError"] = _aggregate_errors(errors)
        return status


def _aggregate_errors(errors: Sequence[str]) -> str:
    """``utilerrors.NewAggregate(...).Error()``: one message alone, several de-duplicated in
    brackets."""
    unique = list(dict.fromkeys(errors))
    if len(errors) == 1 or len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"
