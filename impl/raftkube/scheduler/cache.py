"""The scheduler's cache: upstream's ``internal/cache`` (nodes, the pods on them, and
*assumed* pods).

A pod is *assumed* on the node chosen for it the moment the decision is made, before its
binding is even sent, so the next decision already sees the node's capacity taken; the binding
then runs concurrently with the next decisions. When the pod's own update (now with
``spec.nodeName``) arrives from the informer, :meth:`SchedulerCache.add_pod` confirms the
assumption; if the binding fails, :meth:`SchedulerCache.forget_pod` gives the capacity back
(kubernetes #28883: a failed bind whose assumption stayed counted the node's capacity as taken
for good).

Upstream also expires assumed pods whose binding finished but whose confirmation never came
after a TTL; its default TTL is 0 (never expire) since the informer always delivers the bound
pod eventually, and the same holds here, so there is no expiry.

There is no snapshot: decisions run synchronously in one Trio task between checkpoints, so
they read the cache itself and no informer change can land half-way through one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from raftkube.scheduler.nodeinfo import NodeInfo, PodInfo, pod_key

Obj = dict[str, Any]


class CacheError(Exception):
    """An operation that contradicts the cache's state (upstream logs these as bugs)."""


@attrs.define(eq=False)
class _PodState:
    info: PodInfo
    node_name: str
    assumed: bool
    binding_finished: bool = False


@attrs.define(eq=False)
class SchedulerCache:
    """See the module docstring. Nodes are kept in the order they were added, which is the
    order the scheduler walks them in."""

    _nodes: dict[str, NodeInfo] = attrs.field(factory=dict, init=False)
    _order: list[str] = attrs.field(factory=list, init=False)
    _pods: dict[str, _PodState] = attrs.field(factory=dict, init=False)
    _infos: list[NodeInfo] | None = attrs.field(default=None, init=False)

    # --- reads -----------------------------------------------------------------------------

    def node_infos(self) -> list[NodeInfo]:
        """Every node with a Node object, in the cache's order (a list the caller must not
        change; it is rebuilt only when nodes come or go)."""
        if self._infos is None:
            self._infos = [self._nodes[name] for name in self._order]
        return self._infos

    def node_info(self, name: str) -> NodeInfo | None:
        return self._nodes.get(name)

    def node_count(self) -> int:
        return len(self._order)

    def is_assumed(self, key: str) -> bool:
        state = self._pods.get(key)
        return state is not None and state.assumed

    def pod_node(self, key: str) -> str | None:
        """The node the cache counts pod ``key`` on (bound or assumed), if any."""
        state = self._pods.get(key)
        return state.node_name if state is not None else None

    def pods(self) -> Iterator[PodInfo]:
        for state in self._pods.values():
            yield state.info

    def assumed_keys(self) -> list[str]:
        return [key for key, state in self._pods.items() if state.assumed]

    # --- assumptions (the scheduling loop) -------------------------------------------------

    def assume_pod(self, info: PodInfo, node_name: str) -> None:
        """Count ``info`` on ``node_name`` before its binding is confirmed."""
        if info.key in self._pods:
            raise CacheError(f"pod {info.key} is in the cache, so can't be assumed")
        assumed = attrs.evolve(info, pod=_with_node_name(info.pod, node_name))
        self._add(assumed, node_name, assumed=True)

    def finish_binding(self, key: str) -> None:
        """The binding request succeeded; the informer's update will confirm the pod."""
        state = self._pods.get(key)
        if state is not None and state.assumed:
            state.binding_finished = True

    def forget_pod(self, key: str) -> None:
        """Undo :meth:`assume_pod` (the binding failed)."""
        state = self._pods.get(key)
        if state is None:
            return
        if not state.assumed:
            raise CacheError(f"only assumed pod can be forgotten: {key} is bound")
        self._remove(key)

    # --- the informer's view of assigned pods ----------------------------------------------

    def add_pod(self, pod: Obj) -> None:
        """An assigned pod appeared: it confirms an assumption (wherever it landed), or is
        counted afresh."""
        key = pod_key(pod)
        old = self._pods.get(key)
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        if old is not None and old.info.uid == uid:
            # The same pod: its resource requests are immutable, only the object is newer.
            labels = dict((pod.get("metadata") or {}).get("labels") or {})
            info = attrs.evolve(old.info, pod=pod, labels=labels)
        else:
            info = PodInfo.of(pod)
        if old is not None:
            self._remove(key)
        self._add(info, info.node_name, assumed=False)

    def update_pod(self, pod: Obj) -> None:
        self.add_pod(pod)

    def remove_pod(self, pod: Obj) -> None:
        key = pod_key(pod)
        if key in self._pods:
            self._remove(key)

    # --- nodes -----------------------------------------------------------------------------

    def add_node(self, node: Obj) -> None:
        name = str((node.get("metadata") or {}).get("name") or "")
        info = self._nodes.get(name)
        if info is None:
            info = self._nodes[name] = NodeInfo(name)
        if info.node is None:
            self._order.append(name)
            self._infos = None
        info.set_node(node)

    update_node = add_node

    def remove_node(self, node: Obj) -> None:
        """The Node is gone; its pods (if the cache still has any) keep a node-less entry
        until their own deletions arrive, as upstream keeps them."""
        name = str((node.get("metadata") or {}).get("name") or "")
        info = self._nodes.get(name)
        if info is None or info.node is None:
            return
        info.node = None
        self._order.remove(name)
        self._infos = None
        if not info.pods:
            del self._nodes[name]

    # --- internals -------------------------------------------------------------------------

    def _add(self, info: PodInfo, node_name: str, *, assumed: bool) -> None:
        node = self._nodes.get(node_name)
        if node is None:
            node = self._nodes[node_name] = NodeInfo(node_name)
        node.add_pod(info)
        self._pods[info.key] = _PodState(info, node_name, assumed)

    def _remove(self, key: str) -> None:
        state = self._pods.pop(key)
        node = self._nodes.get(state.node_name)
        if node is None:
            return
        node.remove_pod(key)
        if node.node is None and not node.pods:
            del self._nodes[state.node_name]


def _with_node_name(pod: Obj, node_name: str) -> Obj:
    return {**pod, "spec": {**(pod.get("spec") or {}), "nodeName": node_name}}
