"""The kubelet's HTTPS endpoint for container logs, which the API server's ``pods/log``
proxies to: ``GET https://{node address}:{kubeletEndpoint.Port}/containerLogs/{namespace}/
{pod}/{container}`` with upstream's query parameters ``follow``, ``previous``, ``tailLines`` and
``limitBytes``.

The log is the runtime's file for the container (its latest instance, or the one before with
``previous=true``). With ``follow=true`` the answer is streamed (chunked) as the file grows and
ends once the container has exited and everything it wrote was sent, as ``kubectl logs -f``
expects. Simplified from upstream: the client must present a certificate signed by the
cluster CA (the API server's kubelet-client certificate or any other), and is not further
authorised with a SubjectAccessReview; ``timestamps`` and ``sinceSeconds`` are not supported
(the process runtime's logs carry no per-line timestamps).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import attrs

from raftkube.apiserver.request import Request, Response, StreamingResponse
from raftkube.clock import Clock, sleep_for
from raftkube.runtime.interface import ContainerState, ContainerStatus, RuntimeService

TEXT = (("Content-Type", "text/plain; charset=utf-8"),)
FOLLOW_POLL = 0.2
CHUNK = 65536


def _plain(status: int, message: str) -> Response:
    return Response(status, TEXT, message.encode())


def tail(data: bytes, lines: int) -> bytes:
    """The last ``lines`` lines of ``data`` (a last line without newline counts)."""
    if lines <= 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


@attrs.frozen
class LogServer:
    runtime: RuntimeService
    clock: Clock

    async def handle(self, request: Request) -> Response | StreamingResponse:
        if request.peer_certificate is None:
            return _plain(401, "Unauthorized")
        parts = [unquote(p) for p in request.path.strip("/").split("/")]
        if request.method != "GET" or len(parts) != 4 or parts[0] != "containerLogs":
            return _plain(404, "404 page not found")
        _, namespace, pod, name = parts
        previous = request.param("previous") == "true"
        status = await self._container(namespace, pod, name, previous)
        if status is None:
            what = "previous terminated container" if previous else "container"
            return _plain(400, f'{what} "{name}" in pod "{pod}" not found')
        path = Path(status.log_path)
        try:
            data = path.read_bytes()
        except OSError:
            data = b""
        tail_lines = request.param("tailLines")
        if tail_lines.isdigit():
            data = tail(data, int(tail_lines))
        limit = request.param("limitBytes")
        if limit.isdigit():
            data = data[: int(limit)]
        if request.param("follow") != "true" or limit.isdigit():
            return Response(200, TEXT, data)
        offset = path.stat().st_size if path.exists() else 0
        return StreamingResponse(200, TEXT, self._follow(status, path, data, offset))

    async def _container(
        self, namespace: str, pod: str, name: str, previous: bool
    ) -> ContainerStatus | None:
        sandboxes = [
            s
            for s in await self.runtime.list_pod_sandboxes()
            if (s.config.namespace, s.config.name) == (namespace, pod)
        ]
        if not sandboxes:
            return None
        sandbox = max(sandboxes, key=lambda s: s.created_at)
        instances = sorted(
            (c for c in await self.runtime.list_containers(sandbox.id) if c.name == name),
            key=lambda c: c.attempt,
        )
        wanted = -2 if previous else -1
        return instances[wanted] if len(instances) >= -wanted and instances else None

    async def _follow(
        self, status: ContainerStatus, path: Path, first: bytes, offset: int
    ) -> AsyncIterator[bytes]:
        if first:
            yield first
        while True:
            with path.open("rb") as log:
                log.seek(offset)
                chunk = log.read(CHUNK)
            if chunk:
                offset += len(chunk)
                yield chunk
                continue
            current = await self.runtime.container_status(status.id)
            if current.state is ContainerState.EXITED:
                with path.open("rb") as log:  # what it wrote between our last read and exit
                    log.seek(offset)
                    rest = log.read()
                if rest:
                    yield rest
                return
            await sleep_for(self.clock, FOLLOW_POLL)
