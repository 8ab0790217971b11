"""The endpoints controller: each Service's Endpoints list its ready pods.

Theory of operation
-------------------
``sync(memory, view, now)`` computes, for every Service of the view with a selector, the
Endpoints upstream's controller would write: one address per pod that the selector matches,
that is bound to a node, not being deleted and Ready (upstream puts unready pods in
``notReadyAddresses``, which no proxy routes to; here they are left out), sorted by pod name,
with the Service's target port. It writes when the computed Endpoints differ from the view's
and deletes Endpoints whose Service is gone from the view.

Stale views and their bugs. The write is a Patch of the addresses, so a stale view can only
make a write late, never wrong about what it read. Comparing with the *cached* Endpoints and
skipping the write when they look equal left Endpoints wrong for good upstream (kubernetes
#125638, #127429); here the comparison is with the view too, and ESR holds because the view of
both the pods and the Endpoints is one consistent snapshot, and a later delivery shows the
controller's own write. Deleting Endpoints of a Service a not-yet-synced cache lacks (PR
#104062) cannot happen: a loop acts only on a delivered view.

Promise: every address an Endpoints write lists was of a ready pod in the state the controller
read (EndpointsListOnlyReady), and once pods stop changing, Endpoints list exactly the ready
pods of each Service.
"""

from __future__ import annotations

from collections.abc import Callable

from raftkube_spec.control.records import Address, Endpoints, Pod, Service, matches, meta
from raftkube_spec.control.world import Create, Delete, Patch, Request, World

Ready = Callable[[Pod], bool]


def is_ready(pod: Pod) -> bool:
    return pod.ready and pod.node != "" and not pod.meta.deleting


def addresses(service: Service, view: World, ready: Ready = is_ready) -> tuple[Address, ...]:
    pods = [
        p
        for p in view.pods
        if p.meta.namespace == service.meta.namespace
        and matches(service.selector, p.meta.labels)
        and ready(p)
    ]
    return tuple(Address(p.meta.name, p.node) for p in sorted(pods, key=lambda p: p.meta.name))


def sync(
    memory: None, view: World, now: int, ready: Ready = is_ready
) -> tuple[None, tuple[Request, ...]]:
    requests: list[Request] = []
    services = {(s.meta.namespace, s.meta.name) for s in view.services}
    for service in view.services:
        if not service.selector:
            continue
        wanted = addresses(service, view, ready)
        current = view.get(("Endpoints", service.meta.namespace, service.meta.name))
        if current is None:
            ep = Endpoints(
                meta("Endpoints", service.meta.name, service.meta.namespace),
                wanted,
                service.target_port,
            )
            requests.append(Create(ep))
        elif isinstance(current, Endpoints) and (current.addresses, current.port) != (
            wanted,
            service.target_port,
        ):
            fields = (("addresses", wanted), ("port", service.target_port))
            requests.append(Patch(current.meta.ref, fields))
    for ep in view.of(Endpoints):
        if (ep.meta.namespace, ep.meta.name) not in services:
            requests.append(Delete(ep.meta.ref))
    return None, tuple(requests)


def sync_including_unready(memory: None, view: World, now: int) -> tuple[None, tuple[Request, ...]]:
    """The ``endpoints-include-unready`` mutant: every bound, live pod is an address."""
    return sync(memory, view, now, ready=lambda p: p.node != "" and not p.meta.deleting)
