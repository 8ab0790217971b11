"""The ``cluster`` suite's object-lifecycle mutants: bugs in the loops that decide when an
object goes with another (the garbage collector's ownership graph), and in what must stop
working once an object is gone (a deleted ServiceAccount's tokens)."""

from __future__ import annotations

from raftkube.apiserver.auth.tokens import (
    CREDENTIAL_ID_KEY,
    POD_NAME_KEY,
    POD_UID_KEY,
    PRIVATE_CLAIM,
    TokenError,
    TokenVerifier,
    service_account_user,
    service_account_username,
)
from raftkube.apiserver.auth.user import UserInfo
from raftkube.controllers.controller_utils import is_being_deleted, labels_of, selects
from raftkube.controllers.garbagecollector import (
    FOREGROUND,
    GarbageCollector,
    Node,
    Obj,
    is_deleting_dependents,
)
from raftkube_fuzz.mutants.base import CONTROL_PLANE, Mutant, patch

# --- gc-selects-by-label -------------------------------------------------------------------------


async def _process_deleting_dependents_by_label(
    self: GarbageCollector, node: Node, latest: Obj
) -> None:
    waiting_on = []
    # MUTANT: an owner's dependents are the objects of its namespace that its selector matches,
    # not the objects naming it (by uid) in their ownerReferences.
    selector = (latest.get("spec") or {}).get("selector")
    for dependent in sorted(self.nodes):
        dep = self.nodes.get(dependent)
        # MUTANT: matched by labels, so a pod another owner owns is among them.
        if (
            dep is not None
            and dep.namespace == node.namespace
            and selects(selector, labels_of(dep.obj))
        ):
            waiting_on.append(dependent)
    if not waiting_on:
        await self.remove_finalizer(node, FOREGROUND)
        return
    for dependent in waiting_on:
        dep = self.nodes[dependent]
        if not is_being_deleted(dep.obj) or is_deleting_dependents(dep.obj):
            # MUTANT: a selected object is deleted as the owner's, without judging its own
            # ownerReferences (attempt_to_delete would find its real owner solid).
            await self._delete(dep, "Background")


# --- token-outlives-account ----------------------------------------------------------------------


async def _verify_without_live_account(self: TokenVerifier, token: str) -> UserInfo:
    claims = self._signed_claims(token)
    self._check_times(claims)
    private = claims.get(PRIVATE_CLAIM)
    if not isinstance(private, dict):
        raise TokenError("token has no kubernetes.io claims")
    namespace = str(private.get("namespace", ""))
    account = private.get("serviceaccount")
    if not namespace or not isinstance(account, dict) or not account.get("name"):
        raise TokenError("token names no service account")
    name = str(account["name"])
    if claims.get("sub") != service_account_username(namespace, name):
        raise TokenError("token subject does not match its service account")
    # MUTANT: the ServiceAccount is not looked up: the uid the signed token claims is taken on
    # trust, so a token of a deleted (or deleted and re-created) account still authenticates.
    uid = str(account.get("uid", ""))
    extra: dict[str, list[str]] = {}
    pod = private.get("pod")
    if pod is not None:
        if self.lookup_pod is None or not isinstance(pod, dict):
            raise TokenError("pod-bound tokens cannot be checked here")
        await self._check_live("pod", self.lookup_pod, namespace, pod)
        extra[POD_NAME_KEY] = [str(pod.get("name", ""))]
        extra[POD_UID_KEY] = [str(pod.get("uid", ""))]
    if claims.get("jti"):
        extra[CREDENTIAL_ID_KEY] = [f"JTI={claims['jti']}"]
    return service_account_user(namespace, name, uid, extra)


MUTANTS = (
    Mutant(
        "gc-selects-by-label",
        "the garbage collector deletes, with an owner deleted in the foreground, every object "
        "its selector matches, not only those that name it as owner",
        "cluster",
        "RequestConformance",
        False,
        patch(
            GarbageCollector, "process_deleting_dependents", _process_deleting_dependents_by_label
        ),
        {**CONTROL_PLANE, "canary": "on"},
    ),
    Mutant(
        "token-outlives-account",
        "the API server authenticates a ServiceAccount token without checking that its account "
        "still exists with the uid the token names",
        "cluster",
        "DeletedAccountTokens",
        False,
        patch(TokenVerifier, "verify", _verify_without_live_account),
        {**CONTROL_PLANE, "accounts": "tokens"},
    ),
)
