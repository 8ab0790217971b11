"""Sync tracing: who may learn that a control loop starts acting on its caches, and how.

A control loop reads its informers' caches at the start of a sync (a controller's
``sync(key)``, a scheduler's decision for one pod) and acts on what it read. A tool that
wants to judge each request against what the loop had read (a conformance checker, a
tracer drawing which cache state led to which write) needs the moment and the caches; the
loop's own code should not have to know such a tool exists.

So the shells tell this module, and this module tells the *sync listener* of the current
context, if any: :func:`sync_started` calls it with the loop's name, the key and the
informers the loop reads, synchronously, in the task that is about to sync, before the sync
reads anything. A listener is installed with :func:`listen_to_syncs` in the task that runs a
component (the controller manager's or the scheduler's root task) and, as a
:mod:`contextvars` value, reaches every task that component starts afterwards (Trio gives
each new task a copy of its parent's context), and no other component's. Production installs
none, and then a sync costs one context lookup.

A listener must be quick and must not raise or block; it may set context variables of its
own, which then hold for the rest of that sync in its task and in the tasks the sync starts
(a slow-start batch of creates, a scheduler's binding), which is how a checker ties each
request to the caches it came from.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from raftkube.controllers.informer import SharedIndexInformer

SyncListener = Callable[[str, str, "Sequence[SharedIndexInformer]"], None]
"""``(loop name, key, informers the loop reads)``: see the module docstring."""

_LISTENER: contextvars.ContextVar[SyncListener | None] = contextvars.ContextVar(
    "raftkube_sync_listener", default=None
)


def listen_to_syncs(listener: SyncListener | None) -> None:
    """Make ``listener`` the current task's sync listener (None: no listener), for the rest of
    this task and every task it starts from now on."""
    _LISTENER.set(listener)


def sync_started(loop: str, key: str, informers: Sequence[SharedIndexInformer]) -> None:
    """Tell the current context's listener, if any, that ``loop`` starts syncing ``key`` from
    ``informers``' caches."""
    listener = _LISTENER.get()
    if listener is not None:
        listener(loop, key, informers)
