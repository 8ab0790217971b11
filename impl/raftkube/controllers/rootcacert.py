"""The root CA certificate publisher: a ``kube-root-ca.crt`` ConfigMap in every namespace.

Upstream's ``pkg/controller/certificates/rootcacertpublisher``: the ConfigMap holds the
cluster's CA bundle under ``ca.crt``, so that pods can verify the API server, with the
``kubernetes.io/description`` annotation saying so. A namespace added or changed, the
ConfigMap deleted, or the ConfigMap changed puts the namespace on the queue; the sync creates
the ConfigMap if the cache lacks it and puts back the data and annotation if someone changed
them (other annotations and labels are kept). A create refused because the namespace is gone
or terminating is not retried.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Literal

import attrs

from raftkube.clock import Clock
from raftkube.controllers.controller import Worker, new_queue
from raftkube.controllers.informer import ResourceEventHandlerFuncs, SharedInformerFactory
from raftkube.controllers.resources import CONFIG_MAPS, NAMESPACES
from raftkube.controllers.serviceaccount import NAMESPACE_TERMINATING_CAUSE, has_status_cause
from raftkube.controllers.store import DeletedFinalStateUnknown, object_of
from raftkube.kubeclient import KubeAPIError, KubeClient

logger = logging.getLogger("raftkube.controllers.rootcacert")

Obj = dict[str, Any]

ROOT_CA_CERT_CONFIG_MAP_NAME = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. "
    "No other usage is guaranteed across distributions of Kubernetes clusters."
)


@attrs.frozen
class ConfigMapAction:
    """A write the publisher decided on: create or update ``obj``."""

    verb: Literal["create", "update"]
    obj: Obj


def desired_root_ca_config_map(
    namespace: str, cached: Obj | None, root_ca: str
) -> ConfigMapAction | None:
    """What to write in ``namespace`` given its cached ``kube-root-ca.crt`` (None if the cache
    has none): nothing if data and annotation are right, else a create or an update (of a copy;
    the cached object is never changed)."""
    data = {"ca.crt": root_ca}
    if cached is None:
        return ConfigMapAction(
            "create",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": ROOT_CA_CERT_CONFIG_MAP_NAME,
                    "namespace": namespace,
                    "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
                },
                "data": data,
            },
        )
    annotations = (cached.get("metadata") or {}).get("annotations") or {}
    if cached.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION):
        return None
    updated = copy.deepcopy(cached)
    updated["data"] = data
    updated.pop("binaryData", None)
    updated.setdefault("metadata", {}).setdefault("annotations", {})
    updated["metadata"]["annotations"][DESCRIPTION_ANNOTATION] = DESCRIPTION
    return ConfigMapAction("update", updated)


class RootCACertPublisher:
    """See the module docstring; :meth:`run` until cancelled."""

    def __init__(
        self, client: KubeClient, factory: SharedInformerFactory, clock: Clock, root_ca: bytes
    ) -> None:
        self.client = client
        self.root_ca = root_ca.decode("utf-8")
        self.queue = new_queue(clock, "root_ca_cert_publisher")
        ns_informer = factory.informer_for(NAMESPACES)
        cm_informer = factory.informer_for(CONFIG_MAPS)
        self.config_maps = factory.lister(CONFIG_MAPS)
        cm_informer.add_event_handler(
            ResourceEventHandlerFuncs(
                delete_func=self._config_map_deleted, update_func=self._config_map_updated
            )
        )
        ns_informer.add_event_handler(
            ResourceEventHandlerFuncs(
                add_func=self._namespace_changed,
                update_func=lambda old, new: self._namespace_changed(new),
            )
        )
        self.worker = Worker(
            "root-ca-cert-publisher", self.queue, self.sync_namespace, (ns_informer, cm_informer)
        )

    def _config_map_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        meta = object_of(obj).get("metadata") or {}
        if meta.get("name") == ROOT_CA_CERT_CONFIG_MAP_NAME and meta.get("namespace"):
            self.queue.add(meta["namespace"])

    def _config_map_updated(self, old: Obj, new: Obj) -> None:
        meta = new.get("metadata") or {}
        if meta.get("name") == ROOT_CA_CERT_CONFIG_MAP_NAME and meta.get("namespace"):
            self.queue.add(meta["namespace"])

    def _namespace_changed(self, obj: Obj) -> None:
        self.queue.add(obj["metadata"]["name"])

    async def sync_namespace(self, namespace: str) -> None:
        cached = self.config_maps.get(ROOT_CA_CERT_CONFIG_MAP_NAME, namespace)
        action = desired_root_ca_config_map(namespace, cached, self.root_ca)
        if action is None:
            return
        try:
            if action.verb == "create":
                await self.client.create(CONFIG_MAPS, action.obj, namespace=namespace)
            else:
                await self.client.update(CONFIG_MAPS, action.obj, namespace=namespace)
        except KubeAPIError as exc:
            gone = exc.code == 404 or has_status_cause(exc, NAMESPACE_TERMINATING_CAUSE)
            if action.verb == "create" and gone:
                return
            raise

    async def run(self, workers: int = 1) -> None:
        await self.worker.run(workers)
