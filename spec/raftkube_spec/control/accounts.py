"""The service account and token controllers, the token authenticator, and the namespace
controller.

Theory of operation
-------------------
:func:`service_accounts` is upstream's ServiceAccountsController: every namespace that is not
terminating gets a ``default`` ServiceAccount (the API refuses creates in a terminating
namespace, so the controller cannot hold a deletion up).

:func:`tokens` is the TokensController for legacy token Secrets: every ServiceAccount that is
not being deleted gets a token whose annotations name it and its uid (named
``<account>-token-<uid>``; upstream draws a random suffix), and every token whose account
is gone, or was recreated with another uid, is deleted.

:func:`authenticates` is the legacy token authenticator's check (upstream's
``legacyValidator``): the Secret exists and is not being deleted, and the ServiceAccount it
names exists with the uid it records and is not being deleted. This, not the token controller's
cleanup, is what makes a deleted account's tokens authenticate nobody *at once*; the cleanup
only removes the dead Secrets eventually.

:func:`namespaces` is the namespace controller: a terminating namespace (deletionTimestamp set,
the ``kubernetes`` finalizer in ``spec.finalizers``) has every object in it deleted, and once
its view shows it empty, the finalizer removed, which lets the namespace go.
"""

from __future__ import annotations

from raftkube_spec.control.records import Namespace, ServiceAccount, Token, meta
from raftkube_spec.control.world import NAMESPACE_FINALIZER, Create, Delete, Patch, Request, World


def service_accounts(memory: None, view: World, now: int) -> tuple[None, tuple[Request, ...]]:
    requests: list[Request] = []
    for ns in view.of(Namespace):
        if not ns.meta.deleting and view.get(("ServiceAccount", ns.meta.name, "default")) is None:
            requests.append(Create(ServiceAccount(meta("ServiceAccount", "default", ns.meta.name))))
    return None, tuple(requests)


def _account_of(view: World, token: Token) -> ServiceAccount | None:
    found = view.get(("ServiceAccount", token.meta.namespace, token.account))
    return found if isinstance(found, ServiceAccount) else None


def tokens(memory: None, view: World, now: int) -> tuple[None, tuple[Request, ...]]:
    requests: list[Request] = []
    all_tokens = tuple(view.of(Token))
    for account in view.of(ServiceAccount):
        if account.meta.deleting:
            continue
        if not any(
            t.account == account.meta.name
            and t.account_uid == account.meta.uid
            and t.meta.namespace == account.meta.namespace
            for t in all_tokens
        ):
            name = f"{account.meta.name}-token-{account.meta.uid}"
            token = Token(
                meta("Token", name, account.meta.namespace), account.meta.name, account.meta.uid
            )
            requests.append(Create(token))
    for token in all_tokens:
        owner = _account_of(view, token)
        if owner is None or owner.meta.uid != token.account_uid:
            requests.append(Delete(token.meta.ref))
    return None, tuple(requests)


def authenticates(api: World, token: Token) -> bool:
    stored = api.get(token.meta.key)
    if stored != token or token.meta.deleting:
        return False
    account = _account_of(api, token)
    return (
        account is not None and account.meta.uid == token.account_uid and not account.meta.deleting
    )


def namespaces(memory: None, view: World, now: int) -> tuple[None, tuple[Request, ...]]:
    requests: list[Request] = []
    for ns in view.of(Namespace):
        if not ns.meta.deleting:
            continue
        inside = [o for o in view.objects if o.meta.namespace == ns.meta.name]
        requests += [Delete(o.meta.ref) for o in inside if not o.meta.deleting]
        if not inside and NAMESPACE_FINALIZER in ns.meta.finalizers:
            rest = tuple(f for f in ns.meta.finalizers if f != NAMESPACE_FINALIZER)
            requests.append(Patch(ns.meta.ref, (("meta.finalizers", rest),)))
    return None, tuple(requests)
