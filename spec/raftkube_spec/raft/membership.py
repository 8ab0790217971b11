"""Membership changes: which configuration a server is in, and which changes a leader may make.

Single-server changes (Raft dissertation, section 4.1) rather than joint consensus: each change
adds, promotes or removes one server, so the majorities of the old and the new configuration
always overlap and no intermediate joint configuration is needed. etcd does the same
(``etcdctl member add/remove/promote`` each change one member). What makes it safe:

* A configuration takes effect on a server as soon as the entry is in its log, committed or
  not, and a truncated log falls back to the configuration before it: a server's
  configuration is simply the last one in its log (:func:`membership_of`).
* At most one change is uncommitted at a time: two uncommitted single-server changes could
  add up to a change of two servers, whose majorities need not overlap.
* A leader proposes a change only once it has committed an entry of its own term. Without
  this, a leader of an old term with an uncommitted change and a leader of a newer term with
  another can each reach a majority of a different configuration: the bug Ongaro reported on
  raft-dev in 2015, kept as the mutant ``config-change-before-own-term-commit``. etcd gets
  the same effect from its ``pendingConfIndex`` (a new leader's last index, so a change waits
  until the leader's empty entry is applied).

A leader does not remove itself here: the implementation hands leadership to another voter
first, which the model already has (TransferLeadership), so the dissertation's "leader steps
down once its removal commits" is never needed.
"""

from __future__ import annotations

from .config import RaftConfig
from .types import Entry, Membership


def initial_membership(config: RaftConfig) -> Membership:
    """Every server votes without ``membership``; with it, all but the ``spares`` do."""
    voters = config.servers - (config.spares if config.membership else 0)
    return Membership(voters=tuple(range(voters)))


def membership_of(log: tuple[Entry, ...], initial: Membership) -> Membership:
    """The configuration a server with ``log`` is in: the last configuration entry, or the
    initial configuration if there is none."""
    for entry in reversed(log):
        if isinstance(entry.value, Membership):
            return entry.value
    return initial


def membership_index(log: tuple[Entry, ...]) -> int:
    """The index of the last configuration entry in ``log`` (0 if none)."""
    for index in range(len(log), 0, -1):
        if isinstance(log[index - 1].value, Membership):
            return index
    return 0
