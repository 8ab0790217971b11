"""The ReplicaSet controller (and ReplicationController, the same loop), with expectations.

Theory of operation
-------------------
``sync(expectations, view, now)`` looks at each ReplicaSet of the view that is not being
deleted. Its active pods are the pods it controls (an owner reference with its uid) that are
not being deleted. If fewer than ``replicas`` it creates the difference, each pod named
``<rs>-<n>`` from a counter the controller keeps, with the template's labels and an owner
reference blocking the owner's foreground deletion; if more, it deletes the surplus, unbound
pods first, then by name (upstream's ``getPodsToDelete`` ranks by more criteria).

Expectations, as upstream's ``ControllerExpectations``: when it asks for creations or
deletions it remembers which pods it expects to see appear or start deleting, and it does not
sync that ReplicaSet again until its view shows all of them. Without this, a view that lags
its own writes shows the old pod count and the controller creates again (kubernetes #88851).
Upstream counts expected adds and dels and lowers them as informer events arrive, and expires
them after five minutes; here the expectation names the pods, which the view either shows or
does not, and never expires (the model has no lost informer events to recover from).

Promise: a ReplicaSet never has more active pods than the largest ``replicas`` it was given
(no over-creation), whatever the lag of the view, as long as the memory survives; a crash loses
the memory and the view together, and a fresh view shows every write made before it.
"""

from __future__ import annotations

import attrs

from raftkube_spec.control.records import OwnerRef, Pod, ReplicaSet, meta
from raftkube_spec.control.world import Create, Delete, Request, World


@attrs.frozen
class Expectations:
    pending: tuple[tuple[str, str, bool], ...] = ()
    """(ReplicaSet uid, pod name, True for an expected creation, False for a deletion)."""
    created: int = 0
    """The highest pod name suffix used. Upstream draws a random ``generateName`` suffix; here
    the next name is one past the highest used or seen in the view, so a restarted controller
    (memory lost, fresh view) does not reuse the name of a pod that still exists."""


def owned_by(rs: ReplicaSet, pod: Pod) -> bool:
    return any(o.uid == rs.meta.uid for o in pod.meta.owners)


def active_pods(rs: ReplicaSet, view: World) -> tuple[Pod, ...]:
    return tuple(p for p in view.pods if owned_by(rs, p) and not p.meta.deleting)


def _observed(view: World, pod_name: str, namespace: str, create: bool) -> bool:
    pod = view.get(("Pod", namespace, pod_name))
    return pod is not None if create else pod is None or pod.meta.deleting


def satisfied(exp: Expectations, view: World) -> Expectations:
    """Drop the expectations the view now shows as met."""
    left = []
    for rs_uid, name, create in exp.pending:
        rs = view.by_uid(rs_uid)
        ns = rs.meta.namespace if rs is not None else "default"
        if rs is not None and not _observed(view, name, ns, create):
            left.append((rs_uid, name, create))
    return attrs.evolve(exp, pending=tuple(left))


def new_pod(rs: ReplicaSet, name: str) -> Pod:
    owner = OwnerRef("ReplicaSet", rs.meta.name, rs.meta.uid, block=True)
    return Pod(
        meta(
            "Pod",
            name,
            rs.meta.namespace,
            uid="",
            labels=rs.template_labels,
            owners=(owner,),
        ),
        cpu=rs.cpu,
    )


def _deletion_order(pod: Pod) -> tuple[bool, bool, str]:
    return (pod.node != "", pod.ready, pod.meta.name)


def _highest_suffix(view: World) -> int:
    suffixes = [p.meta.name.rpartition("-")[2] for p in view.pods]
    return max((int(s) for s in suffixes if s.isdigit()), default=0)


def sync(exp: Expectations, view: World, now: int) -> tuple[Expectations, tuple[Request, ...]]:
    exp = satisfied(exp, view)
    exp = attrs.evolve(exp, created=max(exp.created, _highest_suffix(view)))
    requests: list[Request] = []
    for rs in view.replica_sets:
        if rs.meta.deleting or any(uid == rs.meta.uid for uid, _, _ in exp.pending):
            continue
        active = active_pods(rs, view)
        diff = rs.replicas - len(active)
        for _ in range(diff):
            name = f"{rs.meta.name}-{exp.created + 1}"
            requests.append(Create(new_pod(rs, name)))
            exp = attrs.evolve(
                exp, pending=(*exp.pending, (rs.meta.uid, name, True)), created=exp.created + 1
            )
        for pod in sorted(active, key=_deletion_order)[: max(-diff, 0)]:
            requests.append(Delete(pod.meta.ref))
            exp = attrs.evolve(exp, pending=(*exp.pending, (rs.meta.uid, pod.meta.name, False)))
    return exp, tuple(requests)


def sync_without_expectations(
    exp: Expectations, view: World, now: int
) -> tuple[Expectations, tuple[Request, ...]]:
    """The ``rs-no-expectations`` mutant: every sync trusts the view's pod count."""
    after, requests = sync(attrs.evolve(exp, pending=()), view, now)
    return attrs.evolve(after, pending=()), requests
