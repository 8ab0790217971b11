"""What the linearizability search needs to know about the object it checks: a sequential model.

The shape is Porcupine's ``Model``: an initial state, a step function, and an equality on
results, so one search checks any object whose sequential behaviour can be written as a pure
function: the KV store (:mod:`.kv_model`) now, the Kubernetes object API later. Porcupine's
``Step(state, input, output) -> (ok, state')`` is split here into :meth:`Model.apply`, which
computes the model's result, and :meth:`Model.matches`, which compares it with the recorded
one: the search keeps the model's result to explain a failure, and a memo can reuse it.

Everything after :meth:`Model.matches` is optional, with defaults that are *sound*: they
never cut a branch, drop an operation or refute a history, so a model that only implements
the first three methods gets a correct (if slower) search. They are the hooks the search's
cuts and reports rest on:

* :meth:`Model.normalized` and :meth:`Model.is_read_only` decide which operations take part
  and as what request (an Unknown operation that cannot change the state is dropped);
* :meth:`Model.revision` and :meth:`Model.result_revision` give a total order of writes the
  responses reveal (etcd's revision): the search then cuts every branch where the model's
  revision passed one some pending operation reported;
* :meth:`Model.facts`, :meth:`Model.refute` and :meth:`Model.cuts` let a model refute a
  history up front from one or two operations, and refuse a write that cannot have created
  what clients saw (see :class:`Cuts`);
* :meth:`Model.keys_of` picks related operations for a failure's evidence.

A model's states must be hashable and compare equal exactly when no client could tell them
apart: (linearized set, state) pairs are the search's memo keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from raftkube_fuzz.checks.history import Ok, Unknown

if TYPE_CHECKING:
    from raftkube_fuzz.checks.linearizability.normalise import Entry

State = TypeVar("State")
Req = TypeVar("Req")
Res = TypeVar("Res")


class Cuts:
    """A model's test of whether an operation may be the write that created a revision.

    Built once per search from every entry and the extra observations (watch events, for
    the KV model); the default refuses nothing."""

    def write_conflict(self, entry: Entry, state: Any) -> str | None:
        """Why ``entry`` cannot have produced ``state`` (whose revision it just created);
        None when it may have."""
        return None


NO_CUTS = Cuts()


class Model(Generic[State, Req, Res]):
    """A sequential specification the linearizability search checks a history against.

    Subclasses implement :meth:`init`, :meth:`apply` and (unless results compare with plain
    equality) :meth:`matches`; the rest are optional (see the module docstring).
    """

    name = "model"

    def init(self) -> State:
        """The state before any operation."""
        raise NotImplementedError

    def apply(self, state: State, request: Req) -> tuple[State, Res]:
        """The state after ``request`` and the result it answers; a pure function. A result
        is never None: the search marks an operation whose outcome is Unknown that way."""
        raise NotImplementedError

    def matches(self, request: Req, model_result: Res, recorded: Res) -> bool:
        """Whether the system's ``recorded`` result is one the model's result allows."""
        return model_result == recorded

    # --- optional hooks, sound by default --------------------------------------------------

    def normalized(self, request: Req, outcome: Ok | Unknown) -> Req | None:
        """``request`` as the model must replay it (fields only the server saw, like a
        clock reading, replaced); None when the operation is unobservable and left out."""
        return request

    def is_read_only(self, request: Req) -> bool:
        """Whether ``request`` can never change the state (an Unknown one is then dropped)."""
        return False

    def revision(self, state: State) -> int:
        """The number of writes ``state`` has seen, if responses reveal it (else 0)."""
        return 0

    def result_revision(self, result: Res) -> int:
        """The revision a response reports (0 when responses reveal none)."""
        return 0

    def facts(self, request: Req, result: Res | None) -> Any:
        """What an operation's response pins down, for :meth:`refute` and :meth:`cuts`
        (``result`` is None for an Unknown operation); computed once per operation."""
        return None

    def refute(self, entries: Sequence[Entry], initial: State) -> None:
        """Raise a Violation for what one or two operations already show, before searching."""

    def cuts(self, entries: Sequence[Entry], watched: Iterable[Any]) -> Cuts:
        """The write cuts for one search over ``entries`` (and ``watched`` observations)."""
        return NO_CUTS

    def keys_of(self, request: Req) -> list[str]:
        """The keys ``request`` names, to pick related operations for a failure's evidence."""
        return []
