"""The API server's front door: authenticate, authorize, then route.

Every request takes the same path, as upstream's handler chain: authentication (401 if nobody
can be identified), request info, authorization (403), then either a non-resource endpoint
(discovery, OpenAPI, version, health) or a resource handler. An :class:`APIError` raised
anywhere becomes a ``Status`` response; nothing else is caught here (the HTTP layer answers
500 for a bug and logs it).
"""

from __future__ import annotations

import logging

import attrs

from raftkube.apiserver import errors
from raftkube.apiserver.encoding import error_response
from raftkube.apiserver.handlers.context import Call, Services
from raftkube.apiserver.handlers.dispatch import dispatch
from raftkube.apiserver.nonresource import NonResource
from raftkube.apiserver.request import Request, Response, StreamingResponse
from raftkube.apiserver.request_info import RequestInfo, parse_request_info
from raftkube.apiserver.resources import lookup

logger = logging.getLogger("raftkube.apiserver")


@attrs.define(eq=False)
class APIServer:
    """The request handler of one API server (see :mod:`raftkube.apiserver.assemble` for how
    one is built and run)."""

    services: Services
    authenticator: object
    nonresource: NonResource

    async def handle(self, req: Request) -> Response | StreamingResponse:
        try:
            return await self._handle(req)
        except errors.APIError as exc:
            return error_response(exc)

    async def _handle(self, req: Request) -> Response | StreamingResponse:
        user = await self.authenticator.authenticate(req)  # type: ignore[attr-defined]
        info = parse_request_info(req.method, req.path, req.query)
        decision = self.services.authorizer.authorize(user, info)
        if not decision.allowed:
            raise _forbidden(user.name, info)
        if not info.is_resource_request:
            return await self.nonresource.handle(req, info)
        resource = lookup(info.api_group, info.api_version, info.resource)
        if resource is None:
            raise errors.APIError(
                404, "NotFound", "the server could not find the requested resource"
            )
        call = Call(request=req, info=info, resource=resource, user=user, services=self.services)
        return await dispatch(call)


def _forbidden(user: str, info: RequestInfo) -> errors.APIError:
    if not info.is_resource_request:
        return errors.APIError(
            403,
            "Forbidden",
            f'forbidden: User "{user}" cannot {info.verb} path "{info.path}"',
        )
    return errors.forbidden(
        user,
        info.verb,
        info.resource,
        info.api_group,
        info.namespace,
        info.name,
        info.subresource,
    )
