"""The Events a kubelet records about its pods' containers, as upstream's kubelet 1.32 words
them, so that ``kubectl describe pod`` shows what happened on the node:

=======  =========  =========================================================================
type     reason     message
=======  =========  =========================================================================
Normal   Pulled     Container image "python:3" already present on machine
Normal   Created    Created container web
Normal   Started    Started container web
Warning  Failed     Error: {why the container could not be made or started}
Warning  BackOff    Back-off restarting failed container web in pod web-7d4b9_default(uid)
Normal   Killing    Stopping container web (the pod is being deleted)
Normal   Killing    Container web failed liveness probe, will be restarted
Warning  Unhealthy  Readiness probe failed: HTTP probe failed with statuscode: 503
=======  =========  =========================================================================

Each refers to the pod with ``fieldPath`` ``spec.containers{web}`` (``spec.initContainers{...}``
for an init container), as upstream's container references do. The runtime runs local
processes and pulls no image, so ``Pulled`` says what upstream says of an image it already has.

Recording never holds up a pod worker: as upstream's event broadcaster, :meth:`PodEvents.record`
only queues (dropping, with a log line, when 1,000 wait) and :meth:`PodEvents.run`, a task of the
kubelet, writes them; a refused or failed write is logged and dropped. An event that repeats one
already written (same object, container, type, reason and message: a crash loop's ``BackOff``)
is counted on that one instead, as upstream's ``EventCorrelator`` logs it (a patch of ``count``
and ``lastTimestamp``, which ``kubectl describe`` shows as ``(x5 over 2m)``), so a pod that
crashes for days leaves a handful of Events rather than one per restart.

Left out: the correlator's other halves (merging similar events whose messages differ, and its
rate limit).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import attrs
import trio

from raftkube.controllers.events import EVENTS, NORMAL, WARNING, make_event
from raftkube.kubeclient import KubeAPIError, KubeClient, KubeConnectionError

Obj = dict[str, Any]
log = logging.getLogger(__name__)

COMPONENT = "kubelet"
QUEUE = 1000
"""Upstream's ``maxQueuedEvents``: what waits beyond it is dropped."""
REMEMBERED = 4096
"""Upstream's ``maxLruCacheEntries``: how many distinct events are remembered for counting."""


def event_key(event: Obj) -> tuple[str, ...]:
    """What makes two events the same one, counted (upstream's ``getEventKey``)."""
    source, ref = event["source"], event["involvedObject"]
    return (
        source.get("component", ""),
        source.get("host", ""),
        *(ref.get(f, "") for f in ("kind", "namespace", "name", "fieldPath", "uid", "apiVersion")),
        event["type"],
        event["reason"],
        event["message"],
    )


@attrs.define
class Seen:
    """An event already written: its name, and how often it has happened."""

    name: str
    count: int


def container_field_path(pod: Obj, name: str) -> str:
    """``spec.containers{name}`` or ``spec.initContainers{name}``: which container of ``pod``
    an event is about, as upstream's ``GenerateContainerRef`` names it."""
    spec = pod.get("spec") or {}
    if any(c.get("name") == name for c in spec.get("initContainers") or ()):
        return f"spec.initContainers{{{name}}}"
    return f"spec.containers{{{name}}}"


@attrs.define(eq=False)
class PodEvents:
    """A kubelet's event recorder for the containers of its pods; one without a ``client``
    records nothing (:meth:`silent`)."""

    client: KubeClient | None
    node_name: str
    wall: Callable[[], float]
    _send: trio.MemorySendChannel[Obj] = attrs.field(init=False)
    _receive: trio.MemoryReceiveChannel[Obj] = attrs.field(init=False)
    _last_stamp: int = 0
    _seen: dict[tuple[str, ...], Seen] = attrs.field(factory=dict)
    """The events written, by :func:`event_key`, oldest first (at most :data:`REMEMBERED`)."""

    def __attrs_post_init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel(QUEUE)

    @classmethod
    def silent(cls) -> PodEvents:
        return cls(None, "", time.time)

    def record(self, pod: Obj, container: str, event_type: str, reason: str, message: str) -> None:
        if self.client is None:
            return
        now = self.wall()
        event = make_event(pod, event_type, reason, message, COMPONENT, self.node_name, now)
        event["involvedObject"]["fieldPath"] = container_field_path(pod, container)
        # Named {pod}.{nanoseconds} as upstream names them; a pod's events recorded within one
        # tick of a coarse clock (a simulated one) still get names of their own.
        stamp = self._last_stamp = max(int(now * 1e9), self._last_stamp + 1)
        event["metadata"]["name"] = f"{pod['metadata']['name']}.{stamp:x}"
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            log.warning("event %s dropped: %d events wait to be written", reason, QUEUE)

    async def run(self) -> None:
        """Write the queued events, one at a time, for as long as the kubelet runs."""
        if self.client is None:
            return
        async for event in self._receive:
            try:
                await self._write(self.client, event)
            except (KubeAPIError, KubeConnectionError) as exc:
                log.warning("event %s dropped: %s", event["reason"], exc)

    async def _write(self, client: KubeClient, event: Obj) -> None:
        key = event_key(event)
        namespace = event["metadata"]["namespace"]
        seen = self._seen.get(key)
        if seen is not None:
            try:
                await client.patch(
                    EVENTS,
                    seen.name,
                    {"count": seen.count + 1, "lastTimestamp": event["lastTimestamp"]},
                    namespace=namespace,
                )
                seen.count += 1
            except KubeAPIError as exc:
                if exc.code != 404:
                    raise
                seen = None  # deleted meanwhile: written anew below
        if seen is None:
            await client.create(EVENTS, event, namespace=namespace)
            seen = Seen(event["metadata"]["name"], 1)
        self._seen.pop(key, None)
        self._seen[key] = seen  # the most recent last
        while len(self._seen) > REMEMBERED:
            del self._seen[next(iter(self._seen))]

    # --- what a pod worker reports ---------------------------------------------------------

    def starting(self, pod: Obj, container: Obj) -> None:
        name = container["name"]
        image = container.get("image", "")
        self.record(
            pod, name, NORMAL, "Pulled", f'Container image "{image}" already present on machine'
        )

    def created(self, pod: Obj, name: str) -> None:
        self.record(pod, name, NORMAL, "Created", f"Created container {name}")

    def started(self, pod: Obj, name: str) -> None:
        self.record(pod, name, NORMAL, "Started", f"Started container {name}")

    def failed(self, pod: Obj, name: str, error: str) -> None:
        self.record(pod, name, WARNING, "Failed", f"Error: {error}")

    def backing_off(self, pod: Obj, name: str, pod_key: str) -> None:
        self.record(
            pod,
            name,
            WARNING,
            "BackOff",
            f"Back-off restarting failed container {name} in pod {pod_key}",
        )

    def stopping(self, pod: Obj, name: str) -> None:
        self.record(pod, name, NORMAL, "Killing", f"Stopping container {name}")

    def unhealthy(self, pod: Obj, name: str, probe: str, output: str) -> None:
        """A failed attempt of ``probe`` (``readinessProbe`` or ``livenessProbe``)."""
        kind = probe.removesuffix("Probe").capitalize()
        self.record(pod, name, WARNING, "Unhealthy", f"{kind} probe failed: {output}")

    def liveness_failed(self, pod: Obj, name: str) -> None:
        self.record(
            pod,
            name,
            NORMAL,
            "Killing",
            f"Container {name} failed liveness probe, will be restarted",
        )
