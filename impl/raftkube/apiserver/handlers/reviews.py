"""The review resources: questions answered by the server, never stored.

``kubectl auth can-i`` creates a SelfSubjectAccessReview, ``kubectl auth whoami`` a
SelfSubjectReview; components with the right role ask about others through
SubjectAccessReview and TokenReview. Each answer echoes the request's spec with a status.
"""

from __future__ import annotations

from typing import Any

from raftkube.apiserver import errors
from raftkube.apiserver.auth.user import AUTHENTICATED, UserInfo
from raftkube.apiserver.encoding import decode_object, respond
from raftkube.apiserver.handlers.context import Call
from raftkube.apiserver.request import Response
from raftkube.apiserver.request_info import RequestInfo


def _attributes(spec: dict[str, Any]) -> RequestInfo:
    """The RequestInfo a review asks about: resource or non-resource attributes."""
    res = spec.get("resourceAttributes")
    non = spec.get("nonResourceAttributes")
    if isinstance(res, dict):
        return RequestInfo(
            path="",
            verb=str(res.get("verb") or ""),
            is_resource_request=True,
            api_group=str(res.get("group") or ""),
            api_version=str(res.get("version") or ""),
            namespace=str(res.get("namespace") or ""),
            resource=str(res.get("resource") or ""),
            subresource=str(res.get("subresource") or ""),
            name=str(res.get("name") or ""),
        )
    if isinstance(non, dict):
        return RequestInfo(path=str(non.get("path") or ""), verb=str(non.get("verb") or ""))
    raise errors.invalid(
        "SelfSubjectAccessReview",
        "",
        [errors.Cause("spec.resourceAttributes", "FieldValueRequired",
                      "Required value: exactly one of nonResourceAttributes or "
                      "resourceAttributes must be specified")],
        "authorization.k8s.io",
    )  # fmt: skip


def _decide(call: Call, user: UserInfo, spec: dict[str, Any]) -> dict[str, Any]:
    decision = call.services.authorizer.authorize(user, _attributes(spec))
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return status


async def self_subject_access_review(call: Call) -> Response:
    body = decode_object(call.request, "SelfSubjectAccessReview")
    spec = body.get("spec") or {}
    out = _echo(body, "SelfSubjectAccessReview", "authorization.k8s.io/v1")
    out["status"] = _decide(call, call.user, spec)
    return respond(201, out, call.request)


async def self_subject_rules_review(call: Call) -> Response:
    """``kubectl auth can-i --list``: the rules the caller holds in ``spec.namespace``."""
    body = decode_object(call.request, "SelfSubjectRulesReview")
    spec = body.get("spec") or {}
    out = _echo(body, "SelfSubjectRulesReview", "authorization.k8s.io/v1")
    namespace = str(spec.get("namespace") or "")
    out["status"] = call.services.authorizer.rules_for(call.user, namespace)
    return respond(201, out, call.request)


async def subject_access_review(call: Call) -> Response:
    body = decode_object(call.request, "SubjectAccessReview")
    spec = body.get("spec") or {}
    user = UserInfo(
        name=str(spec.get("user") or ""),
        uid=str(spec.get("uid") or ""),
        groups=tuple(spec.get("groups") or ()),
        extra=tuple((k, tuple(v)) for k, v in sorted((spec.get("extra") or {}).items())),
    )
    out = _echo(body, "SubjectAccessReview", "authorization.k8s.io/v1")
    out["status"] = _decide(call, user, spec)
    return respond(201, out, call.request)


async def self_subject_review(call: Call) -> Response:
    body = decode_object(call.request, "SelfSubjectReview")
    out = _echo(body, "SelfSubjectReview", "authentication.k8s.io/v1")
    out["status"] = {"userInfo": call.user.as_dict()}
    return respond(201, out, call.request)


async def token_review(call: Call) -> Response:
    body = decode_object(call.request, "TokenReview")
    spec = body.get("spec") or {}
    token = spec.get("token")
    if not isinstance(token, str) or not token:
        raise errors.invalid(
            "TokenReview", "", [errors.Cause("spec.token", "FieldValueRequired", "Required value")],
            "authentication.k8s.io",
        )  # fmt: skip
    out = _echo(body, "TokenReview", "authentication.k8s.io/v1")
    out["spec"] = {k: v for k, v in spec.items() if k != "token"}  # never echo a credential
    authenticate = call.services.authenticate_token
    user = None
    if authenticate is not None:
        try:
            user = await authenticate(token)
        except errors.APIError:
            user = None
    if user is None:
        out["status"] = {"authenticated": False, "error": "invalid bearer token"}
    else:
        info = user.as_dict()
        if AUTHENTICATED not in user.groups:
            info["groups"] = [*user.groups, AUTHENTICATED]
        out["status"] = {"authenticated": True, "user": info,
                         "audiences": list(spec.get("audiences") or [])}  # fmt: skip
    return respond(201, out, call.request)


def _echo(body: dict[str, Any], kind: str, api_version: str) -> dict[str, Any]:
    raw = body.get("metadata")
    meta: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return {
        "kind": kind,
        "apiVersion": api_version,
        "metadata": {**meta, "creationTimestamp": None},
        "spec": body.get("spec") or {},
    }
