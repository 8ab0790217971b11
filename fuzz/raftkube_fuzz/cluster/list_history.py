"""Every API client's LIST requests, recorded for the list check
(:mod:`raftkube_fuzz.checks.linearizability.list_model`).

The object histories' request tracer (:meth:`.object_history.ObjectHistories.tracer`, which every
component's client and the user's carry) hands this recorder each GET of a collection that is
not a watch (:meth:`ListHistories.sent`): the informers' lists and relists, the namespace
controller's lists of what a namespace still holds, paginated pages. Each 200 answer becomes a
:class:`~raftkube_fuzz.checks.linearizability.list_model.ListPage`: the request's revision rule,
the items as key, uid, resourceVersion and content digest (not the objects: the cluster suite's
memory is a tracked target), and the two real-time bounds, read where they happen:

* the **floor**, the newest revision any answer to any client revealed before the request was
  sent (:meth:`ListHistories.revealed`, told of every object answer and every list's
  resourceVersion as it arrives): what a consistent list must at least show;
* the **ceiling**, the store's revision when the answer came (``current_revision``, the store
  history the run's listener feeds live).

The pages wait in :attr:`ListHistories.pending` until the check judges them after the step
(nothing is judged inside a component's task); a refusal, a lost answer or an answer that is
not a list carries nothing to judge.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from raftkube.kubeclient import RequestDone
from raftkube_fuzz.checks.linearizability import list_model as lists
from raftkube_fuzz.checks.linearizability.list_model import Item, ListPage, content_digest

Obj = dict[str, Any]


def rule_of(query: Mapping[str, Any]) -> tuple[str, int]:
    """Which revision rule a list's query asks for, and the revision it names (upstream's
    ``resourceVersion`` / ``resourceVersionMatch`` / ``limit`` / ``continue`` rules)."""
    rv = str(query.get("resourceVersion", ""))
    match = str(query.get("resourceVersionMatch", ""))
    asked = int(rv) if rv.isdigit() else 0
    if query.get("continue"):
        return lists.CONTINUED, 0
    if rv == "":
        return lists.CONSISTENT, 0
    if match == "Exact" or (not match and int(query.get("limit") or 0) > 0 and asked > 0):
        return lists.EXACT, asked
    if asked == 0:
        return lists.ANY, 0
    return lists.NOT_OLDER, asked


def _rv(text: Any) -> int:
    return int(text) if isinstance(text, str) and text.isdigit() else 0


def item_of(resource_prefix: bytes, obj: Mapping[str, Any]) -> Item:
    meta = obj.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    key = resource_prefix + (f"{namespace}/{name}" if namespace else name).encode()
    return Item(
        key, str(meta.get("uid") or ""), _rv(meta.get("resourceVersion")), content_digest(obj)
    )


@attrs.define(eq=False)
class ListHistories:
    """The recorder (see the module docstring)."""

    current_revision: Callable[[], int] = lambda: 0
    """The store's revision now (the ceiling of an answer arriving now)."""
    floor: int = 0
    """The newest revision any answer revealed so far."""
    pending: list[ListPage] = attrs.field(factory=list)
    """Pages answered and not judged yet."""
    sent_count: int = 0

    def revealed(self, revision: int) -> None:
        """An answer arriving now showed ``revision`` (an object's resourceVersion, a list's)."""
        if revision > self.floor:
            self.floor = revision

    def sent(self, path: str, query: Mapping[str, Any] | None, client: str, resource: str,
             namespace: str) -> RequestDone:  # fmt: skip
        """A list of ``resource`` (in ``namespace``, "" for all) is being sent by ``client``;
        what to tell when its answer comes."""
        query = query or {}
        rule, asked = rule_of(query)
        floor = self.floor
        resource_prefix = f"/registry/{resource}/".encode()
        prefix = resource_prefix + (f"{namespace}/".encode() if namespace else b"")
        text = "&".join(f"{k}={v}" for k, v in sorted(query.items()))
        self.sent_count += 1

        def done(outcome: int | BaseException, data: bytes) -> None:
            if outcome != 200:
                return
            try:
                body = json.loads(data)
            except ValueError:
                return
            meta = body.get("metadata") if isinstance(body, dict) else None
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(meta, dict) or not isinstance(items, list):
                return
            revision = _rv(meta.get("resourceVersion"))
            page = ListPage(
                client,
                f"{path}?{text}" if text else path,
                resource,
                prefix,
                rule,
                asked,
                floor,
                self.current_revision(),
                revision,
                str(query.get("continue") or ""),
                str(meta.get("continue") or ""),
                str(query.get("labelSelector") or ""),
                str(query.get("fieldSelector") or ""),
                tuple(item_of(resource_prefix, obj) for obj in items if isinstance(obj, dict)),
            )
            self.pending.append(page)
            self.revealed(revision)

        return done
