"""The service account controller: a ``default`` ServiceAccount in every active namespace.

Upstream's ``pkg/controller/serviceaccount`` ``ServiceAccountsController``: it watches
namespaces and service accounts; a namespace added or changed, or a service account deleted,
puts the namespace on the queue, and ``sync_namespace`` creates whichever of the accounts to
ensure (``default``) the cache does not show. Namespaces that are not ``Active`` (being
deleted) are left alone; a create that races with the namespace's deletion and is refused
with the ``NamespaceTerminating`` cause, or finds the account already there, is not an error.
"""

from __future__ import annotations

import logging
from collections.abc import Container, Sequence
from typing import Any

from raftkube.clock import Clock
from raftkube.controllers.controller import Worker, new_queue
from raftkube.controllers.informer import ResourceEventHandlerFuncs, SharedInformerFactory
from raftkube.controllers.resources import NAMESPACES, SERVICE_ACCOUNTS
from raftkube.controllers.store import DeletedFinalStateUnknown, object_of
from raftkube.kubeclient import KubeAPIError, KubeClient

logger = logging.getLogger("raftkube.controllers.serviceaccount")

Obj = dict[str, Any]

DEFAULT_SERVICE_ACCOUNTS = ("default",)
"""upstream's ``DefaultServiceAccountsControllerOptions``: the accounts every namespace gets."""

NAMESPACE_TERMINATING_CAUSE = "NamespaceTerminating"


def service_accounts_to_create(
    namespace: Obj | None, existing: Container[str], wanted: Sequence[str]
) -> list[Obj]:
    """The ServiceAccounts to create in ``namespace`` (as cached; None if absent), given the
    names of the accounts the cache has there: the missing ``wanted`` ones, and only while
    the namespace is Active."""
    if namespace is None:
        return []
    if ((namespace.get("status") or {}).get("phase") or "Active") != "Active":
        return []
    name = namespace["metadata"]["name"]
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": name},
        }
        for account in wanted
        if account not in existing
    ]


def has_status_cause(exc: KubeAPIError, cause_type: str) -> bool:
    """client-go's ``HasStatusCause``."""
    causes = (exc.status.get("details") or {}).get("causes") or []
    return any(isinstance(c, dict) and c.get("type") == cause_type for c in causes)


class ServiceAccountsController:
    """See the module docstring; :meth:`run` until cancelled."""

    def __init__(
        self,
        client: KubeClient,
        factory: SharedInformerFactory,
        clock: Clock,
        *,
        service_accounts: Sequence[str] = DEFAULT_SERVICE_ACCOUNTS,
    ) -> None:
        self.client = client
        self.service_accounts = tuple(service_accounts)
        self.queue = new_queue(clock, "serviceaccount")
        ns_informer = factory.informer_for(NAMESPACES)
        sa_informer = factory.informer_for(SERVICE_ACCOUNTS)
        self.namespaces = factory.lister(NAMESPACES)
        self.accounts = factory.lister(SERVICE_ACCOUNTS)
        sa_informer.add_event_handler(
            ResourceEventHandlerFuncs(delete_func=self._service_account_deleted)
        )
        ns_informer.add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self._namespace_changed,
                update_func=lambda old, new: self._namespace_changed(new),
            )
        )
        self.worker = Worker(
            "serviceaccount", self.queue, self.sync_namespace, (ns_informer, sa_informer)
        )

    def _service_account_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        namespace = (object_of(obj).get("metadata") or {}).get("namespace")
        if namespace:
            self.queue.add(namespace)

    def _namespace_changed(self, obj: Obj) -> None:
        self.queue.add(obj["metadata"]["name"])

    async def sync_namespace(self, key: str) -> None:
        namespace = self.namespaces.get(key)
        existing = {a["metadata"]["name"] for a in self.accounts.list(key)} if namespace else ()
        failures: list[KubeAPIError] = []
        for account in service_accounts_to_create(namespace, existing, self.service_accounts):
            try:
                await self.client.create(SERVICE_ACCOUNTS, account, namespace=key)
            except KubeAPIError as exc:
                if exc.code == 409 or has_status_cause(exc, NAMESPACE_TERMINATING_CAUSE):
                    continue
                failures.append(exc)
        if failures:
            raise failures[0]

    async def run(self, workers: int = 1) -> None:
        await self.worker.run(workers)
