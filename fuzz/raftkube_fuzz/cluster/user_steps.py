"""The cluster suite's user steps: what each client step kind sends, as the user's machine.

A step names its action and arguments (:mod:`raftkube_fuzz.cluster.actions`,
:mod:`raftkube_fuzz.cluster.accounts`); :func:`execute_client` starts it in the background on
the user's host, so a step never waits for the API server, and puts the request and its
answer on the timeline. Component faults drawn by the suite's rules are applied here too,
through the fault registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import trio

from raftkube_fuzz.checks import account_tokens
from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.cluster import accounts, actions, checking, namespaces
from raftkube_fuzz.example import Run
from raftkube_fuzz.faults import REGISTRY
from raftkube_fuzz.faults.cluster import plane_of
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites.base import setting
from raftkube_fuzz.timeline import CLIENT
from raftkube_fuzz.world.driver import sleep
from raftkube_spec.kube.reads import selects

ACTION_LIMIT = 30.0
"""Virtual seconds a user action may take (the client's own timeout is 10 s a request)."""

START_WAIT = 90.0
"""Virtual seconds :func:`running_at_start` waits for the pods to run: the managers' watches
may lag by up to 30 s (``slow=manager-watches``) and a pod needs several of their events."""


def user_action(run: Run, text: str, action: Any, via: int = 0) -> None:
    """Start a user action in the background through API server ``via`` (the step's
    ``via``: the suite draws it when there are two); its outcome goes to the timeline, on the
    user's lane, as a request to that API server and its answer (an arrow each way)."""
    plane = plane_of(run)
    if not 0 <= via < len(plane.apiservers):
        raise ValueError(f"via must name one of the {len(plane.apiservers)} API servers, not {via}")
    server = plane.apiservers[via].name
    flow = f"user-{run.extras.setdefault('user_actions', 0)}"
    run.extras["user_actions"] += 1
    call = {"host": plane.user.name, "to": server, "flow": flow}
    answer = {"host": plane.user.name, "from": server, "flow": flow}

    async def act() -> None:
        if not plane.user.up or plane.user.process is None:
            return
        outcome = await action(plane.admin_via(via))
        run.timeline.add(trio.current_time(), None, CLIENT, f"user: {text}: {outcome}", answer)

    run.timeline.add(run.sim.now, None, CLIENT, f"user: {text}", call)
    run.sim.spawn(act, limit=ACTION_LIMIT)


def account_action(
    run: Run, kind: str, name: str, via: int = 0, namespace: str = accounts.NAMESPACE
) -> None:
    """A ServiceAccount action (:mod:`raftkube_fuzz.cluster.accounts`) in ``namespace``; a
    token issued is kept for the check that it authenticates exactly while its account lives
    (:mod:`raftkube_fuzz.checks.account_tokens`), which also counts the actions under way."""
    tokens = account_tokens.of(run)
    where = namespaces.flag(namespace)
    if kind == "create_account":
        user_action(run, f"create serviceaccount {name}{where}",
                     tokens.tracked(lambda c: accounts.create(c, name, namespace)),
                     via)  # fmt: skip
    elif kind == "delete_account":
        user_action(run, f"delete serviceaccount {name}{where}",
                     tokens.tracked(lambda c: accounts.delete(c, name, namespace)),
                     via)  # fmt: skip
    else:
        tokens.kept += 1
        number = tokens.kept
        ask = tokens.tracked(
            lambda c: accounts.request_token(c, name, number, tokens.keep, namespace)
        )
        user_action(run, f"create token {name}{where} (token {number})", ask, via)


def accounts_at_start(run: Run) -> None:
    """The ``accounts`` setting (:data:`raftkube_fuzz.cluster.accounts.SETUPS`): the user's
    accounts are created before the first step (and with ``tokens`` a token asked for each,
    with ``secrets`` a token Secret created for each)."""
    setup = setting(run, "accounts", accounts.SETUPS, "created")
    if setup == "none":
        return
    plane = plane_of(run)
    for name in accounts.ACCOUNT_NAMES:
        outcome = run.sim.call(accounts.create, plane.admin, name, limit=ACTION_LIMIT)
        text = f"user: create serviceaccount {name}: {outcome}"
        run.timeline.add(run.sim.now, None, CLIENT, text, {"host": plane.user.name})
        if setup == "tokens":
            account_action(run, "request_token", name)
        if setup == "secrets":
            made = run.sim.call(accounts.create_token_secret, plane.admin, name, limit=ACTION_LIMIT)
            text = f"user: create secret {name}-token: {made}"
            run.timeline.add(run.sim.now, None, CLIENT, text, {"host": plane.user.name})


def running_at_start(run: Run, observer: ClusterObserver, setup: Sequence[actions.Obj]) -> None:
    """The ``canary``, ``full`` and ``rollout`` settings: the user applies each workload of
    ``setup`` (ReplicaSets and Deployments in ``default``) and waits, up to
    :data:`START_WAIT` virtual seconds, until the store shows as many pods running as they
    ask for, counting each pod one of their selectors matches once. The steps come back to back
    unless the search draws a wait, so without the wait a step deleting ``rs-a`` would mostly
    come before the canary's pods exist, a pod bound by hand would mostly reach its node before
    the ReplicaSet's pods fill it, and a new template would mostly find the Deployment's first
    rollout still under way. A wait that runs out is not a failure (with
    ``slow=manager-watches`` the ReplicaSet controller may see the ReplicaSets late): the
    timeline says how many were running, and the steps begin."""
    plane = plane_of(run)
    for obj in setup:
        outcome = run.sim.call(actions.apply, plane.admin, obj, limit=ACTION_LIMIT)
        text = f"user: apply {obj['metadata']['name']} x{obj['spec']['replicas']}: {outcome}"
        run.timeline.add(run.sim.now, None, CLIENT, text, {"host": plane.user.name})
    selectors = [tuple(obj["spec"]["selector"]["matchLabels"].items()) for obj in setup]
    wanted = sum(int(obj["spec"]["replicas"]) for obj in setup)

    def running() -> int:
        return sum(
            1
            for pod in observer.of("Pod", actions.NAMESPACE)
            if (pod.get("status") or {}).get("phase") == "Running"
            and not (pod.get("metadata") or {}).get("deletionTimestamp")
            and any(
                selects((pod.get("metadata") or {}).get("labels") or {}, selector)
                for selector in selectors
            )
        )

    async def all_running() -> None:
        deadline = trio.current_time() + START_WAIT
        while trio.current_time() < deadline:
            observer.follow(run.written)
            if running() >= wanted:
                return
            await sleep(checking.POLL)

    run.sim.call(all_running, limit=START_WAIT + 1.0)
    names = ", ".join(sorted(obj["metadata"]["name"] for obj in setup))
    text = f"user: sees {running()} pods of {names} running"
    run.timeline.add(run.sim.now, None, CLIENT, text, {"host": plane.user.name})


def execute_client(run: Run, step: Step) -> bool:
    kind = step.kind
    namespace = namespaces.namespace_of(step)
    where = namespaces.flag(namespace)
    via = int(step.get("via", 0))
    if kind == "apply_rs":
        obj = actions.replica_set(step["name"], step["replicas"], namespace)
        user_action(run, f"apply {step['name']}{where} x{step['replicas']}",
                     lambda c: actions.apply(c, obj), via)  # fmt: skip
    elif kind == "apply_deployment":
        obj = actions.deployment(step["name"], step["replicas"], step["version"], namespace)
        user_action(
            run,
            f"apply {step['name']}{where} x{step['replicas']} version {step['version']}",
            lambda c: actions.apply(c, obj),
            via,
        )
    elif kind == "create_pinned":
        obj = actions.pinned_pod(step["node"])
        user_action(run, f"create pinned-{step['node']}",
                     lambda c: actions.apply(c, obj), via)  # fmt: skip
    elif kind == "apply_service":
        obj = actions.service(step["target"], namespace)
        # The type is always sent, so that a merge patch turns a LoadBalancer back too.
        obj["spec"]["type"] = service_type = step.get("type", "ClusterIP")
        user_action(run, f"apply svc-{step['target']}{where} ({service_type})",
                     lambda c: actions.apply(c, obj), via)  # fmt: skip
    elif kind == "delete":
        resource, name = step["resource"], step["name"]
        cascade = step.get("cascade", "background")
        flag = "" if cascade == "background" else f" --cascade={cascade}"
        user_action(run, f"delete {resource} {name}{where}{flag}",
                     lambda c: actions.delete(c, resource, name, cascade,
                                              namespace),
                     via)  # fmt: skip
    elif kind in ("cordon", "uncordon"):
        node = step["node"]
        user_action(run, f"{kind} {node}",
                     lambda c: actions.cordon(c, node, kind == "cordon"), via)  # fmt: skip
    elif kind in accounts.STEP_KINDS:
        account_action(run, kind, step["name"], via, namespace=namespace)
    elif kind in namespaces.STEP_KINDS:
        user_action(run, *namespaces.action_of(step), via)
    elif kind == "long_wait":
        run.advance(float(step["seconds"]))
    elif kind in REGISTRY and REGISTRY[kind].strategy is None:
        # A fault the suite's own rules draw (a component's, a container's), not the base
        # machine's (those go through ``execute_fault``).
        REGISTRY[kind].apply(run, step, -1)
    else:
        return False
    return True
