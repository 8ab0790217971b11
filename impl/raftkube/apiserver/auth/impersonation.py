"""Acting as another user: upstream's impersonation filter (``kubectl --as``).

A request may ask to be served as someone else through headers: ``Impersonate-User``,
``Impersonate-Group`` (repeatable), ``Impersonate-Uid`` and ``Impersonate-Extra-{key}``. Each
thing asked for is authorized against the authenticated requester with the verb
``impersonate``, as upstream's ``WithImpersonation`` does it, and the first refusal is the
request's 403:

========================================  ==============================================
asked for                                 authorized as
========================================  ==============================================
user ``jane``                             ``users`` named ``jane`` (cluster scope)
user ``system:serviceaccount:ns:name``    ``serviceaccounts`` named ``name`` in ``ns``
group ``g``                               ``groups`` named ``g``
uid ``u``                                 ``uids.authentication.k8s.io`` named ``u``
extra ``key`` = ``v``                     ``userextras.authentication.k8s.io/key`` named ``v``
========================================  ==============================================

The impersonated user then replaces the requester for everything after: authorization,
admission, a SelfSubjectReview's answer. It gets only what the headers name, plus, as upstream
adds them, a service account's two groups when no group is asked for, and
``system:authenticated`` unless an (un)authenticated group is asked for
(``system:unauthenticated`` for ``system:anonymous``).

Groups, uid or extras without a user are refused with upstream's 500 (``InternalError``), not a
4xx: upstream answers that way, and clients see the status. The HTTP layer joins repeated
headers with ``", "``, so a repeated ``Impersonate-Group`` is split there again: a group name
that itself holds ``", "`` cannot be impersonated (upstream keeps each header line apart).
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping

import attrs

from raftkube.apiserver import errors
from raftkube.apiserver.kinds.names import is_dns1123_label, is_dns1123_subdomain
from raftkube.apiserver.request_info import RequestInfo

from .authorize import Authorizer, forbidden
from .tokens import service_account_username, split_service_account_username
from .user import ANONYMOUS, AUTHENTICATED, SERVICE_ACCOUNTS, UNAUTHENTICATED, UserInfo

log = logging.getLogger(__name__)

USER_HEADER = "impersonate-user"
GROUP_HEADER = "impersonate-group"
UID_HEADER = "impersonate-uid"
EXTRA_HEADER_PREFIX = "impersonate-extra-"
AUTHENTICATION_GROUP = "authentication.k8s.io"
JOINED = ", "
"""How the HTTP layer joins the values of a repeated header."""


@attrs.frozen
class Asked:
    """One thing a request asks to impersonate, as the authorization attributes it needs."""

    resource: str
    name: str
    namespace: str = ""
    api_group: str = ""
    subresource: str = ""

    def attributes(self, path: str) -> RequestInfo:
        return RequestInfo(
            path=path,
            verb="impersonate",
            is_resource_request=True,
            api_group=self.api_group,
            api_version="v1",
            namespace=self.namespace,
            resource=self.resource,
            subresource=self.subresource,
            name=self.name,
        )


def service_account_of(username: str) -> tuple[str, str] | None:
    """``(namespace, name)`` when ``username`` is a well-formed service account's, as
    upstream's ``serviceaccount.SplitUsername``, which also validates both names (anything
    else is impersonated as a user)."""
    account = split_service_account_username(username)
    if account is None or is_dns1123_label(account[0]) or is_dns1123_subdomain(account[1]):
        return None
    return account


def _values(headers: Mapping[str, str], name: str) -> list[str]:
    value = headers.get(name)
    return value.split(JOINED) if value else []


def requested(headers: Mapping[str, str]) -> list[Asked]:
    """What ``headers`` (lower-case names) ask to impersonate, in upstream's order: user,
    groups, extras, uid. Raises the 500 when any of the others comes without a user."""
    asked: list[Asked] = []
    username = headers.get(USER_HEADER, "")
    if username:
        account = service_account_of(username)
        if account is not None:
            asked.append(Asked("serviceaccounts", account[1], namespace=account[0]))
        else:
            asked.append(Asked("users", username))
    others = [Asked("groups", group) for group in _values(headers, GROUP_HEADER)]
    for header in sorted(headers):
        if header.startswith(EXTRA_HEADER_PREFIX):
            key = urllib.parse.unquote(header[len(EXTRA_HEADER_PREFIX) :])
            others.extend(
                Asked("userextras", value, api_group=AUTHENTICATION_GROUP, subresource=key)
                for value in _values(headers, header)
            )
    uid = headers.get(UID_HEADER, "")
    if uid:
        others.append(Asked("uids", uid, api_group=AUTHENTICATION_GROUP))
    if others and not username:
        kinds = sorted({a.resource for a in others})
        raise errors.APIError(
            500,
            "InternalError",
            f"Internal error occurred: requested impersonation of {', '.join(kinds)} "
            "without impersonating a user",
        )
    return asked + others


def impersonate(
    requester: UserInfo, headers: Mapping[str, str], path: str, authorizer: Authorizer
) -> UserInfo:
    """The user to serve the request as: ``requester`` itself when nothing is asked; the user
    the headers name when ``requester`` may impersonate every part of it; else the 403 for
    the first part it may not."""
    asked = requested(headers)
    if not asked:
        return requester
    for part in asked:
        attributes = part.attributes(path)
        decision = authorizer.authorize(requester, attributes)
        if not decision.allowed:
            raise forbidden(requester, attributes, decision.reason)
    groups_given = GROUP_HEADER in headers
    name, uid = "", ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}
    for part in asked:
        if part.resource == "serviceaccounts":
            name = service_account_username(part.namespace, part.name)
            if not groups_given:
                groups = [SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{part.namespace}"]
        elif part.resource == "users":
            name = part.name
        elif part.resource == "groups":
            groups.append(part.name)
        elif part.resource == "userextras":
            extra.setdefault(part.subresource, []).append(part.name)
        else:
            uid = part.name
    if name != ANONYMOUS:
        if AUTHENTICATED not in groups and UNAUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
    elif UNAUTHENTICATED not in groups:
        groups.append(UNAUTHENTICATED)
    user = UserInfo(
        name=name,
        uid=uid,
        groups=tuple(groups),
        extra=tuple(sorted((key, tuple(values)) for key, values in extra.items())),
    )
    log.debug("%s is impersonating %s", requester.name, user.name)
    return user
