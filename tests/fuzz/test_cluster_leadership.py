"""``NoOverCreation`` (and ``NodeWithinAllocatable``) under two acting controller managers
(schedulers) (issue 15): the cluster suite found
a leader paused (SIGSTOP) past its renew deadline, deposed, then resumed, creating a second
pod for a ReplicaSet of one from a cache the pause left stale while the new leader had
already created the first. Upstream's leader election is no fence and its expectations are
per process, so upstream promises nothing for pods created while two managers may act; the
observer must not count those, and must still count everything a single leader creates."""

from __future__ import annotations

import json
from typing import Any

import pytest

from raftkube_fuzz.checks.cluster_state import ClusterObserver
from raftkube_fuzz.cluster.leadership import LEASE_KEY, SCHEDULER_LEASE_KEY, LeadershipLog
from raftkube_fuzz.violation import Violation
from raftkube_spec.kv.types import KeyValue

RS_KEY = "/registry/replicasets/default/rs"


def _kv(key: bytes | str, revision: int, obj: dict[str, Any]) -> KeyValue:
    raw = key.encode() if isinstance(key, str) else key
    return KeyValue(raw, 2, revision, 1, json.dumps(obj).encode())


def _lease(holder: str, revision: int) -> KeyValue:
    return _kv(LEASE_KEY, revision, {"kind": "Lease", "spec": {"holderIdentity": holder}})


def _rs(replicas: int, revision: int) -> KeyValue:
    obj = {
        "kind": "ReplicaSet",
        "metadata": {"name": "rs", "namespace": "default", "uid": "u-rs"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}},
    }
    return _kv(RS_KEY, revision, obj)


def _pod(name: str, revision: int) -> KeyValue:
    meta = {
        "name": name,
        "namespace": "default",
        "uid": f"u-{name}",
        "labels": {"app": "web"},
        "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "uid": "u-rs"}],
    }
    obj = {"kind": "Pod", "metadata": meta, "spec": {}, "status": {"phase": "Pending"}}
    return _kv(f"/registry/pods/default/{name}", revision, obj)


class Store:
    """Revisions written one at a time, as the run's ``written`` grows."""

    def __init__(self) -> None:
        self.written: dict[int, tuple[KeyValue, ...]] = {}
        self.log = LeadershipLog(lambda: max(self.written, default=1))
        self.observer = ClusterObserver(self.log)

    def write(self, make: Any) -> None:
        revision = max(self.written, default=1) + 1
        self.written[revision] = (make(revision),)
        self.observer.follow(self.written)


def _two_leaders() -> Store:
    """kcm-1 leads and is deposed (it was paused) while kcm-0 takes over and creates the
    ReplicaSet's one pod."""
    store = Store()
    store.write(lambda r: _lease("kcm-1", r))
    store.write(lambda r: _rs(1, r))
    store.write(lambda r: _lease("kcm-0", r))
    store.write(lambda r: _pod("a", r))
    return store


def test_a_pod_created_while_a_deposed_leader_may_still_act_is_not_counted() -> None:
    store = _two_leaders()
    assert store.log.overlapping() == ("kcm-0", "kcm-1")
    store.write(lambda r: _pod("b", r))  # the resumed kcm-1's, from its stale cache
    assert set(store.observer.excused) == {"u-a", "u-b"}


def test_once_the_deposed_leader_has_stopped_a_second_pod_is_over_creation() -> None:
    store = _two_leaders()
    store.log.ended("kcm-1")  # its incarnation lost the Lease and starts again
    store.write(lambda r: _rs(1, r))
    assert store.log.overlapping() == ()
    store.write(lambda r: _pod("b", r))  # a (one more) pod: the leader's own creations count
    with pytest.raises(Violation) as caught:
        store.write(lambda r: _pod("c", r))
    assert caught.value.prop == "NoOverCreation"
    assert caught.value.evidence["not_counted_created_under_leader_overlap"] == ["a"]


