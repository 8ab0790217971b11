"""Recording Events as client-go's ``record.EventRecorder`` does (core/v1 Events), so that
``kubectl describe`` and ``kubectl get events`` show what a component did.

An Event is named ``{object name}.{nanoseconds, hex}``, lives in the object's namespace
(``default`` for a cluster-scoped object), refers to the object by kind, namespace, name, uid,
apiVersion and resourceVersion, and carries the component as its source and reporting
controller. Recording is best effort, as upstream's broadcaster's is: a refused or failed write
is logged and dropped, never raised into the control loop that reported it.

Simplification: no aggregation or spam filtering of repeated events (upstream's
``EventCorrelator``); each call writes one Event with count 1.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable
from typing import Any

import attrs

from raftkube.controllers.resources import resource
from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConnectionError

logger = logging.getLogger("raftkube.controllers.events")

Obj = dict[str, Any]

EVENTS = resource("", "v1", "events")
NORMAL = "Normal"
WARNING = "Warning"


def object_reference(obj: Obj) -> Obj:
    """client-go's ``reference.GetReference`` for a whole object."""
    meta = obj.get("metadata") or {}
    ref: Obj = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", "")}
    for field in ("namespace", "name", "uid", "resourceVersion"):
        if meta.get(field):
            ref[field] = meta[field]
    return ref


def make_event(
    obj: Obj, event_type: str, reason: str, message: str, component: str, host: str, now: float
) -> Obj:
    """The Event ``record.EventRecorder.Eventf`` writes for ``obj`` at wall time ``now``."""
    ref = object_reference(obj)
    stamp = datetime.datetime.fromtimestamp(int(now), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    source: Obj = {"component": component}
    if host:
        source["host"] = host
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{ref.get('name', '')}.{int(now * 1e9):x}",
            "namespace": ref.get("namespace") or "default",
        },
        "involvedObject": ref,
        "reason": reason,
        "message": message,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "type": event_type,
        "source": source,
        "reportingComponent": component,
        "reportingInstance": host,
    }


@attrs.define
class EventRecorder:
    """Writes Events for ``component`` (on ``host``) through ``client``."""

    client: KubeClient
    component: str
    host: str = ""
    wall: Callable[[], float] = time.time

    async def event(self, obj: Obj, event_type: str, reason: str, message: str) -> None:
        event = make_event(obj, event_type, reason, message, self.component, self.host, self.wall())
        try:
            await self.client.create(EVENTS, event, namespace=event["metadata"]["namespace"])
        except (KubeAPIError, KubeConnectionError) as exc:
            logger.warning("event %s/%s dropped: %s", reason, message, exc)
