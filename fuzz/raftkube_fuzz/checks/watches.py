"""Did every watcher see exactly the committed events of its range, in order, or hear why not?

The authoritative events come from the spec: replay the committed writes (the witness order
of the linearizability check, or the committed log) through :func:`raftkube_spec.kv.apply`
and ask :func:`raftkube_spec.kv.watch_events` for everything since the start. A member's
applied log is a prefix of the committed one, so whatever a watch on any member delivered
must be a gapless, duplicate-free prefix of the expected events of its range from its start
revision. A watch may also end early: cancelled (crash, client) with any prefix, or with a
compaction notice, which is only legitimate when the next revision the watcher still needed
is below the compaction revision (otherwise the member threw away a healthy watch).

Compaction requests are skipped in the replay: they write no events, and a compacted model
would no longer hold the history the expected events come from. ``prev_kv`` is not compared
(it depends on when the member compacted relative to delivery, and the simulated clients do
not ask for it); events are compared on type and the full key-value record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

import raftkube_spec.kv as kv
from raftkube_fuzz.checks.history import History
from raftkube_fuzz.checks.linearizability import (
    DEFAULT_MAX_STEPS,
    Linearization,
    SearchMemo,
    find_linearization,
)
from raftkube_fuzz.violation import Violation
from raftkube_spec.kv.keyrange import KeyRange


@attrs.frozen
class WatchRecord:
    """What one watch delivered, in delivery order, and how it ended.

    ``start_revision`` is the effective first revision (a watch "from now" resolved to the
    member's revision + 1 when it was created). ``end`` is ``"open"``, ``"cancelled"`` or
    ``"compacted"`` (then ``compact_revision`` is the notice's revision). ``label`` names the
    watch in evidence (e.g. which client and member).
    """

    key: bytes
    range_end: bytes
    start_revision: int
    events: tuple[kv.Event, ...]
    end: str = "open"
    compact_revision: int | None = None
    label: str = ""
    caught_up_to: int | None = None
    """For a watch still open at the end on a member that stayed up: that member's revision
    once everything was applied and delivered. Every committed event of the range from the
    start revision through it must then have been delivered (:func:`check_complete`)."""


@attrs.frozen
class CommittedEvents:
    """Every event of the committed writes in revision order (key order within a revision).

    ``known_through`` is the last revision these events are authoritative for; None means
    the list is complete, so a delivered event beyond it was never committed. A witness order
    from the linearizability check is only authoritative up to its final revision, because
    Unknown writes it left out may still have been committed later.
    """

    events: tuple[kv.Event, ...]
    known_through: int | None = None


def committed_events(
    requests: Iterable[kv.Request],
    *,
    initial: kv.KVState | None = None,
    known_through: int | None = None,
) -> CommittedEvents:
    """Replay ``requests`` (in commit order) through the spec and collect their events."""
    state = initial if initial is not None else kv.initial_state()
    for request in requests:
        if not isinstance(request, kv.CompactionRequest):
            state, _ = kv.apply(state, request)
    every = kv.watch_events(state, b"", kv.FROM_KEY, start_revision=max(1, state.compact_revision))
    assert not isinstance(every, kv.WatchCompacted)
    return CommittedEvents(every, known_through)


def events_from_linearization(lin: Linearization) -> CommittedEvents:
    """The events of a linearizability witness, authoritative up to its final revision."""
    return committed_events(
        lin.requests, initial=lin.initial, known_through=lin.final_state.revision
    )


def check_client_views(
    history: History,
    records: Sequence[WatchRecord],
    *,
    initial: kv.KVState | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    memo: SearchMemo | None = None,
) -> Linearization:
    """Check the history and the watches together; returns the witness both agree with.

    The witness is searched with the watches' events as observations, since only they may
    say which Unknown write took a revision no read pinned down. If no witness agrees with
    them, the reads alone are checked: failing there is a Linearizability violation; passing
    means the watches are at fault, and the first watch that disagrees with the reads'
    witness is reported as a WatchDelivery violation.

    ``memo`` is the run's :class:`SearchMemo`, if the history was searched before.
    """
    watched = [e for record in records for e in record.events]
    try:
        witness = find_linearization(
            history, initial=initial, watched=watched, max_steps=max_steps, memo=memo
        )
    except Violation:
        blind = find_linearization(history, initial=initial, max_steps=max_steps, memo=memo)
        check_watches(records, events_from_linearization(blind))
        raise
    check_watches(records, events_from_linearization(witness))
    return witness


def check_watches(records: Sequence[WatchRecord], committed: CommittedEvents) -> None:
    """Raise :class:`Violation` ("WatchDelivery") on the first watch that broke its contract."""
    for record in records:
        _check_one(record, committed)


def check_complete(
    records: Sequence[WatchRecord], written: Mapping[int, Sequence[kv.KeyValue]]
) -> None:
    """Raise :class:`Violation` ("WatchDelivery") if a watch that is still open left out a
    committed event of its range it should have delivered by now.

    The prefix check (:func:`check_watches`) cannot see this: an empty stream is a prefix of
    anything, so a watch that silently starts late, or stalls, passes it. ``written`` is what
    the members' stores reported writing, by revision (every store's observer, so every
    revision some member applied), which is ground truth rather than a search's witness."""
    for record in records:
        if record.end != "open" or record.caught_up_to is None:
            continue
        keys = KeyRange.of(record.key, record.range_end)
        delivered = {(e.kv.mod_revision, e.kv.key) for e in record.events}
        for revision in range(record.start_revision, record.caught_up_to + 1):
            for kv_record in written.get(revision, ()):
                if kv_record.key in keys and (revision, kv_record.key) not in delivered:
                    raise Violation(
                        "WatchDelivery",
                        f"watch {_name(record)} is open and its member is at revision "
                        f"{record.caught_up_to}, but it never delivered the event of "
                        f"{kv_record.key!r} at revision {revision}",
                        {
                            "watch": _render_watch(record),
                            "missing_revision": revision,
                            "missing_key": repr(kv_record.key),
                            "delivered_revisions": sorted({r for r, _ in delivered})[:20],
                        },
                    )


def _stripped(event: kv.Event) -> kv.Event:
    return event if event.prev_kv is None else attrs.evolve(event, prev_kv=None)


def _check_one(record: WatchRecord, committed: CommittedEvents) -> None:
    keys = KeyRange.of(record.key, record.range_end)
    horizon = committed.known_through
    expected = [
        e
        for e in committed.events
        if e.kv.key in keys
        and e.kv.mod_revision >= record.start_revision
        and (horizon is None or e.kv.mod_revision <= horizon)
    ]
    delivered = [_stripped(e) for e in record.events]
    judged = delivered
    if horizon is not None:
        cut = next(
            (i for i, e in enumerate(delivered) if e.kv.mod_revision > horizon), len(delivered)
        )
        judged = delivered[:cut]
    for i, event in enumerate(judged):
        want = expected[i] if i < len(expected) else None
        if event != want:
            what = _what_went_wrong(judged, expected, i)
            raise _violation(record, i, event, want, delivered, what)
    if record.end == "compacted":
        _check_compaction(record, delivered)


def _what_went_wrong(delivered: list[kv.Event], expected: list[kv.Event], i: int) -> str:
    """Name the first discrepancy, at position ``i``, in the terms of the watch contract."""
    event = delivered[i]
    if event in delivered[:i]:
        return "duplicate event"
    if event not in expected:
        same_slot = any(
            e.kv.key == event.kv.key and e.kv.mod_revision == event.kv.mod_revision
            for e in expected
        )
        return "event differs from the committed one" if same_slot else "event never committed"
    if expected[i] in delivered[i + 1 :]:
        return "events out of revision order"
    return "skipped a committed event"


def _check_compaction(record: WatchRecord, delivered: list[kv.Event]) -> None:
    needed = delivered[-1].kv.mod_revision + 1 if delivered else record.start_revision
    notice = record.compact_revision
    if notice is None or needed >= notice:
        raise Violation(
            "WatchDelivery",
            f"watch {_name(record)} was cancelled as compacted at {notice} although the next "
            f"revision it needed, {needed}, was not compacted",
            {
                "watch": _render_watch(record),
                "next_needed": needed,
                "delivered_tail": [_event_text(e) for e in delivered[-3:]],
            },
        )


def _violation(
    record: WatchRecord,
    i: int,
    event: kv.Event,
    want: kv.Event | None,
    delivered: list[kv.Event],
    what: str,
) -> Violation:
    evidence: dict[str, Any] = {
        "watch": _render_watch(record),
        "index": i,
        "delivered": _event_text(event),
        "expected": None if want is None else _event_text(want),
        "delivered_around": [_event_text(e) for e in delivered[max(0, i - 3) : i + 2]],
    }
    return Violation(
        "WatchDelivery",
        f"watch {_name(record)}: {what} at position {i}: got {_event_text(event)}, expected "
        f"{'nothing' if want is None else _event_text(want)}",
        evidence,
    )


def _name(record: WatchRecord) -> str:
    label = f" ({record.label})" if record.label else ""
    return f"[{record.key!r}, {record.range_end!r}) from {record.start_revision}{label}"


def _render_watch(record: WatchRecord) -> dict[str, Any]:
    return {
        "label": record.label,
        "key": repr(record.key),
        "range_end": repr(record.range_end),
        "start_revision": record.start_revision,
        "end": record.end,
        "compact_revision": record.compact_revision,
        "caught_up_to": record.caught_up_to,
        "delivered_count": len(record.events),
    }


def _event_text(event: kv.Event) -> str:
    record = event.kv
    if event.type is kv.EventType.DELETE:
        return f"DELETE {record.key!r} @{record.mod_revision}"
    return (
        f"PUT {record.key!r}={record.value!r} @{record.mod_revision} "
        f"(created {record.create_revision}, version {record.version}, lease {record.lease})"
    )
