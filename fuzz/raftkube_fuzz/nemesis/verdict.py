"""Judging a nemesis run: the fuzzer's checkers on the recorded history, and lost writes.

Linearizability and watch delivery are checked by exactly the functions a simulated run ends
with (:func:`~raftkube_fuzz.checks.watches.check_client_views`, then
:func:`~raftkube_fuzz.checks.watches.check_complete`). The completeness check needs what was
written at each revision; a simulated run takes that from the stores' observers, which real
processes do not offer, so here it comes from the linearizability witness, which is exactly
what the history and the watches together proved was committed.

Lost writes are counted separately and more bluntly, as Jepsen does, against the final
linearizable read of every workload key: an acknowledged put (or a transaction's put that
reported success) at revision ``r`` is lost if the key's final record is older than ``r``,
holds another value at ``r``, or is missing although no delete that could have removed it
(one acknowledged at a later revision, or one whose outcome is unknown) exists.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

import raftkube_spec.kv as kv
from raftkube_fuzz.checks.history import History, Ok, Operation, Unknown, describe
from raftkube_fuzz.checks.linearizability import LinearizabilityUndecided
from raftkube_fuzz.checks.watches import (
    WatchRecord,
    check_client_views,
    check_complete,
    events_from_linearization,
)
from raftkube_fuzz.violation import Violation
from raftkube_spec.kv.keyrange import KeyRange

SEARCH_STEPS = 5_000_000
"""The linearizability search's budget of model applications: a long real run records tens
of thousands of operations, each applied at least once."""


@attrs.frozen
class Verdict:
    """What the checks found; ``violation`` is the first property that failed, if any."""

    violation: Violation | None
    acknowledged_writes: int
    lost_writes: tuple[str, ...]
    undecided: str | None = None

    @property
    def linearizable(self) -> bool | None:
        """True, False, or None when the search gave up (neither proven nor refuted)."""
        if self.undecided is not None:
            return None
        return self.violation is None or self.violation.prop not in (
            "Linearizability",
            "LinearizabilityUndecided",
        )


def judge(
    history: History, records: Sequence[WatchRecord], final_read: Operation | None
) -> Verdict:
    """Run the checkers over a finished run's history and watches."""
    violation: Violation | None = None
    undecided: str | None = None
    try:
        witness = check_client_views(history, records, max_steps=SEARCH_STEPS)
        committed = events_from_linearization(witness)
        written: dict[int, list[kv.KeyValue]] = {}
        for event in committed.events:
            written.setdefault(event.kv.mod_revision, []).append(event.kv)
        check_complete(records, written)
    except Violation as exc:
        violation = exc
    except LinearizabilityUndecided as exc:
        undecided = str(exc)
    acknowledged, lost = lost_writes(history, final_read)
    return Verdict(violation, acknowledged, tuple(lost), undecided)


def _acknowledged_puts(op: Operation) -> list[tuple[bytes, bytes, int]]:
    """The (key, value, revision) of every put ``op`` is known to have made."""
    if not isinstance(op.outcome, Ok):
        return []
    result, request = op.outcome.result, op.request
    if isinstance(request, kv.PutRequest) and isinstance(result, kv.PutResponse):
        return [(request.key, request.value, result.header.revision)]
    if (
        isinstance(request, kv.TxnRequest)
        and isinstance(result, kv.TxnResponse)
        and result.succeeded
    ):
        return [
            (put.key, put.value, result.header.revision)
            for put in request.success
            if isinstance(put, kv.PutRequest)
        ]
    return []


def _may_delete_after(op: Operation, key: bytes, revision: int) -> bool:
    """Could ``op`` have deleted ``key`` after ``revision``?"""
    request = op.request
    if not isinstance(request, kv.DeleteRangeRequest):
        return False
    if key not in KeyRange.of(request.key, request.range_end):
        return False
    if op.outcome is None or isinstance(op.outcome, Unknown):
        return True
    if not isinstance(op.outcome, Ok):
        return False
    result = op.outcome.result
    return (
        isinstance(result, kv.DeleteRangeResponse)
        and result.deleted > 0
        and result.header.revision > revision
    )


def lost_writes(history: History, final_read: Operation | None) -> tuple[int, list[str]]:
    """How many puts were acknowledged, and a line for each one the final read lost."""
    operations = history.operations()
    puts = [put for op in operations for put in _acknowledged_puts(op)]
    if final_read is None or not isinstance(final_read.outcome, Ok):
        return len(puts), []
    answer = final_read.outcome.result
    if not isinstance(answer, kv.RangeResponse):
        raise TypeError(f"the final read answered {describe(answer)}")
    final = {record.key: record for record in answer.kvs}
    lost: list[str] = []
    for key, value, revision in puts:
        record = final.get(key)
        if record is None:
            if not any(_may_delete_after(op, key, revision) for op in operations):
                lost.append(f"{key!r}={value!r} at revision {revision}: the key is gone")
        elif record.mod_revision < revision:
            lost.append(
                f"{key!r}={value!r} at revision {revision}: the key holds an older record "
                f"(revision {record.mod_revision})"
            )
        elif record.mod_revision == revision and record.value != value:
            lost.append(
                f"{key!r}={value!r} at revision {revision}: that revision holds {record.value!r}"
            )
    return len(puts), lost
