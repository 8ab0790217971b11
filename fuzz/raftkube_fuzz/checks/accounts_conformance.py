"""Request conformance of the ServiceAccount, token and namespace controllers.

The rules here are pure functions of what a loop had read when it sent a request, as the
spec's records (the converters here, on :func:`.cluster_state.spec_meta`); the suite's monitor
(:mod:`raftkube_fuzz.cluster.accounts_monitor`) collects it. The spec's loops are
:mod:`raftkube_spec.control.accounts` (``service_accounts``, ``tokens``, ``namespaces``), and
each rule runs the spec's loop itself on a world built from those reads and looks for the
request among the ones it makes.

* **ServiceAccount controller, a ServiceAccount create** (:func:`account_create`; worker
  ``serviceaccount``, upstream's ``ServiceAccountsController.syncNamespace``). The spec creates
  ``default`` in each namespace of its view that is not being deleted and has no ``default``
  there. The real loop reads exactly two caches, both before its first request (the namespace
  and the namespace's accounts), so its view is its caches when the sync began, and the rule
  is the spec's: a POST of a ServiceAccount is allowed iff that view shows the namespace, not
  being deleted (upstream asks for phase ``Active``; the API server sets ``deletionTimestamp``
  and phase ``Terminating`` in the same write), and no account of that name in it, and the
  spec would create one of that name (``default``: the only account upstream ensures). A
  create the API refused (409: someone else's came first; 403: the namespace began
  terminating meanwhile) is judged too: the decision is what is judged.
* **Token controller, a token Secret's delete** (:func:`token_delete`; workers
  ``serviceaccount-tokens-secret``, upstream's ``syncSecret``, and
  ``serviceaccount-tokens-service``, upstream's ``syncServiceAccount`` for a deleted account).
  The spec deletes a token whose account its view does not show with the uid the token
  records (a token recording no uid, it deletes whatever the view shows: its tokens always
  record one). Upstream's ``syncSecret`` looks the account up in its cache and, on a miss (no
  account of that name, or one with another uid), GETs it live, and deletes only if that too
  finds none with the uid (``getServiceAccount(..., fetchOnCacheMiss=true)``);
  ``syncServiceAccount`` deletes the tokens of an account its cache no longer shows with the
  uid the deletion event carried. Both read the caches before their first request, and an
  account's uid never comes back once gone, so the states the loop read of the account are
  its cache's when the sync began and each GET of it in the sync; the rule asks that the
  spec delete the token from *every* one of them (upstream needs the cache and the live read
  to agree), the token as the secrets cache showed it when the sync began; and, for the
  secret worker, that at least one of them be a live read (upstream's ``syncSecret`` never
  deletes on its cache alone: the cache may not show an account the store already holds, a
  view the spec's loop, whose view is the store's, never has). The account worker's delete
  needs no live read (upstream's ``syncServiceAccount`` reads its cache only: the account's
  deletion event is its proof).
* **Token controller, filling a token Secret in** (:func:`token_populate`; upstream's
  ``generateTokenIfNeeded``, a PUT of the Secret with its ``token``, ``ca.crt`` and
  ``namespace`` data and both annotations). Upstream no longer creates token Secrets
  (``LegacyServiceAccountTokenNoAutoGeneration``; neither does the real one): a user creates
  one naming an account, and the controller fills it in, which is what the spec's create of a
  ``Token`` stands for. The PUT is allowed iff some state the loop read of the account (as
  above) shows an account of the name and with the uid the PUT's annotations record. Two
  things the spec's create asks are not judged: that the account is not being deleted
  (upstream fills a token in for an account with a ``deletionTimestamp`` too, and the real
  loop does as upstream), and that the view has no token of the account yet (the spec's
  tokens carry no data, so a token filled in again, its ``ca.crt`` changed, would be a false
  alarm).
* **Namespace controller, deleting a namespace's content** (:func:`content_delete`; worker
  ``namespace``, upstream's ``NamespacedResourcesDeleter``). The spec deletes the objects of a
  namespace its view shows being deleted. The real loop first GETs the namespace and acts
  only when that shows a ``deletionTimestamp``; a namespace's deletion is never undone, so a
  DELETE (of one object, or of a resource's collection, as upstream deletes them) in a
  namespace is allowed iff it is the namespace of the sync and some state the loop read of
  it (its cache when the sync began, or a GET in the sync) shows it being deleted.
* **Namespace controller, the finalizer's removal** (:func:`namespace_finalize`; the PUT to
  ``namespaces/{name}/finalize``). The spec removes ``kubernetes`` from a namespace being
  deleted once its view shows nothing in it. Upstream's deleter does not read the content from
  an informer: it LISTs each resource discovery names, live, after deleting its collection;
  so the loop's view of the content is its own LIST answers in the sync, each at its own
  revision (nothing is created in a terminating namespace, so an empty answer stays true).
  The PUT is allowed iff some state read of the namespace shows it being deleted with the
  ``kubernetes`` finalizer and the spec removes it from a world of that namespace and what the
  sync's last LIST of each namespaced, stored resource (the real loop's list in place of
  discovery) answered: every resource listed, every answer empty. A resource not served (its
  LIST answered 404 or 405) is skipped, as upstream skips it.

What this cannot see: the namespace controller's status writes (its phase and conditions: the
spec does not model them), the token controller's removal of a deleted Secret's reference from
its account (the real one keeps no references), writes a loop should have made and did not,
and the root CA publisher's ConfigMaps (``root-ca-cert-publisher``): the spec has no loop for
them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from raftkube_fuzz.checks.cluster_state import spec_meta
from raftkube_spec.control.accounts import namespaces, service_accounts, tokens
from raftkube_spec.control.records import Namespace, Record, ServiceAccount, Token, sorted_records
from raftkube_spec.control.world import NAMESPACE_FINALIZER, Create, Delete, Patch, World

TOKEN_ACCOUNT_NAME = "kubernetes.io/service-account.name"
TOKEN_ACCOUNT_UID = "kubernetes.io/service-account.uid"


def spec_namespace(obj: Mapping[str, Any]) -> Namespace:
    """A real Namespace as the spec's record. The spec keeps the namespace controller's
    ``kubernetes`` finalizer among the metadata's finalizers; the API keeps it in
    ``spec.finalizers``, so both lists are carried."""
    meta = spec_meta(obj, "Namespace")
    held = tuple((obj.get("spec") or {}).get("finalizers") or ())
    return Namespace(attrs.evolve(meta, finalizers=meta.finalizers + held))


def spec_service_account(obj: Mapping[str, Any]) -> ServiceAccount:
    return ServiceAccount(spec_meta(obj, "ServiceAccount"))


def spec_token(obj: Mapping[str, Any]) -> Token:
    """A Secret of type ``kubernetes.io/service-account-token`` as the spec's record: the
    account its annotations name, and the uid they record ("" when they record none)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return Token(
        spec_meta(obj, "Token"),
        str(annotations.get(TOKEN_ACCOUNT_NAME) or ""),
        str(annotations.get(TOKEN_ACCOUNT_UID) or ""),
    )