def test_a_crashed_leader_hands_over_without_overlap() -> None:
    store = Store()
    store.write(lambda r: _lease("kcm-1", r))
    store.write(lambda r: _rs(1, r))
    store.log.ended("kcm-1")  # crashed
    store.write(lambda r: _lease("kcm-0", r))
    store.write(lambda r: _pod("a", r))
    with pytest.raises(Violation) as caught:
        store.write(lambda r: _pod("b", r))
    assert caught.value.prop == "NoOverCreation"


def test_a_manager_that_leads_again_after_ending_acts_again() -> None:
    store = Store()
    store.write(lambda r: _lease("kcm-1", r))
    store.log.ended("kcm-1")
    store.write(lambda r: _lease("kcm-0", r))
    store.write(lambda r: _lease("kcm-1", r))  # took it back with a fresh incarnation
    assert store.log.overlapping() == ("kcm-0", "kcm-1")


# --- NodeWithinAllocatable, and two schedulers ---------------------------------------------------


def _node(revision: int) -> KeyValue:
    obj = {"kind": "Node", "metadata": {"name": "sim-0", "uid": "u-sim-0"},
           "status": {"allocatable": {"cpu": "4"}}}  # fmt: skip
    return _kv("/registry/nodes/sim-0", revision, obj)


def _bound(name: str, revision: int, phase: str = "Pending", node: str = "sim-0") -> KeyValue:
    meta = {"name": name, "namespace": "default", "uid": f"u-{name}"}
    obj = {
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "1500m"}}}],
        },
        "status": {"phase": phase},
    }
    return _kv(f"/registry/pods/default/{name}", revision, obj)


def _scheduled(store: Store, name: str, phase: str = "Pending") -> None:
    """Created unbound, then bound (as by a scheduler)."""
    store.write(lambda r: _bound(name, r, node=""))
    store.write(lambda r: _bound(name, r, phase))


def test_a_third_1500m_pod_bound_to_a_4_cpu_node_is_over_its_allocatable() -> None:
    store = Store()
    store.write(_node)
    _scheduled(store, "a")
    _scheduled(store, "b")
    with pytest.raises(Violation) as caught:
        _scheduled(store, "c")
    assert caught.value.prop == "NodeWithinAllocatable"


def test_a_pod_created_bound_is_the_kubelets_to_admit_and_the_machines_are_checked() -> None:
    store = Store()
    store.write(_node)
    _scheduled(store, "a")
    _scheduled(store, "b")
    store.write(lambda r: _bound("pinned", r))  # the user bound it: no scheduler judged it
    assert store.observer.pinned == {"u-pinned"}
    names = [("default", n) for n in ("a", "b")]
    store.observer.check_machines({"sim-0": names})
    with pytest.raises(Violation) as caught:
        store.observer.check_machines({"sim-0": [*names, ("default", "pinned")]})
    assert caught.value.prop == "NodeWithinAllocatable"


def test_a_failed_pod_holds_no_room() -> None:
    store = Store()
    store.write(_node)
    _scheduled(store, "a")
    _scheduled(store, "b", phase="Failed")  # refused by the kubelet
    _scheduled(store, "c")


def test_a_pod_bound_while_two_schedulers_may_act_is_not_counted() -> None:
    store = Store()
    scheduling = LeadershipLog(store.log.current_revision, SCHEDULER_LEASE_KEY)
    store.observer = ClusterObserver(store.log, scheduling)
    store.write(_node)
    store.write(lambda r: _kv(SCHEDULER_LEASE_KEY, r, {"spec": {"holderIdentity": "sched-1"}}))
    _scheduled(store, "a")
    _scheduled(store, "b")
    store.write(lambda r: _bound("c", r, node=""))
    store.write(lambda r: _kv(SCHEDULER_LEASE_KEY, r, {"spec": {"holderIdentity": "sched-0"}}))
    store.write(lambda r: _bound("c", r))  # the deposed sched-1's, from its stale cache
    assert list(store.observer.double_booked) == ["u-c"]
