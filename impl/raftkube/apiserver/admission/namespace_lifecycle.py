"""NamespaceLifecycle: no content in a namespace that does not exist or is being deleted, and the
system namespaces are never deleted.

As upstream's ``plugin/pkg/admission/namespace/lifecycle``: a create or update of a namespaced
object is 404 ``namespaces "x" not found`` when the namespace is missing, and a create is 403
``unable to create new content in namespace x because it is being terminated`` (with a
``NamespaceTerminating`` cause) once the namespace's phase is Terminating; deletes of other
objects are always let through (so a terminating namespace can be emptied), as are requests for
Namespaces themselves, except that ``default``, ``kube-system`` and ``kube-public`` may not be
deleted. Upstream consults an informer cache first and the store on a miss; here the context's
lookup is always live, which is what upstream's fallback makes it equivalent to.
"""

from __future__ import annotations

import attrs

from raftkube.apiserver import errors
from raftkube.apiserver.admission.interfaces import (
    CREATE,
    DELETE,
    AdmissionContext,
    Attributes,
)
from raftkube.apiserver.resources import lookup

IMMORTAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
NAMESPACES = lookup("", "v1", "namespaces")
TERMINATING_CAUSE = "NamespaceTerminating"


@attrs.frozen
class NamespaceLifecycle:
    name: str = "NamespaceLifecycle"
    immortal: frozenset[str] = IMMORTAL_NAMESPACES

    async def admit(self, a: Attributes, ctx: AdmissionContext) -> None:
        is_namespace = a.resource.group == "" and a.resource.resource == "namespaces"
        if is_namespace:
            if a.operation == DELETE and a.request.name in self.immortal:
                raise errors.forbidden_message(
                    f'namespaces "{a.request.name}" is forbidden: this namespace may not be '
                    "deleted",
                    "namespaces",
                    a.request.name,
                )
            return
        if not a.namespace or a.operation == DELETE:
            return
        assert NAMESPACES is not None
        namespace = await ctx.get(NAMESPACES, "", a.namespace)
        if namespace is None:
            raise errors.not_found("namespaces", a.namespace)
        phase = (namespace.get("status") or {}).get("phase")
        if a.operation == CREATE and phase == "Terminating":
            err = a.forbidden(
                f"unable to create new content in namespace {a.namespace} because it is being "
                "terminated"
            )
            details = dict(err.details or {})
            details["causes"] = [
                {
                    "reason": TERMINATING_CAUSE,
                    "message": f"namespace {a.namespace} is being terminated",
                    "field": "metadata.namespace",
                }
            ]
            err.details = details
            raise err
