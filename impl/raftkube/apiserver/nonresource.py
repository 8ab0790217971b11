"""Non-resource endpoints: discovery, OpenAPI, ``/version`` and the health checks.

The health endpoints answer as upstream's ``healthz`` package (:mod:`.health`). ``/readyz``
runs the checks that matter for serving (the store answers, every watch cache has synced, the
startup objects exist); ``/livez`` and ``/healthz`` only say the process runs, so a supervisor
does not kill a server that merely lost its store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import attrs

from raftkube.apiserver import errors
from raftkube.apiserver.discovery import serve_discovery, serve_version
from raftkube.apiserver.health import CheckResult, serve_health
from raftkube.apiserver.openapi import OpenAPIDocuments
from raftkube.apiserver.request import Request, Response
from raftkube.apiserver.request_info import RequestInfo

Check = tuple[str, Callable[[], Awaitable[bool]]]

_HEALTH = ("/healthz", "/livez", "/readyz")


@attrs.define(eq=False)
class NonResource:
    openapi: OpenAPIDocuments
    server_address: str
    ready_checks: Sequence[Check] = ()

    async def handle(self, req: Request, info: RequestInfo) -> Response:
        path = req.path.rstrip("/") or "/"
        if req.method not in {"GET", "HEAD"}:
            raise errors.APIError(405, "MethodNotAllowed", f"{req.method} is not allowed on {path}")
        if path == "/version":
            return serve_version()
        if path.startswith(_HEALTH):
            answer = serve_health(req, await self._results())
        elif path.startswith("/openapi/"):
            answer = self.openapi.serve(req)
        elif path in {"/api", "/apis"} or path.startswith(("/api/", "/apis/")):
            answer = serve_discovery(req, self.server_address)
        else:
            answer = None
        if answer is None:
            raise errors.APIError(
                404, "NotFound", "the server could not find the requested resource"
            )
        return answer

    async def _results(self) -> dict[str, list[CheckResult]]:
        """Every check run once; ``livez`` and ``healthz`` have only ``ping`` (a server that
        lost its store is alive, and restarting it would not help), ``readyz`` all."""
        results = [CheckResult("ping")]
        for name, check in self.ready_checks:
            try:
                good = await check()
            except Exception as exc:  # a check that cannot run has failed
                good, why = False, type(exc).__name__
            else:
                why = "not ready"
            results.append(CheckResult(name, None if good else why))
        return {"livez": results[:1], "healthz": results[:1], "readyz": results}
