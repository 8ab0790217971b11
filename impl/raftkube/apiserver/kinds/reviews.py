"""The review kinds, answered and never stored: SelfSubjectAccessReview and
SubjectAccessReview (``kubectl auth can-i``), SelfSubjectReview (``kubectl auth whoami``) and
TokenReview. They have no name to check; only their request part is validated, as upstream's
``pkg/apis/authorization/validation`` does.
"""

from __future__ import annotations

from typing import ClassVar

from ..errors import Cause
from . import field as f
from .schema import BOOLEAN, STRING, STRINGS, Schema, arr, kind_schema, map_of, obj
from .strategy import Obj, Strategy, get

_FIELD_SELECTOR = obj(
    rawSelector=STRING, requirements=arr(obj(key=STRING, operator=STRING, values=STRINGS))
)
_LABEL_SELECTOR = obj(
    rawSelector=STRING, requirements=arr(obj(key=STRING, operator=STRING, values=STRINGS))
)
_RESOURCE_ATTRIBUTES = obj(
    namespace=STRING,
    verb=STRING,
    group=STRING,
    version=STRING,
    resource=STRING,
    subresource=STRING,
    name=STRING,
    fieldSelector=_FIELD_SELECTOR,
    labelSelector=_LABEL_SELECTOR,
)
_NON_RESOURCE_ATTRIBUTES = obj(path=STRING, verb=STRING)
_ACCESS_STATUS = obj(allowed=BOOLEAN, denied=BOOLEAN, reason=STRING, evaluationError=STRING)
_USER_INFO = obj(username=STRING, uid=STRING, groups=STRINGS, extra=map_of(STRINGS))

SELF_SUBJECT_ACCESS_REVIEW = kind_schema(
    spec=obj(
        resourceAttributes=_RESOURCE_ATTRIBUTES, nonResourceAttributes=_NON_RESOURCE_ATTRIBUTES
    ),
    status=_ACCESS_STATUS,
)
SUBJECT_ACCESS_REVIEW = kind_schema(
    spec=obj(
        resourceAttributes=_RESOURCE_ATTRIBUTES,
        nonResourceAttributes=_NON_RESOURCE_ATTRIBUTES,
        user=STRING,
        groups=STRINGS,
        extra=map_of(STRINGS),
        uid=STRING,
    ),
    status=_ACCESS_STATUS,
)
SELF_SUBJECT_REVIEW = kind_schema(status=obj(userInfo=_USER_INFO))
_RESOURCE_RULES = arr(
    obj(verbs=STRINGS, apiGroups=STRINGS, resources=STRINGS, resourceNames=STRINGS)
)
_NON_RESOURCE_RULES = arr(obj(verbs=STRINGS, nonResourceURLs=STRINGS))
SELF_SUBJECT_RULES_REVIEW = kind_schema(
    spec=obj(namespace=STRING),
    status=obj(
        resourceRules=_RESOURCE_RULES,
        nonResourceRules=_NON_RESOURCE_RULES,
        incomplete=BOOLEAN,
        evaluationError=STRING,
    ),
)
TOKEN_REVIEW = kind_schema(
    spec=obj(token=STRING, audiences=STRINGS),
    status=obj(authenticated=BOOLEAN, user=_USER_INFO, audiences=STRINGS, error=STRING),
)


def _attributes(obj: Obj) -> list[Cause]:
    resource = get(obj, "spec", "resourceAttributes")
    non_resource = get(obj, "spec", "nonResourceAttributes")
    if resource is not None and non_resource is not None:
        return [
            f.invalid(
                "spec.nonResourceAttributes",
                non_resource,
                "cannot be specified in combination with resourceAttributes",
            )
        ]
    if resource is None and non_resource is None:
        return [
            f.invalid(
                "spec.resourceAttributes",
                None,
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        ]
    return []


class _ReviewStrategy(Strategy):
    def validate_create(self, obj: Obj) -> list[Cause]:
        return self._type_causes(obj) or self._validate(obj)


class SelfSubjectAccessReviewStrategy(_ReviewStrategy):
    schema: ClassVar[Schema] = SELF_SUBJECT_ACCESS_REVIEW

    def _validate(self, obj: Obj) -> list[Cause]:
        return _attributes(obj)


class SubjectAccessReviewStrategy(_ReviewStrategy):
    schema: ClassVar[Schema] = SUBJECT_ACCESS_REVIEW

    def _validate(self, obj: Obj) -> list[Cause]:
        causes = _attributes(obj)
        if not get(obj, "spec", "user") and not get(obj, "spec", "groups"):
            causes.append(
                f.invalid("spec.user", "", "at least one of user or group must be specified")
            )
        return causes


class SelfSubjectReviewStrategy(_ReviewStrategy):
    schema: ClassVar[Schema] = SELF_SUBJECT_REVIEW


class SelfSubjectRulesReviewStrategy(_ReviewStrategy):
    schema: ClassVar[Schema] = SELF_SUBJECT_RULES_REVIEW


class TokenReviewStrategy(_ReviewStrategy):
    schema: ClassVar[Schema] = TOKEN_REVIEW

    def _validate(self, obj: Obj) -> list[Cause]:
        return [] if get(obj, "spec", "token") else [f.required("spec.token")]
