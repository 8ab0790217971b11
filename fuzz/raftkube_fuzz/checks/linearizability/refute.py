"""Refuting a history before (and while) searching: cheap checks with small evidence, and
the tables of observations the search's cuts rest on.

Each refutation here needs one or two operations as evidence, which is why they run before
the search (whose own failure report can only say where every order got stuck): two
operations in real-time order whose headers go backwards, a read of a value nothing wrote,
two different records seen for one key at one revision. The tables (revisions completed
writes claimed, records clients and watches saw by revision) are what the search's
:meth:`~raftkube_fuzz.checks.linearizability.kv_model.KVCuts.write_conflict` cuts consult.
All but the first are the KV model's (:mod:`.kv_model`).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter

import raftkube_spec.kv as kv
from raftkube_fuzz.checks.history import describe
from raftkube_fuzz.checks.linearizability.normalise import Entry
from raftkube_fuzz.checks.linearizability.render import render
from raftkube_fuzz.violation import Violation


def check_revisions_never_go_back(entries: Sequence[Entry], initial: int) -> None:
    """The cheapest refutation, with the smallest evidence: two operations in real-time order
    whose headers go backwards (a stale read, a lost write). Revisions never decrease, so if
    ``p`` returned before ``o`` was called, ``o``'s header is at least ``p``'s. Any model
    whose responses reveal a revision (:meth:`.Model.result_revision`) gets it; ``initial``
    is the initial state's revision. An answer that reveals no revision (0) takes no part."""
    done = sorted(
        (e for e in entries if e.expected is not None and e.revision > 0), key=attrgetter("ret")
    )
    latest: Entry | None = None
    j = 0
    for o in sorted(done, key=attrgetter("call")):
        while j < len(done) and done[j].ret < o.call:
            if latest is None or done[j].revision > latest.revision:
                latest = done[j]
            j += 1
        if o.revision < initial:
            raise Violation(
                "Linearizability",
                f"op {o.op.op_id} reports revision {o.revision}, below the initial {initial}",
                {"operations": [render(o.op)]},
            )
        if latest is not None and o.revision < latest.revision:
            raise Violation(
                "Linearizability",
                f"revision went back: op {o.op.op_id} (called at {o.call}) reports revision "
                f"{o.revision} after op {latest.op.op_id} returned revision "
                f"{latest.revision} at {latest.ret}",
                {"operations": [render(latest.op), render(o.op)]},
            )


def check_seen_records(entries: Sequence[Entry], initial: kv.KVState) -> None:
    """Refute up front what no order can explain, with one or two operations as evidence.

    A record, once written at a revision, never changes, so two clients seeing different
    records for one key at one revision cannot both be right; and a value no request that may
    have been applied ever wrote cannot be read.
    """
    written = {(r.key, r.value) for h in initial.keys for r in h.records}
    for e in entries:
        written.update(e.facts.written)
    first: dict[tuple[bytes, int], tuple[kv.KeyValue, Entry]] = {}
    for e in entries:
        for seen in e.facts.seen:
            if (seen.key, seen.value) not in written:
                raise Violation(
                    "Linearizability",
                    f"op {e.op.op_id} read {describe(seen)}, a value no request wrote",
                    {"operations": [render(e.op)]},
                )
            earlier, by = first.setdefault((seen.key, seen.mod_revision), (seen, e))
            if earlier != seen:
                raise Violation(
                    "Linearizability",
                    f"ops {by.op.op_id} and {e.op.op_id} saw different records of "
                    f"{seen.key!r} at revision {seen.mod_revision}: {describe(earlier)} and "
                    f"{describe(seen)}",
                    {"operations": [render(by.op), render(e.op)]},
                )


def claimed_revisions(entries: Sequence[Entry]) -> set[int]:
    """Revisions that completed writes certainly created (their response headers)."""
    return {e.revision for e in entries if e.facts.wrote}


def observed_records(
    entries: Sequence[Entry], watched: tuple[kv.Event, ...]
) -> dict[int, list[kv.KeyValue]]:
    """Every record some client saw, by the revision that created it (deduplicated, sorted).

    A watch's DELETE event carries the tombstone itself, which the model stores in the same
    shape, so deletions are pinned down as exactly as puts.
    """
    found: dict[int, set[kv.KeyValue]] = {}
    for e in entries:
        for seen in e.facts.seen:
            found.setdefault(seen.mod_revision, set()).add(seen)
    for event in watched:
        found.setdefault(event.kv.mod_revision, set()).add(event.kv)
    return {
        rev: sorted(records, key=lambda r: (r.key, r.create_revision, r.version, r.value))
        for rev, records in found.items()
    }


def created_records(observed: dict[int, list[kv.KeyValue]]) -> dict[int, list[kv.KeyValue]]:
    """The live records among ``observed``, by the revision that began their key's generation
    (a tombstone starts none). Deduplicated by key: one record per key and revision says all."""
    found: dict[int, dict[bytes, kv.KeyValue]] = {}
    for records in observed.values():
        for seen in records:
            if not seen.is_tombstone and seen.create_revision > 0:
                found.setdefault(seen.create_revision, {}).setdefault(seen.key, seen)
    return {rev: [by_key[k] for k in sorted(by_key)] for rev, by_key in found.items()}
