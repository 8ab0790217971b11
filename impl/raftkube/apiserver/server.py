"""The API server's front door: authenticate, authorize, then route.

Every request takes the same path, as upstream's handler chain: authentication (401 if nobody
can be identified), impersonation (``kubectl --as``: the requester must be allowed to act as
whom its headers name, :mod:`.auth.impersonation`), request info, authorization (403), then
either a non-resource endpoint (discovery, OpenAPI, version, health) or a resource handler. An
:class:`APIError` raised anywhere becomes a ``Status`` response; nothing else is caught here
(the HTTP layer answers 500 for a bug and logs it).
"""

from __future__ import annotations

import logging

import attrs

from raftkube.apiserver import errors
from raftkube.apiserver.auth.authorize import forbidden
from raftkube.apiserver.auth.impersonation import impersonate
from raftkube.apiserver.auth.user import UserInfo
from raftkube.apiserver.encoding import error_response
from raftkube.apiserver.handlers.context import Call, Services
from raftkube.apiserver.handlers.dispatch import dispatch
from raftkube.apiserver.nonresource import NonResource
from raftkube.apiserver.request import Request, Response, StreamingResponse
from raftkube.apiserver.request_info import parse_request_info
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

    async def handle_as(self, user: UserInfo, req: Request) -> Response | StreamingResponse:
        """Serve ``req`` as ``user`` without authenticating it: the server's own requests
        (bootstrap objects) take the same path as everyone's, admission included."""
        try:
            return await self._authorized(user, req)
        except errors.APIError as exc:
            return error_response(exc)

    async def _handle(self, req: Request) -> Response | StreamingResponse:
        user = await self.authenticator.authenticate(req)  # type: ignore[attr-defined]
        user = impersonate(user, req.headers, req.path, self.services.authorizer)
        return await self._authorized(user, req)

    async def _authorized(self, user: UserInfo, req: Request) -> Response | StreamingResponse:
        info = parse_request_info(req.method, req.path, req.query)
        decision = self.services.authorizer.authorize(
            user, info, field_selector=req.param("fieldSelector")
        )
        if not decision.allowed:
            if info.is_resource_request:
                raise forbidden(user, info, decision.reason)
            raise errors.APIError(
                403,
                "Forbidden",
                f'forbidden: User "{user.name}" cannot {info.verb} path "{info.path}"',
            )
        if not info.is_resource_request:
            return await self.nonresource.handle(req, info)
        resource = lookup(info.api_group, info.api_version, info.resource)
        if resource is None:
            raise errors.APIError(
                404, "NotFound", "the server could not find the requested resource"
            )
        call = Call(request=req, info=info, resource=resource, user=user, services=self.services)
        return await dispatch(call)
