"""Collects the kubelets' judged requests as they are sent (rules:
:mod:`raftkube_fuzz.checks.kubelet_conformance`).

Each simulated node's kubelet client gets :meth:`KubeletMonitor.tracer`: when the kubelet sends
a pod's final DELETE or a pod worker's status write, the tracer records, at that moment, the
store's pod of that name (the monitor's :class:`~raftkube_fuzz.checks.views.StoreHistory`, fed
every applied revision) and, for a delete, the pod's containers the node's machine runs. The
conformance monitor judges them after the step, as it judges the loops' requests: nothing
is judged inside the kubelet's task, whose exception it would become.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from raftkube.kubeclient import RequestDone, RequestTracer, ignore_outcome
from raftkube.runtime.simulated import SimulatedRuntime
from raftkube_fuzz.checks import kubelet_conformance as rules
from raftkube_fuzz.checks.views import PodFact, StoreHistory
from raftkube_fuzz.violation import Violation


@attrs.frozen
class KubeletRequest:
    """One judged request, with what its rule reads, gathered as it was sent."""

    host: str
    node: str
    method: str
    path: str
    pod: PodFact | None
    """The store's pod of that name when it was sent."""
    uid: str
    """The pod the request names (the delete's precondition, the status's ``metadata.uid``)."""
    running: tuple[str, ...] = ()
    """For a delete: the names of that pod's containers running on the machine then."""
    phase: str = ""
    """For a status write: the phase it writes."""

    def judge(self) -> str | None:
        if self.method == "DELETE":
            return rules.final_delete(self.node, self.pod, self.uid, self.running)
        return rules.status_write(self.node, self.pod, self.uid, self.phase)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@attrs.define(eq=False)
class KubeletMonitor:
    """See the module docstring."""

    history: StoreHistory
    collected: list[KubeletRequest] = attrs.field(factory=list)
    """Requests not judged yet."""
    judged: int = 0

    def tracer(
        self, host: str, node: str, runtime: SimulatedRuntime, also: RequestTracer | None
    ) -> RequestTracer:
        """The tracer of kubelet ``node``'s client (on machine ``host``, running ``runtime``),
        calling ``also`` first."""

        def trace(method: str, path: str, query: Any, body: Any) -> RequestDone:
            done = also(method, path, query, body) if also is not None else ignore_outcome
            self._sent(host, node, runtime, method, path, body)
            return done

        return trace

    def _sent(
        self, host: str, node: str, runtime: SimulatedRuntime, method: str, path: str, body: Any
    ) -> None:
        parts = path.strip("/").split("/")
        if parts[:3] != ["api", "v1", "namespaces"] or len(parts) < 6 or parts[4] != "pods":
            return
        pod = self.history.pods.get(f"{parts[3]}/{parts[5]}")
        if method == "DELETE" and len(parts) == 6:
            uid = str(_mapping(_mapping(body).get("preconditions")).get("uid") or "")
            running = tuple(
                status.name for config, status in runtime.running_containers() if config.uid == uid
            )
            self.collected.append(KubeletRequest(host, node, method, path, pod, uid, running))
        elif method in ("PATCH", "PUT") and parts[6:] == ["status"]:
            uid = str(_mapping(_mapping(body).get("metadata")).get("uid") or "")
            if not uid:  # the admission rejection's: see the rules' docstring
                return
            phase = str(_mapping(_mapping(body).get("status")).get("phase") or "")
            request = KubeletRequest(host, node, method, path, pod, uid, phase=phase)
            self.collected.append(request)

    def judge(self) -> list[Violation]:
        """Judge every request collected since the last call; the violations found."""
        collected, self.collected = self.collected, []
        found = []
        for request in collected:
            self.judged += 1
            why = request.judge()
            if why is not None:
                found.append(Violation(
                    "RequestConformance",
                    f"the kubelet of {request.node} (on {request.host}) sent {request.method} "
                    f"{request.path}, which the spec's kubelet does not send: {why}",
                    {"host": request.host, "loop": "kubelet", "method": request.method,
                     "path": request.path, "uid": request.uid,
                     "running": list(request.running)},
                ))  # fmt: skip
        return found
