"""What every authorizer answers, the chain the API server asks, and the refusal it sends.

The chain is upstream's ``--authorization-mode=Node,RBAC`` behind the privileged-group
authorizer that kube-apiserver always puts first: members of ``system:masters`` may do anything,
then the Node authorizer speaks for kubelets, then RBAC for everyone. Each authorizer either
allows or has no opinion (none of these ever denies outright, as upstream's never do), and the
first that allows wins. When none allows, the reasons they gave are joined with newlines, as
upstream's union authorizer joins them, and appended to the forbidden message.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs

from raftkube.apiserver.errors import APIError, forbidden_message
from raftkube.apiserver.request_info import RequestInfo

from .user import MASTERS, NODES, UserInfo


@attrs.frozen
class Decision:
    """An authorizer's answer: ``allowed``, or not with ``reason`` (possibly empty) saying why
    not; an allowing decision's reason names what allowed it (``RBAC: allowed by ...``)."""

    allowed: bool
    reason: str = ""


NO_OPINION = Decision(False)
NODE_RULES_UNSUPPORTED = "node authorizer does not support user rule resolution"
NODE_USER_PREFIX = "system:node:"


def node_identity(user: UserInfo) -> tuple[str, bool]:
    """``(node name, is a node)``: upstream's default node identifier, a user named
    ``system:node:{name}`` in ``system:nodes`` (the name may be empty for a malformed node
    user, which is a node refused everything)."""
    if not user.name.startswith(NODE_USER_PREFIX) or NODES not in user.groups:
        return "", False
    return user.name[len(NODE_USER_PREFIX) :], True


class RequestAuthorizer(Protocol):
    """One authorizer of the chain; RBAC can also list what it grants."""

    def authorize(self, user: UserInfo, info: RequestInfo) -> Decision: ...

    def rules_for(self, user: UserInfo, namespace: str) -> dict[str, Any]: ...


class NodeRequestAuthorizer(Protocol):
    """The Node authorizer also reads the request's field selector (a kubelet may list only
    the pods whose ``spec.nodeName`` is its own)."""

    def authorize(
        self, user: UserInfo, info: RequestInfo, *, field_selector: str = ""
    ) -> Decision: ...


@attrs.frozen
class Authorizer:
    """``system:masters``, then ``node`` (when given), then ``rbac``."""

    rbac: RequestAuthorizer
    node: NodeRequestAuthorizer | None = None

    def authorize(self, user: UserInfo, info: RequestInfo, *, field_selector: str = "") -> Decision:
        """The first allowing decision, or a refusal with every reason given."""
        if MASTERS in user.groups:
            return Decision(True)
        reasons: list[str] = []
        if self.node is not None:
            decision = self.node.authorize(user, info, field_selector=field_selector)
            if decision.allowed:
                return decision
            if decision.reason:
                reasons.append(decision.reason)
        decision = self.rbac.authorize(user, info)
        if decision.allowed:
            return decision
        if decision.reason:
            reasons.append(decision.reason)
        return Decision(False, "\n".join(reasons))

    def rules_for(self, user: UserInfo, namespace: str) -> dict[str, Any]:
        """A SelfSubjectRulesReview's ``status``: RBAC's rules, marked incomplete for a node,
        whose permissions the Node authorizer cannot enumerate (as upstream's says)."""
        status = self.rbac.rules_for(user, namespace)
        if self.node is not None and node_identity(user)[1]:
            status["incomplete"] = True
            errors = [status.get("evaluationError"), NODE_RULES_UNSUPPORTED]
            status["evaluationError"] = ", ".join(e for e in errors if e)
        return status

    def check(self, user: UserInfo, info: RequestInfo, *, field_selector: str = "") -> None:
        """Return if the request is allowed; raise the 403 otherwise."""
        decision = self.authorize(user, info, field_selector=field_selector)
        if not decision.allowed:
            raise forbidden(user, info, decision.reason)


_SANITIZE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def forbidden_text(user: UserInfo, info: RequestInfo) -> str:
    """Upstream's ``forbiddenMessage``: what was refused to whom, HTML-escaped as upstream
    escapes it (a path or name may carry markup)."""
    if not info.is_resource_request:
        text = f'User "{user.name}" cannot {info.verb} path "{info.path}"'
    else:
        resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
        where = (
            f' in the namespace "{info.namespace}"' if info.namespace else " at the cluster scope"
        )
        text = (
            f'User "{user.name}" cannot {info.verb} resource "{resource}" '
            f'in API group "{info.api_group}"{where}'
        )
    return text.translate(_SANITIZE)


def forbidden(user: UserInfo, info: RequestInfo, reason: str = "") -> APIError:
    """The 403 upstream's ``responsewriters.Forbidden`` sends: ``pods "x" is forbidden: User
    "u" cannot get resource "pods" in API group "" in the namespace "ns"``, then ``: reason``
    when an authorizer gave one. The qualified resource leaves the subresource out (it is in
    the sentence), and a non-resource request reads ``forbidden: User "u" cannot get path
    "/x"``, exactly as upstream's ``NewForbidden`` words them."""
    text = forbidden_text(user, info)
    if reason:
        text = f"{text}: {reason}"
    if not info.is_resource_request:
        return forbidden_message(f"forbidden: {text}")
    qualified = f"{info.resource}.{info.api_group}" if info.api_group else info.resource
    subject = f'{qualified} "{info.name}"' if info.name else qualified
    return forbidden_message(
        f"{subject} is forbidden: {text}", info.resource, info.name, info.api_group
    )
