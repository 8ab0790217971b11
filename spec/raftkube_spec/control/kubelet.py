"""A kubelet stand-in: what the control loops need a node to do, and no more.

The kubelet is the next issue's; the loops here need its effects on the API to converge, so
a connected machine, in one atomic step, reading the API directly (simplifications: the real
kubelet has its own informers, probes and status manager):

* renews its node's Lease in ``kube-node-lease`` (``renewTime`` from its own clock) and posts
  ``Ready=True`` if the node says otherwise;
* stops the containers of its pods that are being deleted and then deletes the pod for good
  (the final, grace-0 delete: the only one that removes a bound pod);
* stops containers whose pod object is gone or bound elsewhere;
* starts the containers of pods bound to it and marks them ready.

A partitioned machine does nothing it can be seen doing, but its containers keep running, which
is why no controller may force-delete a pod of an unreachable node.
"""

from __future__ import annotations

import attrs

from raftkube_spec.control.model import Machine
from raftkube_spec.control.records import Lease, Node, Pod, Stamp
from raftkube_spec.control.world import Delete, Patch, World, apply


def kubelet(machine: Machine, api: World, now: int) -> tuple[Machine, World]:
    name = machine.name
    lease = api.get(("Lease", "kube-node-lease", name))
    if isinstance(lease, Lease) and lease.renew_time != Stamp(now):
        api = apply(api, Patch(lease.meta.ref, (("renew_time", Stamp(now)),))) or api
    node = api.get(("Node", "", name))
    if isinstance(node, Node) and node.ready != "True":
        api = apply(api, Patch(node.meta.ref, (("ready", "True"),))) or api
    running = list(machine.running)
    for pod in api.pods:
        if pod.node != name:
            continue
        if pod.meta.deleting:
            if pod.meta.name in running:
                running.remove(pod.meta.name)
            api = apply(api, Delete(pod.meta.ref, force=True)) or api
        elif pod.meta.name not in running:
            running.append(pod.meta.name)
            api = apply(api, Patch(pod.meta.ref, (("ready", True),))) or api
    for pod_name in tuple(running):
        found = api.get(("Pod", "default", pod_name))
        if not isinstance(found, Pod) or found.node != name:
            running.remove(pod_name)
    return attrs.evolve(machine, running=tuple(sorted(running))), api


def start_pods_unready(machine: Machine, api: World, now: int) -> tuple[Machine, World]:
    """A kubelet whose readiness probes decide readiness: containers start unready, and the
    slice's environment flips readiness (used where readiness itself is what is checked)."""
    after, out = kubelet(machine, api, now)
    for pod in out.pods:
        if pod.node == machine.name and pod.meta.name not in machine.running and pod.ready:
            out = apply(out, Patch(pod.meta.ref, (("ready", False),))) or out
    return after, out
