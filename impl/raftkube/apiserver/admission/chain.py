"""The admission chain: mutating plugins, then validating plugins, then the Service allocation,
in upstream's order, and the hooks that give allocations back.

Upstream runs every enabled plugin's ``Admit`` in the order of ``AllOrderedPlugins``, then every
``Validate`` in the same order. Of the plugins this server has, that order is NamespaceLifecycle,
ServiceAccount, NodeRestriction, DefaultTolerationSeconds. The Service IP and node port
allocation (upstream's registry step, see :mod:`.service_allocation`) runs after them all,
because it is the only step with an effect outside the request: nothing that could still refuse
the request runs after it.

The handlers call :meth:`AdmissionChain.admit` and :meth:`AdmissionChain.validate` around the
kind's own validation, and then exactly one of the hooks once the store write is decided:
:meth:`~AdmissionChain.updated` or :meth:`~AdmissionChain.deleted` after a committed write,
:meth:`~AdmissionChain.abandoned` when the write after admission failed (a conflict, a name
that exists), so that what admission reserved for it is freed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from raftkube.apiserver.admission.default_toleration_seconds import DefaultTolerationSeconds
from raftkube.apiserver.admission.interfaces import (
    DELETE,
    AdmissionContext,
    Attributes,
    MutatingPlugin,
    RequestLike,
    ValidatingPlugin,
)
from raftkube.apiserver.admission.namespace_lifecycle import NamespaceLifecycle
from raftkube.apiserver.admission.service_account import ServiceAccount
from raftkube.apiserver.admission.service_allocation import ServiceAllocation

Plugin = MutatingPlugin | ValidatingPlugin


def _is_service(call: RequestLike) -> bool:
    """Whether ``call`` wrote a Service (through any subresource: a ``/status`` write that
    removes the last finalizer deletes the Service too)."""
    r = call.resource
    return r.group == "" and r.resource == "services"


@attrs.define
class AdmissionChain:
    """``plugins`` in order; each is run by :meth:`admit` if it has ``admit`` and by
    :meth:`validate` if it has ``validate``."""

    ctx: AdmissionContext
    plugins: Sequence[Plugin]
    allocation: ServiceAllocation | None = None

    async def admit(
        self,
        operation: str,
        call: RequestLike,
        obj: dict[str, Any] | None,
        old: dict[str, Any] | None,
    ) -> None:
        """Mutating admission: plugins may change ``obj`` in place, or refuse."""
        a = Attributes.of(operation, call, obj, old)
        for plugin in self.plugins:
            admit = getattr(plugin, "admit", None)
            if admit is not None:
                await admit(a, self.ctx)

    async def validate(
        self,
        operation: str,
        call: RequestLike,
        obj: dict[str, Any] | None,
        old: dict[str, Any] | None,
    ) -> None:
        """Validating admission, then the allocation: after this returns, the handler writes."""
        a = Attributes.of(operation, call, obj, old)
        await self._validate_plugins(a)
        if self.allocation is not None:
            await self.allocation.validate(a, self.ctx)

    async def admit_delete(self, call: RequestLike, current: dict[str, Any]) -> None:
        """Both phases for a DELETE of ``current`` (nothing is allocated by a delete)."""
        await self.admit(DELETE, call, None, current)
        await self._validate_plugins(Attributes.of(DELETE, call, None, current))

    async def _validate_plugins(self, a: Attributes) -> None:
        for plugin in self.plugins:
            validate = getattr(plugin, "validate", None)
            if validate is not None:
                await validate(a, self.ctx)

    async def updated(self, call: RequestLike, new: dict[str, Any], old: dict[str, Any]) -> None:
        """An update of ``old`` to ``new`` was committed: free what only ``old`` held."""
        if self.allocation is not None and _is_service(call):
            await self.allocation.release(self.ctx, old, new)

    async def deleted(self, call: RequestLike, gone: dict[str, Any]) -> None:
        """``gone`` was removed from the store: free everything it held."""
        if self.allocation is not None and _is_service(call):
            await self.allocation.release(self.ctx, gone)

    async def abandoned(
        self, call: RequestLike, attempted: dict[str, Any], stored: dict[str, Any] | None
    ) -> None:
        """The write of ``attempted`` (over ``stored``, None for a create) failed after
        admission passed: free what admission reserved for it."""
        if self.allocation is not None and _is_service(call) and not call.dry_run:
            await self.allocation.release(self.ctx, attempted, stored)


def default_chain(
    ctx: AdmissionContext,
    *,
    allocation: ServiceAllocation | None = None,
    service_account: ServiceAccount | None = None,
    node_restriction: Plugin | None = None,
) -> AdmissionChain:
    """The API server's plugins in upstream's order; ``node_restriction`` takes its place
    between ServiceAccount and DefaultTolerationSeconds."""
    plugins: list[Plugin] = [NamespaceLifecycle(), service_account or ServiceAccount()]
    if node_restriction is not None:
        plugins.append(node_restriction)
    plugins.append(DefaultTolerationSeconds())
    return AdmissionChain(ctx, plugins, allocation or ServiceAllocation())