def _world(records: Sequence[Record | None]) -> World:
    unique = {r.meta.key: r for r in records if r is not None}
    return World(sorted_records(unique.values()))


def _describe_account(state: ServiceAccount | None) -> str:
    if state is None:
        return "none"
    deleting = ", being deleted" if state.meta.deleting else ""
    return f"uid {state.meta.uid}{deleting}"


def account_create(
    namespace: str, name: str, ns: Namespace | None, accounts: Sequence[ServiceAccount]
) -> str | None:
    """A POST of ServiceAccount ``name`` in ``namespace``, from a view showing ``ns`` (None:
    no such namespace) and the ``accounts`` of that namespace."""
    view = _world([ns, *accounts])
    _, requests = service_accounts(None, view, 0)
    wanted = ("ServiceAccount", namespace, name)
    if any(isinstance(r, Create) and r.obj.meta.key == wanted for r in requests):
        return None
    if ns is None:
        return f"its view has no namespace {namespace}"
    if ns.meta.deleting:
        return f"its view shows namespace {namespace} being deleted"
    if view.get(wanted) is not None:
        return f"its view already shows ServiceAccount {namespace}/{name}"
    return f"the spec creates only the default ServiceAccount, not {name}"


def token_delete(
    token: Token | None,
    account_states: Sequence[ServiceAccount | None],
    live_reads: int | None = None,
) -> str | None:
    """A DELETE of ``token`` (as the loop's cache showed it; None: it showed no such token),
    given each state the loop read of the account the token names (None: none there), the
    cache's first. ``live_reads``: for the secret worker, how many of those came from a GET
    (upstream's ``syncSecret`` deletes only after one: the cache alone is no proof); None for
    the account worker, which deletes on its cache alone."""
    if token is None:
        return "its view has no such token Secret"
    told = ", ".join(_describe_account(s) for s in account_states) or "nothing"
    for state in account_states or [None]:
        _, requests = tokens(None, _world([token, state]), 0)
        if not any(isinstance(r, Delete) and r.ref == token.meta.ref for r in requests):
            return (
                f"it read ServiceAccount {token.meta.namespace}/{token.account} with the uid "
                f"the token records ({token.account_uid or 'none'}): {told}; the spec deletes "
                "a token only while no account of its name has its uid"
            )
    if live_reads == 0 and token.account:
        return (
            f"it deleted on its cache's miss of ServiceAccount {token.meta.namespace}/"
            f"{token.account} ({told}) without reading the account live, as upstream's "
            "syncSecret does before deleting: a cache behind the store is no proof the "
            "account is gone"
        )
    return None


