"""apps/v1 ReplicaSet and Deployment, core/v1 ReplicationController.

Defaults: ``replicas: 1``; a ReplicationController's selector (and, when it has none, its
labels) from its template's labels; a Deployment's ``strategy`` (RollingUpdate with
``maxUnavailable``/``maxSurge`` 25%), ``revisionHistoryLimit: 10`` and
``progressDeadlineSeconds: 600``; the pod template gets every PodSpec default.

Validation follows ``pkg/apis/apps/validation``: the selector is required, non-empty and must
match the template's labels; the template must restart ``Always`` and set no
``activeDeadlineSeconds``; apps/v1 selectors are immutable. ``metadata.generation`` counts
spec changes (for a Deployment, annotation changes too: they are copied to its ReplicaSets).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from ..errors import Cause
from . import field as f
from .meta import validate_annotations, validate_labels
from .names import is_label_value, is_qualified_name, regex_error
from .poddefaults import default_pod_spec
from .podschema import POD_TEMPLATE_SPEC
from .podspec import validate_pod_spec
from .schema import (
    BOOLEAN,
    INT32,
    INT64,
    INT_OR_STRING,
    LABEL_SELECTOR,
    STRING,
    STRING_MAP,
    Schema,
    conditions,
    kind_schema,
    obj,
)
from .strategy import Obj, Strategy, as_dict, dicts, get, sub

_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_PERCENT = re.compile("[0-9]+%")
_PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%'"

_REPLICA_STATUS = dict(
    replicas=INT32,
    fullyLabeledReplicas=INT32,
    readyReplicas=INT32,
    availableReplicas=INT32,
    observedGeneration=INT64,
    conditions=conditions(),
)
REPLICA_SET = kind_schema(
    spec=obj(
        replicas=INT32, minReadySeconds=INT32, selector=LABEL_SELECTOR, template=POD_TEMPLATE_SPEC
    ),
    status=obj(**_REPLICA_STATUS, terminatingReplicas=INT32),
)
REPLICATION_CONTROLLER = kind_schema(
    spec=obj(
        replicas=INT32, minReadySeconds=INT32, selector=STRING_MAP, template=POD_TEMPLATE_SPEC
    ),
    status=obj(**_REPLICA_STATUS),
)
DEPLOYMENT = kind_schema(
    spec=obj(
        replicas=INT32,
        selector=LABEL_SELECTOR,
        template=POD_TEMPLATE_SPEC,
        strategy=obj(
            type=STRING,
            rollingUpdate=obj(maxUnavailable=INT_OR_STRING, maxSurge=INT_OR_STRING),
        ),
        minReadySeconds=INT32,
        revisionHistoryLimit=INT32,
        paused=BOOLEAN,
        progressDeadlineSeconds=INT32,
    ),
    status=obj(
        observedGeneration=INT64,
        replicas=INT32,
        updatedReplicas=INT32,
        readyReplicas=INT32,
        availableReplicas=INT32,
        unavailableReplicas=INT32,
        terminatingReplicas=INT32,
        conditions=conditions("lastUpdateTime"),
        collisionCount=INT32,
    ),
)


def selector_matches(selector: Any, labels: Any) -> bool:
    """Whether a LabelSelector (``matchLabels`` and ``matchExpressions``) selects ``labels``."""
    labels = labels if isinstance(labels, dict) else {}
    selector = selector if isinstance(selector, dict) else {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expression in dicts(selector.get("matchExpressions")):
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def go_label_selector(selector: Any) -> f.Raw:
    """A LabelSelector as Go's ``%#v`` prints it in upstream's ``field is immutable``."""
    selector = selector if isinstance(selector, dict) else {}
    labels = selector.get("matchLabels")
    shown = f.go_string_map(labels) if isinstance(labels, dict) else "map[string]string(nil)"
    expressions = dicts(selector.get("matchExpressions"))
    if expressions:
        items = ", ".join(
            f'v1.LabelSelectorRequirement{{Key:"{e.get("key", "")}", Operator:"'
            f'{e.get("operator", "")}", Values:{f.show(list(e.get("values") or []))}}}'
            for e in expressions
        )
        exprs = f"[]v1.LabelSelectorRequirement{{{items}}}"
    else:
        exprs = "[]v1.LabelSelectorRequirement(nil)"
    return f.Raw(f"v1.LabelSelector{{MatchLabels:{shown}, MatchExpressions:{exprs}}}")


def validate_label_selector(selector: Any, path: str) -> list[Cause]:
    """``ValidateLabelSelector``: label syntax and each expression's operator and values."""
    if not isinstance(selector, dict):
        return []
    causes = validate_labels(selector.get("matchLabels"), f.child(path, "matchLabels"))
    for i, expression in enumerate(dicts(selector.get("matchExpressions"))):
        at = f.index(f.child(path, "matchExpressions"), i)
        operator, values = expression.get("operator"), expression.get("values") or []
        if operator in ("In", "NotIn"):
            if not values:
                causes.append(
                    f.required(
                        f.child(at, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    )
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                causes.append(
                    f.forbidden(
                        f.child(at, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        else:
            causes.append(
                f.invalid(f.child(at, "operator"), operator or "", "not a valid selector operator")
            )
        causes += f.each(
            f.child(at, "key"),
            expression.get("key") or "",
            is_qualified_name(str(expression.get("key") or "")),
        )
        for j, value in enumerate(values if isinstance(values, list) else []):
            causes += f.each(f.index(f.child(at, "values"), j), value, is_label_value(str(value)))
    return causes


def _template(spec: Obj, path: str, selects: bool, owner: str) -> list[Cause]:
    """``ValidatePodTemplateSpecForReplicaSet`` / ``...ForRC``."""
    template = spec.get("template")
    at = f.child(path, "template")
    if not isinstance(template, dict):
        return [f.required(at)]
    causes: list[Cause] = []
    meta = as_dict(template.get("metadata"))
    labels = meta.get("labels") or {}
    if not selects:
        causes.append(
            f.invalid(
                f.child(at, "metadata", "labels"),
                labels,
                "`selector` does not match template `labels`",
            )
        )
    causes += validate_labels(meta.get("labels"), f.child(at, "labels"))
    causes += validate_annotations(meta.get("annotations"), f.child(at, "annotations"))
    pod_spec = as_dict(template.get("spec"))
    causes += validate_pod_spec(pod_spec, f.child(at, "spec"))
    policy = pod_spec.get("restartPolicy")
    if policy != "Always":
        causes.append(
            f.not_supported(f.child(at, "spec", "restartPolicy"), policy or "", ("Always",))
        )
    if pod_spec.get("activeDeadlineSeconds") is not None:
        causes.append(
            f.forbidden(
                f.child(at, "spec", "activeDeadlineSeconds"),
                f"activeDeadlineSeconds in {owner} is not Supported",
            )
        )
    return causes


def _default_template(spec: Obj) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        default_pod_spec(sub(template, "spec"))


def _apps_spec(spec: Obj, owner: str) -> list[Cause]:
    """The checks ReplicaSet and Deployment specs share (``ValidateReplicaSetSpec``)."""
    causes = f.nonnegative("spec.replicas", spec.get("replicas"))
    causes += f.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        causes.append(f.required("spec.selector"))
        selects = True
    else:
        causes += validate_label_selector(selector, "spec.selector")
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            causes.append(
                f.invalid(
                    "spec.selector",
                    go_label_selector(selector),
                    "empty selector is invalid for deployment",
                )
            )
            selects = True
        else:
            selects = selector_matches(selector, get(spec, "template", "metadata", "labels"))
    return causes + _template(spec, "spec", selects, owner)


def _selector_immutable(new: Obj, old: Obj) -> list[Cause]:
    selector = get(new, "spec", "selector")
    if selector != get(old, "spec", "selector"):
        return [f.immutable("spec.selector", go_label_selector(selector))]
    return []


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


_NOT_ABOVE_REPLICAS = "cannot be greater than status.replicas"


def _replica_counts(status: Obj, counted: tuple[str, ...], bounded: tuple[str, ...]) -> list[Cause]:
    """``ValidateReplicaSetStatus``/``ValidateDeploymentStatus``: counts are non-negative, none
    exceeds ``replicas``, and available pods are ready ones."""
    causes: list[Cause] = []
    for name in counted:
        causes += f.nonnegative(f.child("status", name), status.get(name))
    replicas = status.get("replicas") or 0
    for name in bounded:
        value = status.get(name) or 0
        if isinstance(value, int) and isinstance(replicas, int) and value > replicas:
            causes.append(f.invalid(f.child("status", name), value, _NOT_ABOVE_REPLICAS))
    available, ready = status.get("availableReplicas") or 0, status.get("readyReplicas") or 0
    if isinstance(available, int) and isinstance(ready, int) and available > ready:
        causes.append(
            f.invalid("status.availableReplicas", available, "cannot be greater than readyReplicas")
        )
    return causes


class _ReplicatedStrategy(Strategy):
    tracks_generation = True
    extra_field_labels = ("status.replicas",)

    def _validate_status(self, status: Obj, old_status: Obj) -> list[Cause]:
        return _replica_counts(
            status,
            (
                "replicas",
                "fullyLabeledReplicas",
                "readyReplicas",
                "availableReplicas",
                "observedGeneration",
            ),
            ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"),
        )

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"replicas": 0}

    def _field_labels(self, obj: Mapping[str, Any]) -> dict[str, str]:
        return {"status.replicas": str(get(obj, "status", "replicas") or 0)}


class ReplicaSetStrategy(_ReplicatedStrategy):
    schema: ClassVar[Schema] = REPLICA_SET

    def _default(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        spec.setdefault("replicas", 1)
        _default_template(spec)

    def _validate(self, obj: Obj) -> list[Cause]:
        return _apps_spec(_spec(obj), "ReplicaSet")

    def _validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return _selector_immutable(new, old)


class ReplicationControllerStrategy(_ReplicatedStrategy):
    schema: ClassVar[Schema] = REPLICATION_CONTROLLER

    def _default(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        labels = get(spec, "template", "metadata", "labels")
        if isinstance(labels, dict) and labels:
            if not spec.get("selector"):
                spec["selector"] = dict(labels)
            meta = sub(obj, "metadata")
            if not meta.get("labels"):
                meta["labels"] = dict(labels)
        spec.setdefault("replicas", 1)
        _default_template(spec)

    def _validate(self, obj: Obj) -> list[Cause]:
        spec = _spec(obj)
        causes = f.nonnegative("spec.minReadySeconds", spec.get("minReadySeconds"))
        selector = as_dict(spec.get("selector"))
        if not selector:
            causes.append(f.required("spec.selector"))
        causes += f.nonnegative("spec.replicas", spec.get("replicas"))
        selects = selector_matches(
            {"matchLabels": selector}, get(spec, "template", "metadata", "labels")
        )
        return causes + _template(spec, "spec", selects, "ReplicationController")


class DeploymentStrategy(Strategy):
    schema: ClassVar[Schema] = DEPLOYMENT
    tracks_generation = True

    def _default(self, obj: Obj) -> None:
        spec = sub(obj, "spec")
        spec.setdefault("replicas", 1)
        strategy = sub(spec, "strategy")
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = sub(strategy, "rollingUpdate")
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        _default_template(spec)

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {}

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_status_update(new, old)
        meta, old_labels = sub(new, "metadata"), get(old, "metadata", "labels")
        if old_labels is None:
            meta.pop("labels", None)
        else:
            meta["labels"] = copy.deepcopy(old_labels)

    def spec_changed(self, new: Obj, old: Obj) -> bool:
        return super().spec_changed(new, old) or get(new, "metadata", "annotations") != get(
            old, "metadata", "annotations"
        )

    def _validate(self, obj: Obj) -> list[Cause]:
        spec = _spec(obj)
        causes = _apps_spec(spec, "ReplicaSet")
        causes += _strategy(spec.get("strategy"), "spec.strategy")
        causes += f.nonnegative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
        deadline = spec.get("progressDeadlineSeconds")
        if isinstance(deadline, int):
            causes += f.nonnegative("spec.progressDeadlineSeconds", deadline)
            if deadline <= (spec.get("minReadySeconds") or 0):
                causes.append(
                    f.invalid(
                        "spec.progressDeadlineSeconds",
                        deadline,
                        "must be greater than minReadySeconds",
                    )
                )
        return causes

    def _validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return _selector_immutable(new, old)

    def _validate_status(self, status: Obj, old_status: Obj) -> list[Cause]:
        causes = _replica_counts(
            status,
            (
                "observedGeneration",
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
                "unavailableReplicas",
                "collisionCount",
            ),
            ("updatedReplicas", "readyReplicas", "availableReplicas"),
        )
        count, old_count = status.get("collisionCount"), old_status.get("collisionCount")
        if isinstance(old_count, int) and (not isinstance(count, int) or count < old_count):
            causes.append(f.invalid("status.collisionCount", count, "cannot be decremented"))
        return causes


def _int_or_percent(path: str, value: Any) -> tuple[int, bool, list[Cause]]:
    """``ValidatePositiveIntOrPercent``; returns the number, whether it is a percentage."""
    if isinstance(value, str):
        if not _PERCENT.fullmatch(value):
            return (
                0,
                True,
                [f.invalid(path, f.Raw(value), regex_error(_PERCENT_MSG, "[0-9]+%", "1%", "93%"))],
            )
        return int(value[:-1]), True, []
    if isinstance(value, int) and not isinstance(value, bool):
        return value, False, f.nonnegative(path, value)
    return 0, False, [f.invalid(path, value, "must be an integer or percentage (e.g '5%')")]


def _strategy(strategy: Any, path: str) -> list[Cause]:
    if not isinstance(strategy, dict):
        return []
    kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            return [
                f.forbidden(
                    f.child(path, "rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                )
            ]
        return []
    if kind != "RollingUpdate":
        return [f.not_supported(path, strategy, ("Recreate", "RollingUpdate"))]
    if not isinstance(rolling, dict):
        return [
            f.required(f.child(path, "rollingUpdate"), "this should be defaulted and never be nil")
        ]
    at = f.child(path, "rollingUpdate")
    unavailable, unavailable_pct, causes = _int_or_percent(
        f.child(at, "maxUnavailable"), rolling.get("maxUnavailable")
    )
    surge, _, more = _int_or_percent(f.child(at, "maxSurge"), rolling.get("maxSurge"))
    causes += more
    shown = f.Raw(str(rolling.get("maxUnavailable")))
    if unavailable == 0 and surge == 0:
        causes.append(
            f.invalid(f.child(at, "maxUnavailable"), shown, "may not be 0 when `maxSurge` is 0")
        )
    if unavailable_pct and unavailable > 100:
        causes.append(
            f.invalid(f.child(at, "maxUnavailable"), shown, "must not be greater than 100%")
        )
    return causes
