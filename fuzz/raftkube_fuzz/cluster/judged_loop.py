"""What a judged control loop's sync is, and the plug its request rules go in.

The conformance monitor (:mod:`.conformance_monitor`) ties each request a judged loop sends to
the sync that sent it: a :class:`Sync` holds the loop's informers' caches as the sync began to
read them (its *view*) and, for loops that read objects live as well, the GETs it made with
their answers (:class:`Read`).

A loop's rules come in as one :class:`LoopRules` value: given a request of one of the loop's
syncs, its ``sent`` collector (called as the request is sent) or its ``answered`` collector
(called with the outcome) returns the :class:`Facts` its rule reads, gathered *then* (what the
store or the loop's caches hold at that moment must be asked at that moment), or None for a
request the rule does not judge. The monitor judges the facts after the step
(:meth:`Facts.judge`): judging never runs inside a component, whose exception it would become.
A collector must be quick and must not raise.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

if TYPE_CHECKING:
    from raftkube.controllers.informer import SharedIndexInformer
    from raftkube_fuzz.checks.views import StoreHistory

Obj = dict[str, Any]


@attrs.frozen(eq=False)
class Cache:
    """One informer's cache as a sync read it."""

    resource: str
    resource_version: str
    items: list[Obj]
    scope: tuple[str, str, str] | None
    informer: SharedIndexInformer


@attrs.frozen
class Read:
    """One GET a judged sync made: the path and the object answered (None: not found, or no
    object came back). A plug may keep other calls' answers too (the cloud's: a load
    balancer's address is in a PUT's answer), with their ``method``."""

    path: str
    status: int | None
    obj: Obj | None
    method: str = "GET"


def read_of(path: str, outcome: int | BaseException, data: bytes, method: str = "GET") -> Read:
    if not isinstance(outcome, int):
        return Read(path, None, None, method)
    obj = None
    if 200 <= outcome < 300:
        try:
            loaded = json.loads(data)
        except ValueError:
            loaded = None
        obj = loaded if isinstance(loaded, dict) else None
    return Read(path, outcome, obj, method)


@attrs.frozen(eq=False)
class Sync:
    host: str
    loop: str
    key: str
    seq: int
    """The how-manieth judged sync of this loop incarnation (the scheduler's decisions)."""
    incarnation: SharedIndexInformer
    """The loop incarnation's first informer: a restart builds new ones."""
    caches: Mapping[str, Cache]
    reads: list[Read] = attrs.field(factory=list)
    """The GETs the sync made, with their answers (kept for loops whose rules ask for them:
    :attr:`LoopRules.keeps_reads`)."""

    def items(self, resource: str) -> list[Obj]:
        cache = self.caches.get(resource)
        return cache.items if cache is not None else []

    def revision(self, resource: str) -> int:
        cache = self.caches.get(resource)
        version = cache.resource_version if cache is not None else ""
        return int(version) if version.isdigit() else 0

    def describe(self) -> str:
        versions = ", ".join(f"{r}@{c.resource_version}" for r, c in sorted(self.caches.items()))
        return f"{self.loop} on {self.host} (sync of {self.key}, view {versions})"


class Facts(Protocol):
    """What one request's rule reads, gathered while the loop ran."""

    def judge(self) -> str | None:
        """Why the spec's loop does not allow the request from what was gathered, or None."""


SentCollector = Callable[[Sync, str, str, Any, "StoreHistory"], "Facts | None"]
"""``(sync, method, path, body, store history) -> facts``, as the request is sent."""

AnsweredCollector = Callable[
    [Sync, str, str, Any, "int | BaseException", "StoreHistory"], "Facts | None"
]
"""``(sync, method, path, body, outcome, store history) -> facts``, as its answer comes."""


def _nothing_sent(sync: Sync, method: str, path: str, body: Any, history: Any) -> None:
    return None


def _nothing_answered(
    sync: Sync, method: str, path: str, body: Any, outcome: Any, history: Any
) -> None:
    return None


def _nothing_started(sync: Sync) -> None:
    return None


@attrs.frozen
class LoopRules:
    """One judged loop's collectors (see the module docstring)."""

    loop: str
    """The loop's name as its syncs give it (its work queue's name)."""
    sent: SentCollector = _nothing_sent
    answered: AnsweredCollector = _nothing_answered
    keeps_reads: bool = False
    """Whether the loop's syncs keep their GETs (:attr:`Sync.reads`)."""
    started: Callable[[Sync], None] = _nothing_started
    """Told of each sync as it starts, before it reads anything: for rules that judge a
    request by what the loop saw in earlier syncs, including the many that sent nothing
    (the node lifecycle controller's memory of each node, :mod:`.nodelifecycle_monitor`).
    Quick, and never raises, like the collectors."""
