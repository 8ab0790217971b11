"""Readiness and liveness probes: upstream's ``prober`` package.

A probe's settings default as upstream's (``initialDelaySeconds`` 0, ``periodSeconds`` 10,
``timeoutSeconds`` 1, ``successThreshold`` 1, ``failureThreshold`` 3); a result flips only after
that many consecutive outcomes. Readiness starts as failing and liveness as passing, as
upstream's ``results.Manager`` initial values. :class:`NetworkProber` runs exec probes through
the runtime and HTTP GET (through h11) and TCP probes against the pod's IP (``host`` overrides
it); HTTP succeeds on a status in [200, 400), as upstream. A failed attempt says why in
upstream's words (:class:`ProbeResult`), for the kubelet's ``Unhealthy`` event. Simplified: no
startup probes, no gRPC probes, and an HTTP probe sends no custom headers and follows no
redirects.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
import h11
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


@attrs.frozen
class ProbeResult:
    """One attempt's outcome, and what it said: the text upstream's ``Unhealthy`` event quotes
    after "Readiness probe failed: " (an exec probe's output, an HTTP status, a dial error)."""

    ok: bool
    output: str = ""


class Prober(Protocol):
    async def probe(
        self, probe: Obj, container: Obj, pod_ip: str, container_id: str
    ) -> ProbeResult:
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


def _refused(exc: BaseException) -> bool:
    """Whether a connection attempt failed because nothing listens (``trio.open_tcp_stream``
    wraps the attempts' errors in its own)."""
    seen: list[BaseException] = [exc]
    while seen:
        error = seen.pop()
        if isinstance(error, ConnectionRefusedError):
            return True
        if isinstance(error, BaseExceptionGroup):
            seen.extend(error.exceptions)
        if error.__cause__ is not None:
            seen.append(error.__cause__)
    return False


def _dial_error(host: str, port: int, exc: OSError) -> str:
    """A failed dial as Go's net package words it, which upstream's probe messages quote."""
    if _refused(exc):
        return f"dial tcp {host}:{port}: connect: connection refused"
    return f"dial tcp {host}:{port}: {exc}"


@attrs.frozen
class NetworkProber:
    runtime: RuntimeService
    clock: Clock

    async def probe(
        self, probe: Obj, container: Obj, pod_ip: str, container_id: str
    ) -> ProbeResult:
        timeout = ProbeSettings.of(probe).timeout
        if "exec" in probe:
            command = tuple(probe["exec"].get("command") or ())
            result = await self.runtime.exec_sync(container_id, command, timeout)
            return ProbeResult(result.exit_code == 0, result.output.decode(errors="replace"))
        try:
            if "httpGet" in probe:
                return await self._http(probe["httpGet"], container, pod_ip, timeout)
            if "tcpSocket" in probe:
                return await self._tcp(probe["tcpSocket"], container, pod_ip, timeout)
        except ValueError as exc:
            return ProbeResult(False, str(exc))
        return ProbeResult(False, "probe has no exec, httpGet or tcpSocket action")

    async def _tcp(self, action: Obj, container: Obj, pod_ip: str, timeout: float) -> ProbeResult:
        host = action.get("host") or pod_ip
        port = resolve_port(action.get("port"), container)
        with move_on_after(self.clock, timeout):
            try:
                stream = await trio.open_tcp_stream(host, port)
            except OSError as exc:
                return ProbeResult(False, _dial_error(host, port, exc))
            await stream.aclose()
            return ProbeResult(True)
        return ProbeResult(False, f"dial tcp {host}:{port}: i/o timeout")

    async def _http(self, action: Obj, container: Obj, pod_ip: str, timeout: float) -> ProbeResult:
        """A GET through h11; success is a status in [200, 400), as upstream's."""
        host = action.get("host") or pod_ip
        port = resolve_port(action.get("port"), container)
        path = action.get("path") or "/"
        url = f"http://{host}:{port}{path}"
        with move_on_after(self.clock, timeout):
            try:
                status = await self._get(host, port, path)
            except OSError as exc:
                return ProbeResult(False, f'Get "{url}": {_dial_error(host, port, exc)}')
            except (h11.ProtocolError, trio.BrokenResourceError) as exc:
                return ProbeResult(False, f'Get "{url}": {exc}')
            if 200 <= status < 400:
                return ProbeResult(True)
            return ProbeResult(False, f"HTTP probe failed with statuscode: {status}")
        return ProbeResult(
            False,
            f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting '
            "headers)",
        )

    async def _get(self, host: str, port: int, path: str) -> int:
        """The status of ``GET path`` on ``host:port``."""
        stream = await trio.open_tcp_stream(host, port)
        async with stream:
            connection = h11.Connection(h11.CLIENT)
            headers = [
                ("Host", f"{host}:{port}"),
                ("User-Agent", USER_AGENT),
                ("Accept", "*/*"),
                ("Connection", "close"),
            ]
            request = connection.send(h11.Request(method="GET", target=path, headers=headers))
            await stream.send_all(request + (connection.send(h11.EndOfMessage()) or b""))
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(await stream.receive_some(4096))
                elif isinstance(event, h11.Response):
                    return int(event.status_code)
                elif isinstance(event, h11.ConnectionClosed):
                    raise trio.BrokenResourceError("the server closed the connection unanswered")


@attrs.frozen
class RuntimeProber:
    """Every probe, whatever its kind, answered by the runtime's ``exec_sync``: for the
    simulated runtime, whose containers listen on nothing and whose script says when they are
    ready and alive."""

    runtime: RuntimeService

    async def probe(
        self, probe: Obj, container: Obj, pod_ip: str, container_id: str
    ) -> ProbeResult:
        timeout = ProbeSettings.of(probe).timeout
        command = tuple((probe.get("exec") or {}).get("command") or ("probe",))
        result = await self.runtime.exec_sync(container_id, command, timeout)
        return ProbeResult(result.exit_code == 0, result.output.decode(errors="replace"))
