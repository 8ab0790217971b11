"""Controller expectations: client-go-era ``pkg/controller`` ``ControllerExpectations`` and
``UIDTrackingControllerExpectations``.

A controller that creates or deletes pods learns of the result only when its pod informer
delivers it. Until then its cache still shows the old set of pods, and a sync that trusted it
would create (or delete) the same pods again: the over-creation of kubernetes #88851. So before
it writes, the controller records how many creations and which deletions it expects for the
owner's key; its pod event handlers count them down as the informer reports them, and
``manage replicas'' runs only while :meth:`ControllerExpectations.satisfied` holds: nothing is
pending, or the record is older than :data:`EXPECTATIONS_TIMEOUT` (a watch event that never came
must not block the owner forever; upstream's 5 minutes).

Deletions are tracked by pod key (the uid-tracking variant), so a pod reported twice (marked
for deletion, then gone) lowers the count once.
"""

from __future__ import annotations

import attrs

from raftkube.clock import Clock

EXPECTATIONS_TIMEOUT = 5 * 60.0
"""upstream's ``ExpectationsTimeout``."""


@attrs.define
class ControlleeExpectations:
    """What one owner still waits to observe: ``add`` creations and ``delete`` deletions,
    recorded at ``timestamp`` (the controller's clock)."""

    add: int
    delete: int
    timestamp: float

    def fulfilled(self) -> bool:
        return self.add <= 0 and self.delete <= 0


@attrs.define
class ControllerExpectations:
    """Expectations per owner key (``namespace/name``); see the module docstring."""

    clock: Clock
    timeout: float = EXPECTATIONS_TIMEOUT
    _records: dict[str, ControlleeExpectations] = attrs.field(factory=dict, init=False)
    _deleting: dict[str, set[str]] = attrs.field(factory=dict, init=False)

    def get(self, key: str) -> ControlleeExpectations | None:
        return self._records.get(key)

    def satisfied(self, key: str) -> bool:
        """upstream's ``SatisfiedExpectations``: whether the owner may be managed now."""
        record = self._records.get(key)
        if record is None:
            return True  # a new owner, or one whose expectations were dropped
        if record.fulfilled():
            return True
        return self.clock.now() - record.timestamp > self.timeout

    def expect_creations(self, key: str, count: int) -> None:
        """Replace the owner's record: ``count`` creations pending, no deletions."""
        self._records[key] = ControlleeExpectations(count, 0, self.clock.now())
        self._deleting.pop(key, None)

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        """Replace the owner's record: the deletion of each of ``pod_keys`` pending."""
        self._records[key] = ControlleeExpectations(0, len(pod_keys), self.clock.now())
        self._deleting[key] = set(pod_keys)

    def creation_observed(self, key: str) -> None:
        """A pod created for the owner appeared (or its creation failed)."""
        record = self._records.get(key)
        if record is not None:
            record.add -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        """``pod_key`` was seen deleted (or its deletion failed); counted once per pod."""
        pending = self._deleting.get(key)
        if pending is None or pod_key not in pending:
            return
        pending.discard(pod_key)
        record = self._records.get(key)
        if record is not None:
            record.delete -= 1

    def delete_expectations(self, key: str) -> None:
        """Forget the owner (it was deleted)."""
        self._records.pop(key, None)
        self._deleting.pop(key, None)
