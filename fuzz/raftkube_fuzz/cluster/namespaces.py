"""The user's namespace actions in the cluster suite: ``kubectl create namespace team-a`` and
``kubectl delete namespace team-a``, and which namespace a workload step targets.

The user's workloads live in ``default`` or in :data:`~raftkube_fuzz.cluster.actions.TEAM`,
which the user creates before the first step (:func:`at_start`) and a step may delete or
create again. Deleting it is background deletion, as kubectl's: the API server marks the
namespace (``deletionTimestamp``, phase ``Terminating``; the ``kubernetes`` entry of
``spec.finalizers`` holds it), the controller manager's namespace controller deletes
everything in it and then removes that finalizer, and the namespace goes. Meanwhile a create
in it is refused (403, ``NamespaceTerminating``), and a second delete is 409 Conflict; after
it is gone a create in it is 404 until the user creates it again. What may go wrong is judged
by :mod:`raftkube_fuzz.checks.namespace_lifecycle` (on the store's revisions) and by
:mod:`raftkube_fuzz.checks.reconciliation` (a deleted namespace is gone with all it held).

A workload step names its namespace (the step's ``namespace``, ``default`` when absent, so
older traces replay): :func:`namespace_choice` draws :data:`TEAM` for one step in
:data:`TEAM_SHARE`, so ``default``'s objects, which the implementation mutants are hunted
with, still get three workload steps in four, and ``team-a``'s enough to collide.

As for every user action, an outcome goes to the timeline and is never a failure of the run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from hypothesis import strategies as st

from raftkube.kubeclient import KubeClient
from raftkube_fuzz.cluster import actions
from raftkube_fuzz.example import Run
from raftkube_fuzz.faults.cluster import plane_of
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites.base import setting
from raftkube_fuzz.timeline import CLIENT

STEP_KINDS = ("create_namespace", "delete_namespace")

TEAM_SHARE = 4
"""One workload step in this many targets :data:`~raftkube_fuzz.cluster.actions.TEAM`."""

START_LIMIT = 30.0
"""Virtual seconds each of the user's requests before the first step may take."""

SETUPS = ("empty", "workloads")
"""The suite's ``team`` setting: ``workloads`` has the user also apply ReplicaSet
:data:`BUSY` in :data:`~raftkube_fuzz.cluster.actions.TEAM` before the first step, so that
a namespace deletion drawn at any step finds pods to wait for (they take
:data:`~raftkube_fuzz.cluster.actions.SLOW_STOP_AFTER` seconds to stop): a search about what
a namespace's deletion must wait for. The default, ``empty``, leaves the namespace to the
steps."""
BUSY = ("rs-b", 2)


def namespace_choice() -> st.SearchStrategy[str]:
    """A workload step's namespace: ``team-a`` one time in :data:`TEAM_SHARE`, else
    ``default`` (which it shrinks to)."""
    return st.integers(0, 2**16 - 1).map(namespace_at)


def namespace_at(x: int) -> str:
    """The namespace :func:`namespace_choice` makes of the integer it drew."""
    return actions.TEAM if x % TEAM_SHARE == TEAM_SHARE - 1 else actions.NAMESPACE


def flag(namespace: str) -> str:
    """How the timeline names a namespace after an object, as kubectl's flag would
    (nothing for ``default``)."""
    return "" if namespace == actions.NAMESPACE else f" -n {namespace}"


def namespace_of(step: Step) -> str:
    """The namespace a workload step targets (``default`` for a step that names none)."""
    namespace = str(step.get("namespace", actions.NAMESPACE))
    if namespace not in actions.NAMESPACES:
        raise ValueError(f"namespace {namespace!r}: not one of {actions.NAMESPACES}")
    return namespace


async def create(client: KubeClient, name: str) -> str:
    """``kubectl create namespace NAME``: one POST; an existing namespace (a Terminating one
    included) is 409 AlreadyExists, which kubectl prints and stops at."""
    request = client.create(actions.NAMESPACES_PATH, actions.namespace_object(name))
    return await actions.told("create", request, "created")


async def delete(client: KubeClient, name: str) -> str:
    """``kubectl delete namespace NAME`` (background, kubectl's default: no body): the answer
    is the namespace, marked; one already Terminating is 409 Conflict."""
    request = client.call("DELETE", f"{actions.NAMESPACES_PATH}/{name}")
    return await actions.told("delete", request, "deleted")


def action_of(step: Step) -> tuple[str, Callable[[KubeClient], Awaitable[str]]]:
    """What a namespace step sends, and its line on the timeline. (The namespace's own
    requests are not in the user's object histories, whose model holds workloads.)"""
    name = str(step["name"])
    if step.kind == "create_namespace":
        return f"create namespace {name}", lambda c: create(c, name)
    if step.kind == "delete_namespace":
        return f"delete namespace {name}", lambda c: delete(c, name)
    raise ValueError(f"{step.kind!r}: not one of {STEP_KINDS}")


def at_start(run: Run) -> None:
    """Create :data:`~raftkube_fuzz.cluster.actions.TEAM` before the first step, so that a
    workload step may target it at once (the service-account controller then gives it its
    ``default`` account, without which its pods are refused)."""
    plane = plane_of(run)
    outcome = run.sim.call(create, plane.admin, actions.TEAM, limit=START_LIMIT)
    text = f"user: create namespace {actions.TEAM}: {outcome}"
    run.timeline.add(run.sim.now, None, CLIENT, text, {"host": plane.user.name})
    if setting(run, "team", SETUPS, "empty") == "workloads":
        name, replicas = BUSY
        obj = actions.replica_set(name, replicas, actions.TEAM)
        outcome = run.sim.call(actions.apply, plane.admin, obj, limit=START_LIMIT)
        text = f"user: apply {name}{flag(actions.TEAM)} x{replicas}: {outcome}"
        run.timeline.add(run.sim.now, None, CLIENT, text, {"host": plane.user.name})
