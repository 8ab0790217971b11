"""Impersonation (``kubectl --as``): who may act as whom, the user a request is then served as,
and upstream's refusals."""

from __future__ import annotations

from typing import Any

import pytest

from raftkube.apiserver.auth.authorize import Authorizer
from raftkube.apiserver.auth.impersonation import impersonate, requested
from raftkube.apiserver.auth.rbac import RBACAuthorizer
from raftkube.apiserver.auth.user import (
    ANONYMOUS,
    AUTHENTICATED,
    MASTERS,
    UNAUTHENTICATED,
    UserInfo,
)
from raftkube.apiserver.errors import APIError
from tests.helpers.memory_rbac import Source

Obj = dict[str, Any]

ALICE = UserInfo("alice", groups=(AUTHENTICATED,))
ADMIN = UserInfo("kubernetes-admin", groups=(MASTERS, AUTHENTICATED))
PATH = "/api/v1/namespaces/default/pods"


def impersonator(rules: list[Obj], namespace: str = "") -> Authorizer:
    """An authorizer that grants alice ``rules`` (in ``namespace``, or cluster-wide)."""
    kind = "Role" if namespace else "ClusterRole"
    meta: Obj = {"name": "impersonator"}
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": "impersonator"}
    if namespace:
        meta["namespace"] = namespace
    return Authorizer(
        RBACAuthorizer(
            Source(
                [
                    {"kind": kind, "metadata": meta, "rules": rules},
                    {
                        "kind": f"{kind}Binding",
                        "metadata": meta,
                        "roleRef": ref,
                        "subjects": [{"kind": "User", "name": "alice"}],
                    },
                ]
            )
        )
    )


def may(resource: str, *names: str, group: str = "") -> Obj:
    rule: Obj = {"apiGroups": [group], "resources": [resource], "verbs": ["impersonate"]}
    if names:
        rule["resourceNames"] = list(names)
    return rule


NOBODY = impersonator([])


def refusal(requester: UserInfo, headers: dict[str, str], authorizer: Authorizer) -> APIError:
    with pytest.raises(APIError) as caught:
        impersonate(requester, headers, PATH, authorizer)
    return caught.value


def test_no_headers_keep_the_requester() -> None:
    assert impersonate(ALICE, {"accept": "application/json"}, PATH, NOBODY) is ALICE


def test_a_user_alice_may_impersonate() -> None:
    authorizer = impersonator([may("users", "jane")])
    assert impersonate(ALICE, {"impersonate-user": "jane"}, PATH, authorizer) == UserInfo(
        "jane", groups=(AUTHENTICATED,)
    )


def test_a_user_alice_may_not_impersonate_is_upstreams_403() -> None:
    err = refusal(ALICE, {"impersonate-user": "bob"}, impersonator([may("users", "jane")]))
    assert err.code == 403 and err.reason == "Forbidden"
    assert err.message == (
        'users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API '
        'group "" at the cluster scope'
    )


def test_a_service_account_is_authorized_in_its_namespace_and_gets_its_groups() -> None:
    authorizer = impersonator([may("serviceaccounts", "robot")], namespace="ns")
    user = impersonate(
        ALICE, {"impersonate-user": "system:serviceaccount:ns:robot"}, PATH, authorizer
    )
    assert user == UserInfo(
        "system:serviceaccount:ns:robot",
        groups=("system:serviceaccounts", "system:serviceaccounts:ns", AUTHENTICATED),
    )
    err = refusal(ALICE, {"impersonate-user": "system:serviceaccount:other:robot"}, authorizer)
    assert err.message == (
        'serviceaccounts "robot" is forbidden: User "alice" cannot impersonate resource '
        '"serviceaccounts" in API group "" in the namespace "other"'
    )


def test_a_malformed_service_account_name_is_a_plain_user() -> None:
    (asked,) = requested({"impersonate-user": "system:serviceaccount:ns:Not_A_Name"})
    assert (asked.resource, asked.name, asked.namespace) == (
        "users",
        "system:serviceaccount:ns:Not_A_Name",
        "",
    )
    (asked,) = requested({"impersonate-user": "system:serviceaccount:a:b:c"})
    assert asked.resource == "users"


def test_each_group_needs_its_own_grant_and_given_groups_replace_the_accounts() -> None:
    authorizer = impersonator([may("serviceaccounts"), may("groups", "devs", "ops")], namespace="")
    headers = {
        "impersonate-user": "system:serviceaccount:ns:robot",
        "impersonate-group": "devs, ops",
    }
    user = impersonate(ALICE, headers, PATH, authorizer)
    assert user.groups == ("devs", "ops", AUTHENTICATED)
    err = refusal(ALICE, {**headers, "impersonate-group": "devs, system:masters"}, authorizer)
    assert err.code == 403
    assert 'groups "system:masters" is forbidden: User "alice" cannot impersonate' in err.message


def test_an_unauthenticated_group_keeps_system_authenticated_out() -> None:
    headers = {"impersonate-user": "jane", "impersonate-group": UNAUTHENTICATED}
    user = impersonate(ADMIN, headers, PATH, NOBODY)
    assert user.groups == (UNAUTHENTICATED,)
    headers = {"impersonate-user": "jane", "impersonate-group": AUTHENTICATED}
    assert impersonate(ADMIN, headers, PATH, NOBODY).groups == (AUTHENTICATED,)


def test_anonymous_is_unauthenticated() -> None:
    user = impersonate(ADMIN, {"impersonate-user": ANONYMOUS}, PATH, NOBODY)
    assert user == UserInfo(ANONYMOUS, groups=(UNAUTHENTICATED,))


def test_extras_and_uid_are_authorized_in_the_authentication_group() -> None:
    authorizer = impersonator(
        [
            may("users", "jane"),
            may("userextras/scopes.example.com/team", "a", "b", group="authentication.k8s.io"),
            may("uids", "1234", group="authentication.k8s.io"),
        ]
    )
    headers = {
        "impersonate-user": "jane",
        "impersonate-extra-scopes.example.com%2fteam": "a, b",
        "impersonate-uid": "1234",
    }
    user = impersonate(ALICE, headers, PATH, authorizer)
    assert user == UserInfo(
        "jane",
        uid="1234",
        groups=(AUTHENTICATED,),
        extra=(("scopes.example.com/team", ("a", "b")),),
    )
    err = refusal(ALICE, {**headers, "impersonate-uid": "999"}, authorizer)
    assert err.message == (
        'uids.authentication.k8s.io "999" is forbidden: User "alice" cannot impersonate '
        'resource "uids" in API group "authentication.k8s.io" at the cluster scope'
    )
    err = refusal(
        ALICE, {**headers, "impersonate-extra-scopes.example.com%2fteam": "c"}, authorizer
    )
    assert 'cannot impersonate resource "userextras/scopes.example.com/team"' in err.message


@pytest.mark.parametrize(
    "headers",
    [
        {"impersonate-group": "devs"},
        {"impersonate-uid": "1234"},
        {"impersonate-extra-team": "a"},
    ],
)
def test_groups_uid_or_extras_without_a_user_are_upstreams_500(headers: dict[str, str]) -> None:
    err = refusal(ADMIN, headers, NOBODY)
    assert err.code == 500 and err.reason == "InternalError"
    assert "without impersonating a user" in err.message


def test_masters_may_impersonate_anyone() -> None:
    headers = {"impersonate-user": "jane", "impersonate-group": "system:masters"}
    user = impersonate(ADMIN, headers, PATH, NOBODY)
    assert user == UserInfo("jane", groups=(MASTERS, AUTHENTICATED))
