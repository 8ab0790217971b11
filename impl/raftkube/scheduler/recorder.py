"""What the scheduler writes besides bindings: Events and the ``PodScheduled`` condition.

**Events** are core/v1 Events as client-go's legacy recorder makes them (the API server here
serves no ``events.k8s.io``, so upstream's adapter would fall back to exactly these): named
``<pod>.<unix nanoseconds in hex>``, in the pod's namespace, ``source.component`` and
``reportingComponent`` ``default-scheduler``, ``count`` 1. The recorder never blocks the
scheduler: events wait in a queue of 1,000 and are dropped when it is full, as client-go's
broadcaster drops them (``DropIfChannelFull``), and one task writes them in order.
Simplifications: no aggregation of similar events into a count and no retry of a failed
write (client-go's correlator and its 12 retries).

**The condition**: a pod that does not fit gets ``PodScheduled=False`` with reason
``Unschedulable`` (or ``SchedulerError`` when the attempt failed for another reason, such as
its binding being refused) and the full message; the transition time moves only when the
status changes, and nothing is written when the pod already carries the same condition
(upstream's ``UpdatePodCondition``).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import Any

import attrs
import trio

from raftkube.apiserver.resources import lookup
from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConnectionError

logger = logging.getLogger("raftkube.scheduler.recorder")

Obj = dict[str, Any]

DEFAULT_SCHEDULER_NAME = "default-scheduler"
NOTE_LENGTH_LIMIT = 1024
MAX_QUEUED_EVENTS = 1000
REASON_UNSCHEDULABLE = "Unschedulable"
REASON_SCHEDULER_ERROR = "SchedulerError"


def _events() -> Any:
    info = lookup("", "v1", "events")
    assert info is not None
    return info


EVENTS = _events()


def rfc3339(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(int(seconds), datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def truncate_message(message: str) -> str:
    """Upstream's ``truncateMessage``: an event note is at most 1,024 characters."""
    if len(message) <= NOTE_LENGTH_LIMIT:
        return message
    return message[: NOTE_LENGTH_LIMIT - 3] + "..."


def make_event(
    pod: Obj,
    event_type: str,
    reason: str,
    message: str,
    wall_now: float,
    *,
    component: str = DEFAULT_SCHEDULER_NAME,
    host: str = "",
) -> Obj:
    """The core/v1 Event client-go's recorder writes about ``pod``."""
    meta = pod.get("metadata") or {}
    name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "")
    stamp = rfc3339(wall_now)
    involved = {
        "kind": "Pod",
        "namespace": namespace,
        "name": name,
        "uid": meta.get("uid") or "",
        "apiVersion": "v1",
        "resourceVersion": meta.get("resourceVersion") or "",
    }
    source: Obj = {"component": component}
    if host:
        source["host"] = host
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{int(wall_now * 1e9):x}", "namespace": namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": source,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "type": event_type,
        "reportingComponent": component,
        "reportingInstance": host,
    }


def scheduled_message(pod: Obj, node_name: str) -> str:
    meta = pod.get("metadata") or {}
    return f"Successfully assigned {meta.get('namespace')}/{meta.get('name')} to {node_name}"


def pod_scheduled_false(pod: Obj, reason: str, message: str, wall_now: float) -> Obj | None:
    """The ``PodScheduled`` condition to write on ``pod``, or None if it already has it."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") != "PodScheduled":
            continue
        same_status = condition.get("status") == "False"
        if same_status and (condition.get("reason"), condition.get("message")) == (
            reason,
            message,
        ):
            return None
        transition = condition.get("lastTransitionTime") if same_status else None
        break
    else:
        transition = None
    return {
        "type": "PodScheduled",
        "status": "False",
        "lastProbeTime": None,
        "lastTransitionTime": transition or rfc3339(wall_now),
        "reason": reason,
        "message": message,
    }


@attrs.define(eq=False)
class EventRecorder:
    """See the module docstring: :meth:`event` queues, :meth:`run` writes."""

    client: KubeClient
    wall: Callable[[], float]
    component: str = DEFAULT_SCHEDULER_NAME
    host: str = ""
    sent: int = attrs.field(init=False, default=0)
    dropped: int = attrs.field(init=False, default=0)
    failed: int = attrs.field(init=False, default=0)
    _send: trio.MemorySendChannel[Obj] = attrs.field(init=False)
    _receive: trio.MemoryReceiveChannel[Obj] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel(MAX_QUEUED_EVENTS)

    def event(self, pod: Obj, event_type: str, reason: str, message: str) -> None:
        event = make_event(
            pod, event_type, reason, message, self.wall(), component=self.component, host=self.host
        )
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self.dropped += 1

    async def run(self) -> None:
        """Write queued events one at a time, until cancelled."""
        async for event in self._receive:
            try:
                await self.client.create(EVENTS, event)
            except (KubeAPIError, KubeConnectionError) as exc:
                self.failed += 1
                logger.warning("unable to write event %s: %s", event["metadata"]["name"], exc)
            else:
                self.sent += 1
