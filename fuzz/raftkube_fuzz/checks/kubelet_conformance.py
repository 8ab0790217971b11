"""Request conformance for the kubelets: the final delete of a pod, and pod status writes.

The spec's kubelet (:mod:`raftkube_spec.control.kubelet`) stops the containers of its pods that
are being deleted and *then* deletes the pod for good, with grace 0: the only request that
removes a bound pod, and the reason no controller may force-delete a pod of an unreachable
node (its containers may still run). Upstream's kubelet does the same: the status manager
sends the final delete only once ``PodResourcesAreReclaimed`` (no container running, the
sandbox and volumes gone), with the pod's uid as a precondition.

A kubelet has no informer sync to tie a request to (its pod workers act on the pod they hold),
so the rules read what its request is about as it is sent: the store's pod of that name now
(:class:`~raftkube_fuzz.checks.views.PodFact`, which the store's revisions keep current) and
what the kubelet's own machine runs now (the simulated runtime's running containers, by pod
uid). Both are sound to read at that moment: a pod's ``deletionTimestamp`` and ``nodeName``,
once set, never change, and a terminating pod's containers, once stopped, are never started
again, so what holds when the request leaves held when the kubelet decided.

* **Final delete** (:func:`final_delete`): a DELETE whose precondition names the uid of the
  pod the store holds under that name is allowed iff that pod is being deleted, is bound to
  this kubelet's node, and none of its containers runs on this machine. A delete whose uid
  is not the store's pod's (gone, or another pod of the same name) removes nothing (404 or
  409) and is not judged.
* **Status write** (:func:`status_write`): a pod worker's status write (a PATCH of
  ``/status`` whose ``metadata.uid`` names the pod) of the pod the store holds with that uid
  is allowed iff the pod is bound to this kubelet's node and the write does not take it out
  of a terminal phase (upstream's status manager keeps ``Succeeded``/``Failed`` once written:
  a terminal pod never runs again). The admission rejection's write names no uid and is left
  to ``NodeWithinAllocatable``, which judges what the machine admitted.

Not judged: what a status says beyond its phase (readiness and container states come from the
runtime's events and probes, which a check cannot replay without the kubelet's own timing),
node status and Lease renewals (a kubelet's own objects; the node lifecycle controller judges
their absence).
"""

from __future__ import annotations

from collections.abc import Sequence

from raftkube_fuzz.checks.views import TERMINAL_PHASES, PodFact


def final_delete(node: str, pod: PodFact | None, uid: str, running: Sequence[str]) -> str | None:
    """Why kubelet ``node`` may not delete pod ``uid`` for good (None: allowed), given the
    store's pod of that name (``pod``) and the containers of ``uid`` running on its machine
    (``running``: their names)."""
    if pod is None or not uid or pod.uid != uid:
        return None
    if not pod.deleting:
        return f"pod {uid} is not being deleted (no deletionTimestamp)"
    if pod.node != node:
        return f"pod {uid} is bound to {pod.node or 'no node'}, not to {node}"
    if running:
        return f"its containers {', '.join(sorted(running))} still run on {node}"
    return None


def status_write(node: str, pod: PodFact | None, uid: str, phase: str) -> str | None:
    """Why kubelet ``node`` may not write ``phase`` into pod ``uid``'s status (None: allowed),
    given the store's pod of that name (``pod``)."""
    if pod is None or not uid or pod.uid != uid:
        return None
    if pod.node != node:
        return f"pod {uid} is bound to {pod.node or 'no node'}, not to {node}"
    if pod.phase in TERMINAL_PHASES and phase and phase not in TERMINAL_PHASES:
        return f"it takes pod {uid} from phase {pod.phase} back to {phase}"
    return None
