"""NodeRestriction as an admission plugin: the pure rule of
:func:`~raftkube.apiserver.auth.noderestriction.node_restriction`, given the objects it needs.

The rule judges a kubelet's write against its own Node (a mirror pod must name it as owner)
and, for a TokenRequest, the pod the token binds to; this plugin looks both up, and only for
requests from nodes, so other users pay nothing for it.
"""

from __future__ import annotations

from typing import Any

import attrs

from raftkube.apiserver.admission.interfaces import AdmissionContext, Attributes
from raftkube.apiserver.auth.authorize import node_identity
from raftkube.apiserver.auth.noderestriction import node_restriction
from raftkube.apiserver.resources import lookup

_NODES = lookup("", "v1", "nodes")
_PODS = lookup("", "v1", "pods")


@attrs.frozen
class NodeRestriction:
    name: str = "NodeRestriction"

    async def validate(self, a: Attributes, ctx: AdmissionContext) -> None:
        node_name, is_node = node_identity(a.user)
        if not is_node:
            return
        assert _NODES is not None and _PODS is not None
        node = await ctx.get(_NODES, "", node_name) if node_name else None
        bound_pod: dict[str, Any] | None = None
        ref = ((a.obj or {}).get("spec") or {}).get("boundObjectRef") or {}
        if a.subresource == "token" and ref.get("kind") == "Pod" and ref.get("name"):
            bound_pod = await ctx.get(_PODS, a.request.namespace, str(ref["name"]))
        refusal = node_restriction(a.user, a.request, a.obj, a.old, node=node, bound_pod=bound_pod)
        if refusal is not None:
            raise refusal
