"""DefaultTolerationSeconds: every pod tolerates a not-ready or unreachable node for 300 s.

As upstream's ``plugin/pkg/admission/defaulttolerationseconds``: on create and update of a pod
(not its subresources), a ``NoExecute`` toleration with ``tolerationSeconds: 300`` for
``node.kubernetes.io/not-ready`` and one for ``node.kubernetes.io/unreachable`` are appended
unless the pod already tolerates that taint (a toleration with that key or an empty key, and the
``NoExecute`` effect or an empty one). The node lifecycle controller's taint-based eviction then
waits that long before evicting the pod from a node that stopped reporting.
"""

from __future__ import annotations

from typing import Any

import attrs

from raftkube.apiserver.admission.interfaces import CREATE, UPDATE, AdmissionContext, Attributes

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_SECONDS = 300


def _tolerates(tolerations: list[Any], key: str) -> bool:
    return any(
        isinstance(t, dict)
        and t.get("key", "") in (key, "")
        and t.get("effect", "") in ("NoExecute", "")
        for t in tolerations
    )


@attrs.frozen
class DefaultTolerationSeconds:
    name: str = "DefaultTolerationSeconds"
    not_ready_seconds: int = DEFAULT_SECONDS
    unreachable_seconds: int = DEFAULT_SECONDS

    async def admit(self, a: Attributes, ctx: AdmissionContext) -> None:
        if a.operation not in (CREATE, UPDATE) or not a.is_main("", "pods") or a.obj is None:
            return
        spec = a.obj.setdefault("spec", {})
        tolerations = list(spec.get("tolerations") or [])
        for key, seconds in ((NOT_READY, self.not_ready_seconds),
                             (UNREACHABLE, self.unreachable_seconds)):  # fmt: skip
            if not _tolerates(tolerations, key):
                tolerations.append(
                    {
                        "key": key,
                        "operator": "Exists",
                        "effect": "NoExecute",
                        "tolerationSeconds": seconds,
                    }
                )
        spec["tolerations"] = tolerations
