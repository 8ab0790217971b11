"""What an admission plugin sees and may ask: upstream's ``admission.Attributes`` and the
lookups the plugins need, behind an interface the API server implements.

A plugin is an object with a ``name`` and an async ``admit`` (it may change the object) and/or
``validate`` (it may only refuse) over :class:`Attributes` and an :class:`AdmissionContext`. It
raises an :class:`~raftkube.apiserver.errors.APIError` to refuse. Plugins keep no state of the
cluster's: what they need to know (does the namespace exist, the service account, which IPs are
taken) they ask the context, which reads the store, so two API servers admit alike.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

import attrs

from raftkube.apiserver import errors
from raftkube.apiserver.auth.user import UserInfo
from raftkube.apiserver.request_info import RequestInfo
from raftkube.apiserver.resources import ResourceInfo

CREATE = "CREATE"
UPDATE = "UPDATE"
DELETE = "DELETE"
CONNECT = "CONNECT"


class RequestLike(Protocol):
    """The part of a handler's call that admission reads."""

    @property
    def info(self) -> RequestInfo: ...

    @property
    def resource(self) -> ResourceInfo: ...

    @property
    def user(self) -> UserInfo: ...

    @property
    def dry_run(self) -> bool: ...


@attrs.frozen
class Attributes:
    """One request as admission sees it (upstream's ``admission.Attributes``).

    ``obj`` is the object being written (a plugin's ``admit`` changes it in place; None for a
    delete), ``old`` the stored version (None for a create). ``resource`` is the main resource
    even for a subresource request (``pods`` for ``pods/binding``), as upstream's
    ``GetResource`` is.
    """

    operation: str
    resource: ResourceInfo
    request: RequestInfo
    user: UserInfo
    obj: dict[str, Any] | None = None
    old: dict[str, Any] | None = None
    dry_run: bool = False

    @classmethod
    def of(
        cls,
        operation: str,
        call: RequestLike,
        obj: dict[str, Any] | None,
        old: dict[str, Any] | None,
    ) -> Attributes:
        return cls(operation, call.resource, call.info, call.user, obj, old, call.dry_run)

    @property
    def namespace(self) -> str:
        """The request's namespace; empty for cluster-scoped resources (Namespaces included)."""
        return self.request.namespace if self.resource.namespaced else ""

    @property
    def subresource(self) -> str:
        return self.request.subresource

    @property
    def name(self) -> str:
        """The object's name: the URL's, else the body's (``generateName`` if it has no name
        yet), else ``Unknown``, as upstream's ``admission.NewForbidden`` names it."""
        if self.request.name:
            return self.request.name
        meta = (self.obj or {}).get("metadata") or {}
        return str(meta.get("name") or meta.get("generateName") or "Unknown")

    def is_main(self, group: str, resource: str) -> bool:
        """Whether this is a request for ``group/resource`` itself, not a subresource."""
        r = self.resource
        return r.group == group and r.resource == resource and not self.subresource

    def forbidden(self, reason: str) -> errors.APIError:
        """Upstream's ``admission.NewForbidden``: ``pods "x" is forbidden: <reason>``."""
        r = self.resource
        return errors.forbidden_message(
            f'{r.qualified} "{self.name}" is forbidden: {reason}', r.resource, self.name, r.group
        )


class ObjectLookup(Protocol):
    """Reads of stored objects, current as of the read (a live lookup, not a lagging cache)."""

    async def get(
        self, resource: ResourceInfo, namespace: str, name: str
    ) -> dict[str, Any] | None: ...


class Reservations(Protocol):
    """Claims on unique values (Service IPs, node ports), one store key each.

    ``reserve`` must be a create-only transaction (it succeeds only if the key does not exist),
    so two API servers racing for one value cannot both get it; ``release`` deletes the key only
    if ``owner`` still holds it.
    """

    async def reserve(self, key: str, owner: str) -> bool: ...

    async def release(self, key: str, owner: str) -> None: ...

    async def held(self, prefix: str) -> Collection[str]:
        """The keys under ``prefix`` that are held now."""
        ...


class AdmissionContext(ObjectLookup, Reservations, Protocol):
    """Everything the plugins ask of the API server."""


class MutatingPlugin(Protocol):
    @property
    def name(self) -> str: ...

    async def admit(self, a: Attributes, ctx: AdmissionContext) -> None: ...


class ValidatingPlugin(Protocol):
    @property
    def name(self) -> str: ...

    async def validate(self, a: Attributes, ctx: AdmissionContext) -> None: ...
