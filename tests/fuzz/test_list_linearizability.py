"""The LIST check (:mod:`raftkube_fuzz.checks.linearizability.list_model`): a page is judged
against the store's history at its resourceVersion, and that resourceVersion against the rule
its request asked for; and in the cluster suite, the real API server passes while
``list-served-stale`` (a consistent list answered from a lagging watch cache) is named."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from raftkube_fuzz.checks.linearizability import list_model as lm
from raftkube_fuzz.checks.linearizability.list_model import ListPage, RegistryHistory, page_mismatch
from raftkube_fuzz.cluster.list_history import item_of, rule_of
from raftkube_fuzz.example import run_steps
from raftkube_fuzz.mutants import MUTANTS
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suites import get_suite
from raftkube_spec.kube.reads import encode_continue
from raftkube_spec.kv.types import KeyValue

PODS = b"/registry/pods/"


def pod(name: str, rv: int, node: str = "", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "uid": f"u-{name}",
                     "resourceVersion": str(rv), "labels": labels},
        "spec": {"nodeName": node},
    }  # fmt: skip


def put(obj: dict[str, Any]) -> KeyValue:
    meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    value = json.dumps({**obj, "metadata": meta}).encode()
    rv = int(obj["metadata"]["resourceVersion"])
    return KeyValue(PODS + f"default/{meta['name']}".encode(), rv, rv, 1, value)


def gone(name: str) -> KeyValue:
    return KeyValue(PODS + f"default/{name}".encode())


def history() -> RegistryHistory:
    """a@2 (on n1), b@3 (on n2), a@4 (relabelled), b deleted at 5, c@6; revision 7 is not a
    pod's."""
    h = RegistryHistory()
    h.follow({
        2: (put(pod("a", 2, "n1", app="x")),),
        3: (put(pod("b", 3, "n2", app="x")),),
        4: (put(pod("a", 4, "n1", app="y")),),
        5: (gone("b"),),
        6: (put(pod("c", 6, "n2", app="x")),),
        7: (KeyValue(b"/registry/leases/kube-node-lease/n1", 7, 7, 1, b"{}"),),
    }, 7)  # fmt: skip
    return h


def page(revision: int, *objs: dict[str, Any], **fields: Any) -> ListPage:
    base = ListPage("kcm-0", "/api/v1/pods", "pods", PODS, lm.ANY, 0, 0, 7, revision, "", "",
                    items=tuple(item_of(PODS, o) for o in objs))  # fmt: skip
    return attrs.evolve(base, **fields)


def test_items_must_be_the_stores_objects_at_the_revision() -> None:
    h = history()
    assert page_mismatch(h, page(3, pod("a", 2, "n1", app="x"), pod("b", 3, "n2", app="x"))) is None
    assert page_mismatch(h, page(7, pod("a", 4, "n1", app="y"), pod("c", 6, "n2", app="x"))) is None
    stale = page_mismatch(h, page(4, pod("a", 2, "n1", app="x"), pod("b", 3, "n2", app="x")))
    assert stale is not None and "other versions /registry/pods/default/a@2 (store: 4)" in stale
    missing = page_mismatch(h, page(6, pod("a", 4, "n1", app="y")))
    assert missing is not None and "missing /registry/pods/default/c" in missing
    extra = page_mismatch(h, page(5, pod("a", 4, "n1", app="y"), pod("b", 3, "n2", app="x")))
    assert extra is not None and "not in the store then /registry/pods/default/b" in extra
    changed = page_mismatch(h, page(2, pod("a", 2, "n1", app="changed")))
    assert changed is not None and "a@2 with other content than the store's" in changed


