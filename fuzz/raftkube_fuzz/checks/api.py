"""What a check is: an object the run calls at three moments, each of which may raise a
:class:`~raftkube_fuzz.violation.Violation`.

* :meth:`Check.on_event`: every event a member's core reports, synchronously inside the
  member (conformance runs here, so the first bad event is caught where it happens). The
  run's listener keeps the first verdict instead of raising it into the member's task.
* :meth:`Check.after_step`: after every step (and twice in the final pseudo-step, before
  and after every fault is healed).
* :meth:`Check.at_end`: once, at the end of an example, after every fault healed and the
  cluster served again.

A suite assembles its checks (:attr:`Suite.checks <raftkube_fuzz.suites.base.Suite.checks>`),
and the run calls them in that fixed order at each moment, so the first violation wins as it
always did: a check later in the list is not run once an earlier one has failed. The harness's
own failures (an exception escaping a member, a checker's verdict from inside one) are
raised before any check runs, since everything after them would judge a broken world.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from raftkube_fuzz.example import Run


class Check:
    """A check; every hook is optional (the defaults check nothing)."""

    name = "check"

    def on_event(self, member_id: int, event: Any) -> None:
        """A member's core reported ``event`` (called inside the simulation)."""

    def after_step(self, run: Run) -> None:
        """What must hold after any step."""

    def at_end(self, run: Run) -> None:
        """What must hold once the healed cluster serves again."""

    def watches_events(self) -> bool:
        """Whether :meth:`on_event` is overridden: the listener calls only those checks at
        every event, which spares the others a call on the simulation's hottest path."""
        return type(self).on_event is not Check.on_event
