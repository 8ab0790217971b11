"""What the ServiceAccount, token and namespace controllers' judged requests are judged on,
gathered as they are sent.

Four judged loops (their work queues' names): ``serviceaccount``,
``serviceaccount-tokens-secret``, ``serviceaccount-tokens-service`` and ``namespace``. Each
sync's view is its informers' caches when the sync began (:class:`~.judged_loop.Sync`); the
token controller's secret worker and the namespace controller also read live, so their syncs
keep their GETs with the answers (``keeps_reads``): the secret worker's GET of an account its
cache misses, the namespace controller's GET of its namespace and its LIST of each resource in
it (a LIST is a GET of a collection). When a sync sends a request its rule judges, this module
gathers, at that moment, the states the loop had read of each object the rule needs, as the
spec's records; :mod:`raftkube_fuzz.checks.accounts_conformance` says which, and what the rules
are. Judging waits for the end of the step, as for every loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from raftkube.controllers.resources import namespaced_stored_resources
from raftkube.kubeclient import resource_path
from raftkube_fuzz.checks import accounts_conformance as rules
from raftkube_fuzz.checks.accounts_conformance import (
    TOKEN_ACCOUNT_NAME,
    TOKEN_ACCOUNT_UID,
    spec_namespace,
    spec_service_account,
    spec_token,
)
from raftkube_fuzz.checks.gc_conformance import gc_record
from raftkube_fuzz.checks.views import StoreHistory
from raftkube_fuzz.cluster.judged_loop import LoopRules, Read, Sync
from raftkube_spec.control.records import Namespace, Record, ServiceAccount, Token

Obj = dict[str, Any]
Listed = tuple[tuple[str, tuple[Record, ...] | None], ...]
"""Per resource, the records its last LIST answered (None: none answered)."""

TOKENS_SECRET_LOOP = "serviceaccount-tokens-secret"
"""The token controller's secret worker (upstream's ``syncSecret``), which reads accounts
live on a cache miss."""

NOT_SERVED = (404, 405)
"""A LIST answered so: the resource is not served, and the namespace deleter skips it."""


def _parts(path: str) -> list[str]:
    return path.strip("/").split("/")


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _named(objs: Iterable[Obj], namespace: str, name: str) -> Obj | None:
    return next(
        (o for o in objs
         if _meta(o).get("name") == name and (_meta(o).get("namespace") or "") == namespace),
        None,
    )  # fmt: skip


def _gets(reads: Sequence[Read], path: str) -> list[Read]:
    """The sync's GETs of ``path`` that were answered (a plug may keep other methods' answers
    too: only GETs are reads here)."""
    return [
        r for r in reads
        if r.path == path and r.status is not None and getattr(r, "method", "GET") == "GET"
    ]  # fmt: skip


def _states(
    cached: Obj | None, reads: Sequence[Read], path: str, convert: Callable[[Obj], Any]
) -> list[Any]:
    """The states the loop read of one object: its cache's when the sync began (None: not
    there) and each GET of ``path`` (None: a 404); a GET that failed otherwise read nothing."""
    states = [None if cached is None else convert(cached)]
    for read in _gets(reads, path):
        if read.status == 404:
            states.append(None)
        elif read.obj is not None and 200 <= (read.status or 0) < 300:
            states.append(convert(read.obj))
    return states


# --- the ServiceAccount controller ----------------------------------------------------------------


@attrs.frozen
class AccountCreate:
    namespace: str
    name: str
    ns: Namespace | None
    accounts: tuple[ServiceAccount, ...]

    def judge(self) -> str | None:
        return rules.account_create(self.namespace, self.name, self.ns, self.accounts)


def collect_account(
    sync: Sync, method: str, path: str, body: Any, history: StoreHistory
) -> AccountCreate | None:
    """A POST of a ServiceAccount (``/api/v1/namespaces/{ns}/serviceaccounts``)."""
    parts = _parts(path)
    if (
        method != "POST"
        or parts[:3] != ["api", "v1", "namespaces"]
        or parts[4:] != ["serviceaccounts"]
    ):
        return None
    namespace = parts[3]
    name = str(_meta(body).get("name") or "") if isinstance(body, Mapping) else ""
    cached = _named(sync.items("namespaces"), "", namespace)
    accounts = tuple(
        spec_service_account(a)
        for a in sync.items("serviceaccounts")
        if _meta(a).get("namespace") == namespace
    )
    ns = None if cached is None else spec_namespace(cached)
    return AccountCreate(namespace, name, ns, accounts)


# --- the token controller ---------------------------------------------------------------------


@attrs.frozen
class TokenDelete:
    token: Token | None
    accounts: tuple[ServiceAccount | None, ...]
    live_reads: int | None
    """How many of ``accounts`` a GET read (the cache's is the first); None: not asked for
    (the account worker's deletes)."""

    def judge(self) -> str | None:
        return rules.token_delete(self.token, self.accounts, self.live_reads)


@attrs.frozen
class TokenPopulate:
    namespace: str
    account: str
    uid: str
    accounts: tuple[ServiceAccount | None, ...]

    def judge(self) -> str | None:
        return rules.token_populate(self.namespace, self.account, self.uid, self.accounts)


def _account_states(sync: Sync, namespace: str, account: str) -> tuple[ServiceAccount | None, ...]:
    cached = _named(sync.items("serviceaccounts"), namespace, account)
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}"
    return tuple(_states(cached, sync.reads, path, spec_service_account))


def collect_token(
    sync: Sync, method: str, path: str, body: Any, history: StoreHistory
) -> TokenDelete | TokenPopulate | None:
    """A DELETE of a Secret, or a PUT filling one in
    (``/api/v1/namespaces/{ns}/secrets/{name}``)."""
    parts = _parts(path)
    if parts[:3] != ["api", "v1", "namespaces"] or len(parts) != 6 or parts[4] != "secrets":
        return None
    namespace, name = parts[3], parts[5]
    options = body if isinstance(body, Mapping) else {}
    if method == "DELETE":
        uid = str((options.get("preconditions") or {}).get("uid") or "")
        cached = _named(sync.items("secrets"), namespace, name)
        if cached is not None and uid and _meta(cached).get("uid") != uid:
            cached = None
        if cached is None:
            return TokenDelete(None, (), None)
        token = spec_token(cached)
        states = _account_states(sync, namespace, token.account)
        live = len(states) - 1 if sync.loop == TOKENS_SECRET_LOOP else None
        return TokenDelete(token, states, live)
    if method == "PUT":
        annotations = _meta(options).get("annotations") or {}
        account = str(annotations.get(TOKEN_ACCOUNT_NAME) or "")
        uid = str(annotations.get(TOKEN_ACCOUNT_UID) or "")
        return TokenPopulate(namespace, account, uid, _account_states(sync, namespace, account))
    return None


# --- the namespace controller -------------------------------------------------------------------


@attrs.frozen
class ContentDelete:
    namespace: str
    sync_namespace: str
    states: tuple[Namespace | None, ...]

    def judge(self) -> str | None:
        return rules.content_delete(self.namespace, self.sync_namespace, self.states)


@attrs.frozen
class Finalize:
    states: tuple[Namespace | None, ...]
    listed: Listed

    def judge(self) -> str | None:
        return rules.namespace_finalize(self.states, dict(self.listed))


def _namespace_states(sync: Sync) -> tuple[Namespace | None, ...]:
    cached = _named(sync.items("namespaces"), "", sync.key)
    path = f"/api/v1/namespaces/{sync.key}"
    return tuple(_states(cached, sync.reads, path, spec_namespace))


def _listed(
    reads: Sequence[Read], namespace: str
) -> tuple[tuple[str, tuple[Record, ...] | None], ...]:
    """Per namespaced, stored resource, what the sync's last LIST of it in ``namespace``
    answered (None: no LIST answered 2xx; a resource not served is left out)."""
    out: list[tuple[str, tuple[Record, ...] | None]] = []
    for info in namespaced_stored_resources():
        answers = _gets(reads, resource_path(info, namespace=namespace))
        last = answers[-1] if answers else None
        if last is not None and last.status in NOT_SERVED:
            continue
        if last is None or last.obj is None or not (200 <= (last.status or 0) < 300):
            out.append((info.qualified, None))
            continue
        items = last.obj.get("items") or []
        kinded = ({**o, "kind": info.kind} for o in items if isinstance(o, Mapping))
        out.append((info.qualified, tuple(gc_record(o) for o in kinded)))
    return tuple(out)


def collect_namespace(
    sync: Sync, method: str, path: str, body: Any, history: StoreHistory
) -> ContentDelete | Finalize | None:
    """A DELETE in a namespace (an object or a collection), or the ``finalize`` PUT."""
    parts = _parts(path)
    if "namespaces" not in parts:
        return None
    at = parts.index("namespaces")
    rest = parts[at + 1 :]
    if not rest:
        return None
    if method == "PUT" and rest[1:] == ["finalize"]:
        return Finalize(_namespace_states(sync), _listed(sync.reads, rest[0]))
    if method == "DELETE":
        # The namespace itself (``rest`` is its name alone) is never the spec's to delete:
        # judged as content of no namespace being deleted.
        namespace = rest[0] if len(rest) > 1 else ""
        return ContentDelete(namespace, sync.key, _namespace_states(sync))
    return None


ACCOUNTS = LoopRules("serviceaccount", sent=collect_account)
TOKENS_SECRET = LoopRules(TOKENS_SECRET_LOOP, sent=collect_token, keeps_reads=True)
TOKENS_SERVICE = LoopRules("serviceaccount-tokens-service", sent=collect_token)
NAMESPACE = LoopRules("namespace", sent=collect_namespace, keeps_reads=True)

PLUGS = (ACCOUNTS, TOKENS_SECRET, TOKENS_SERVICE, NAMESPACE)
"""The loops this module judges, for :data:`~.conformance_monitor.PLUGGED`."""