def test_the_revision_keeps_the_rule_the_request_asked_for() -> None:
    h = history()
    at_6 = (pod("a", 4, "n1", app="y"), pod("c", 6, "n2", app="x"))
    assert (
        page_mismatch(h, page(3, pod("a", 2, "n1", app="x"), pod("b", 3, "n2", app="x"), floor=6))
        is None
    )  # "any" may be older than what was seen
    consistent = page_mismatch(h, page(6, *at_6, rule=lm.CONSISTENT, floor=7))
    assert consistent is not None and "older than revision 7" in consistent
    assert page_mismatch(h, page(7, *at_6, rule=lm.CONSISTENT, floor=7)) is None
    older = page_mismatch(h, page(6, *at_6, rule=lm.NOT_OLDER, asked=7))
    assert older is not None and "older than the 7 asked for" in older
    exact = page_mismatch(h, page(7, *at_6, rule=lm.EXACT, asked=6))
    assert exact is not None and "not the 6 asked for" in exact
    future = page_mismatch(h, page(7, *at_6, ceiling=6))
    assert future is not None and "newer than the store's revision 6" in future


def test_a_page_covers_the_keys_between_its_token_and_the_next() -> None:
    h = history()
    a, c = pod("a", 4, "n1", app="y"), pod("c", 6, "n2", app="x")
    first = page(6, a, next_token=encode_continue(6, "default/a\x00"))
    assert page_mismatch(h, first) is None
    second = page(6, c, rule=lm.CONTINUED, continue_token=encode_continue(6, "default/a\x00"))
    assert page_mismatch(h, second) is None
    dropped = page_mismatch(h, attrs.evolve(second, items=()))
    assert dropped is not None and "missing /registry/pods/default/c" in dropped
    moved = page_mismatch(h, attrs.evolve(second, revision=7))
    assert moved is not None and "its token's is 6" in moved


def test_selectors_narrow_what_is_expected() -> None:
    h = history()
    on_n2 = page(3, pod("b", 3, "n2", app="x"), field_selector="spec.nodeName=n2")
    assert page_mismatch(h, on_n2) is None
    assert page_mismatch(h, page(7, pod("c", 6, "n2", app="x"), label_selector="app=x")) is None
    assert page_mismatch(h, page(7, pod("a", 4, "n1", app="y"), label_selector="app!=x")) is None
    wrong = page_mismatch(h, page(7, label_selector="app=x"))
    assert wrong is not None and "missing /registry/pods/default/c" in wrong
    # A set-based selector is not read: the items are not judged, the revision still is.
    assert page_mismatch(h, page(7, label_selector="app in (x)")) is None
    assert page_mismatch(h, page(7, label_selector="app in (x)", ceiling=6)) is not None


@pytest.mark.parametrize(
    ("query", "rule"),
    [
        ({}, (lm.CONSISTENT, 0)),
        ({"resourceVersion": "0"}, (lm.ANY, 0)),
        ({"resourceVersion": "9"}, (lm.NOT_OLDER, 9)),
        ({"resourceVersion": "9", "limit": 5}, (lm.EXACT, 9)),
        ({"resourceVersion": "9", "resourceVersionMatch": "Exact"}, (lm.EXACT, 9)),
        ({"resourceVersion": "9", "resourceVersionMatch": "NotOlderThan", "limit": 5},
         (lm.NOT_OLDER, 9)),
        ({"continue": "abc", "limit": 5}, (lm.CONTINUED, 0)),
    ],
)  # fmt: skip
def test_the_rule_of_a_query(query: dict[str, Any], rule: tuple[str, int]) -> None:
    assert rule_of(query) == rule


STEPS = [
    Step.of("apply_rs", name="rs-a", replicas=1, namespace="team-a"),
    Step.of("long_wait", seconds=3.0),
    Step.of("delete_namespace", name="team-a"),
    Step.of("long_wait", seconds=5.0),
]
CONFIG = {"servers": 1, "nodes": 2, "store_faults": "off", "accounts": "none"}


def test_the_real_api_server_passes_and_a_stale_consistent_list_is_named() -> None:
    suite = get_suite("cluster")
    config = {**suite.default_config, **CONFIG}
    run = run_steps(suite, config, 7, STEPS)
    assert run.violation is None, run.violation
    summary = [line.text for line in run.timeline.lines() if "lists checked" in line.text]
    assert summary and "consistent" in summary[0], summary
    with MUTANTS["list-served-stale"].patch():
        run = run_steps(suite, config, 7, STEPS)
    assert run.violation is not None and run.violation.prop == "ListLinearizability"
    assert "a consistent list answered resourceVersion" in run.violation.message