def token_populate(
    namespace: str,
    account: str,
    account_uid: str,
    account_states: Sequence[ServiceAccount | None],
) -> str | None:
    """A PUT filling in a token Secret whose annotations record ``account`` and
    ``account_uid``, given each state the loop read of that account."""
    if not account_uid:
        return "the token it writes records no account uid"
    if any(s is not None and s.meta.uid == account_uid for s in account_states):
        return None
    return (
        f"it read ServiceAccount {namespace}/{account}: "
        f"{', '.join(_describe_account(s) for s in account_states) or 'nothing'}; none with the "
        f"uid the token records ({account_uid})"
    )


def _terminating(ns: Namespace | None) -> bool:
    return ns is not None and ns.meta.deleting


def content_delete(
    namespace: str, sync_namespace: str, ns_states: Sequence[Namespace | None]
) -> str | None:
    """A DELETE in ``namespace`` by the sync of ``sync_namespace``, given each state the loop
    read of the latter; ``namespace`` "": the namespace itself."""
    if not namespace:
        return f"it deletes namespace {sync_namespace} itself, which the spec's loop never does"
    if namespace != sync_namespace:
        return f"it deletes in namespace {namespace} while syncing namespace {sync_namespace}"
    if any(_terminating(s) for s in ns_states):
        return None
    return f"no state of namespace {namespace} it read shows it being deleted"


def namespace_finalize(
    ns_states: Sequence[Namespace | None], listed: Mapping[str, Sequence[Record] | None]
) -> str | None:
    """The ``finalize`` PUT taking ``kubernetes`` off a namespace, given each state the loop
    read of it and, per resource it must empty, what its last LIST of it answered (None:
    never listed; served resources only)."""
    unlisted = sorted(r for r, objs in listed.items() if objs is None)
    if unlisted:
        return f"its own lists never showed {', '.join(unlisted)} in the namespace"
    content = [obj for objs in listed.values() for obj in objs or ()]
    held = [
        s
        for s in ns_states
        if s is not None and s.meta.deleting and NAMESPACE_FINALIZER in s.meta.finalizers
    ]
    if not held:
        return (
            f"no state of it read shows it being deleted with the {NAMESPACE_FINALIZER} finalizer"
        )
    for ns in held:
        _, requests = namespaces(None, _world([ns, *content]), 0)
        for r in requests:
            if isinstance(r, Patch) and r.ref.key == ns.meta.key:
                return None
    remaining = sorted(f"{o.meta.kind} {o.meta.name}" for o in content)
    return (
        f"its last lists in the sync still showed {len(remaining)} "
        f"object{'' if len(remaining) == 1 else 's'} in it "
        f"({', '.join(remaining[:5])}): the spec removes the finalizer only from an empty "
        "namespace"
    )
