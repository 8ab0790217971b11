"""Readiness and liveness probes: upstream's ``prober`` package.

A probe's settings default as upstream's (``initialDelaySeconds`` 0, ``periodSeconds`` 10,
``timeoutSeconds`` 1, ``successThreshold`` 1, ``failureThreshold`` 3); a result flips only after
that many consecutive outcomes. Readiness starts as failing and liveness as passing, as
upstream's ``results.Manager`` initial values. :class:`NetworkProber` runs exec probes through
the runtime and HTTP GET and TCP probes against the pod's IP (``host`` overrides it); HTTP
succeeds on a status in [200, 400), as upstream. Simplified: no startup probes, no gRPC probes,
and an HTTP probe sends no custom headers and follows no redirects.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
import trio

from raftkube.clock import Clock, move_on_after
from raftkube.runtime.interface import RuntimeService

Obj = dict[str, Any]
USER_AGENT = "kube-probe/1.32"


@attrs.frozen
class ProbeSettings:
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def of(cls, probe: Obj) -> ProbeSettings:
        return cls(
            float(probe.get("initialDelaySeconds") or 0),
            float(probe.get("periodSeconds") or 10),
            float(probe.get("timeoutSeconds") or 1),
            int(probe.get("successThreshold") or 1),
            int(probe.get("failureThreshold") or 3),
        )


@attrs.define
class ProbeState:
    """The running result of one probe of one container instance."""

    result: bool
    next_at: float
    successes: int = 0
    failures: int = 0

    def observe(self, ok: bool, settings: ProbeSettings, now: float) -> None:
        self.next_at = now + settings.period
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= settings.success_threshold:
                self.result = True
        else:
            self.successes, self.failures = 0, self.failures + 1
            if self.failures >= settings.failure_threshold:
                self.result = False


class Prober(Protocol):
    async def probe(self, probe: Obj, container: Obj, pod_ip: str, container_id: str) -> bool:
        """One attempt of ``probe`` (a Probe object) on a running container."""
        ...


def resolve_port(port: Any, container: Obj) -> int:
    """A number, or the name of one of the container's ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ValueError(f"port {port!r} is not a port of container {container.get('name')}")


@attrs.frozen
class NetworkProber:
    runtime: RuntimeService
    clock: Clock

    async def probe(self, probe: Obj, container: Obj, pod_ip: str, container_id: str) -> bool:
        timeout = ProbeSettings.of(probe).timeout
        if "exec" in probe:
            command = tuple(probe["exec"].get("command") or ())
            result = await self.runtime.exec_sync(container_id, command, timeout)
            return result.exit_code == 0
        with move_on_after(self.clock, timeout):
            try:
                if "httpGet" in probe:
                    return await self._http(probe["httpGet"], container, pod_ip)
                if "tcpSocket" in probe:
                    action = probe["tcpSocket"]
                    port = resolve_port(action.get("port"), container)
                    stream = await trio.open_tcp_stream(action.get("host") or pod_ip, port)
                    await stream.aclose()
                    return True
            except (OSError, ValueError, trio.BrokenResourceError):
                return False
        return False

    async def _http(self, action: Obj, container: Obj, pod_ip: str) -> bool:
        host = action.get("host") or pod_ip
        port = resolve_port(action.get("port"), container)
        path = action.get("path") or "/"
        stream = await trio.open_tcp_stream(host, port)
        async with stream:
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: {USER_AGENT}\r\n"
                "Accept: */*\r\nConnection: close\r\n\r\n"
            )
            await stream.send_all(request.encode())
            head = b""
            while b"\r\n" not in head and len(head) < 4096:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                head += chunk
        parts = head.split(b" ", 2)
        return len(parts) >= 2 and parts[1].isdigit() and 200 <= int(parts[1]) < 400


@attrs.frozen
class RuntimeProber:
    """Every probe, whatever its kind, answered by the runtime's ``exec_sync``: for the
    simulated runtime, whose containers listen on nothing and whose script says when they are
    ready and alive."""

    runtime: RuntimeService

    async def probe(self, probe: Obj, container: Obj, pod_ip: str, container_id: str) -> bool:
        timeout = ProbeSettings.of(probe).timeout
        command = tuple((probe.get("exec") or {}).get("command") or ("probe",))
        return (await self.runtime.exec_sync(container_id, command, timeout)).exit_code == 0
