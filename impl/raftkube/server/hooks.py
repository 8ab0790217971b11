"""What an observer of a running member may be told, without reaching into its internals.

A checker in the simulator (or a metrics exporter) needs to know about a few moments inside a
member that no event of the Raft core reports: the state machine being replaced by a leader's
snapshot, and a read being served from a lease. The member calls these hooks at exactly those
moments; production leaves them unset. A hook runs synchronously in the member's own task, so
it must not block, and whatever it raises propagates into the member.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from raftkube.mvcc import MvccStore


@attrs.define(eq=False)
class MemberHooks:
    """The member's hooks; each is ``None`` (nobody listens) or a callable."""

    store_replaced: Callable[[MvccStore, int], None] | None = None
    """A leader's snapshot replaced the state machine: the new store and the index it is at
    (whoever follows the store's writes subscribes to the new one here)."""
    lease_read: Callable[[int], None] | None = None
    """A linearizable read is about to be served from this leader's lease (no ReadIndex
    round), in the given term."""
