"""Lanes, marks, arrows and fault spans: the one reading of a timeline both renderers share.

A trace's timeline is a flat list of lines (:class:`~raftkube_fuzz.timeline.Line`). People read
a run as hosts exchanging messages while faults come and go, so this module turns the lines into
that picture once, and the text timeline (:func:`render_text`) and the HTML drawing
(:mod:`raftkube_fuzz.timeline_html`) both draw from it instead of each parsing the trace.

Everything is derived from the lines' generic fields, never from their text: a line's lane is
its host (``info["host"]``, else the member's host name), arrows come from ``info["flow"]``,
``info["to"]`` and ``info["from"]``, fault spans from ``info["fault"]`` and ``info["hosts"]``.
A suite that adds a new kind of host (an API server, a kubelet) gets its lane by naming the host
in its lines; nothing here lists host kinds. Lines of older traces, which have no ``info``, still
give lanes per member and marks; they just have no arrows or spans.

Fault spans follow the fault kinds the suites record (docs/trace-format.md), as the fault
registry (:mod:`raftkube_fuzz.faults`) declares them: a crash opens a
"down" span on its host that a restart closes, pause/resume a "paused" one, every link fault
(isolate, partition, one-way, bridge) a "cut" span on the hosts it touched that ``heal``
closes, clock faults a "clock" span that ``resync`` closes, a full or read-only disk a "disk"
span that ``disk_freed`` closes on its host, and the network-wide settings
(loss, duplication, latency) a span on the world's lane that the next setting of the same kind
replaces. ``heal_all`` closes everything. A span still open when the timeline ends runs to its
end. A fault kind not listed here is drawn as a mark only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs

import raftkube_fuzz.suites  # noqa: F401  (each suite registers the fault kinds only it injects)
from raftkube_fuzz.faults import NETWORK_WIDE, spans
from raftkube_fuzz.timeline import FAULT, SEND, STEP, WORLD, Line

OPENS, CLOSES, HOST_BOUND_CLOSERS = spans()
"""Fault kind -> the class of span it opens; fault kind -> the classes it closes; the kinds
whose closing applies only to the hosts they name: all from the fault registry
(:func:`raftkube_fuzz.faults.spans`), once every suite registered its own kinds."""

DROPPED = "dropped"


@attrs.frozen
class Lane:
    """One host's row of the drawing; ``group`` is the host kind (the name without its number)."""

    name: str
    group: str


@attrs.frozen
class Mark:
    """One line of the timeline, placed on a lane; ``step`` is the step it happened in (-1:
    before the first step, while the world settled)."""

    index: int
    time: float
    lane: str
    kind: str
    text: str
    step: int
    info: dict[str, Any] | None = attrs.field(default=None, hash=False)


@attrs.frozen
class Arrow:
    """A message or request from one lane to another. ``start`` and ``end`` are mark indices;
    a request's call and answer are drawn at one instant (``start == end``: the trace records
    when the client called and when it got its answer, not when the server read it);
    ``end`` is None for a message nothing was recorded about after it was sent."""

    flow: str
    source: str
    target: str
    start: int
    end: int | None
    outcome: str
    """``delivered``, ``dropped``, ``unseen`` (nothing recorded after the send), ``call`` or
    ``answer``."""


@attrs.frozen
class Span:
    """A fault in force on one lane from ``start`` to ``end`` (virtual times; ``end`` None:
    still in force when the timeline ends). ``mark`` is the index of the mark that opened it."""

    lane: str
    fault: str
    start: float
    end: float | None
    mark: int
    label: str


@attrs.frozen
class ViolationMark:
    """Where the failure was detected: the end of its step, on the lanes its evidence names,
    ``mark`` being the evidence's event when the timeline holds it."""

    prop: str
    message: str
    step: int
    time: float
    lanes: tuple[str, ...]
    mark: int | None


@attrs.frozen
class Model:
    lanes: tuple[Lane, ...]
    marks: tuple[Mark, ...]
    arrows: tuple[Arrow, ...]
    spans: tuple[Span, ...]
    steps: tuple[int, ...]
    """The index of each step's mark, in step order."""
    violation: ViolationMark | None
    end_time: float


_NUMBERED = re.compile(r"^(.*?)[-_]?(\d+)$")


def host_group(name: str) -> str:
    """``m2`` -> ``m``, ``kubelet-1`` -> ``kubelet``, ``world`` -> ``world``."""
    match = _NUMBERED.match(name)
    return match.group(1) if match and match.group(1) else name


def _lane_order(name: str, first_seen: dict[str, int]) -> tuple[int, int, str, int]:
    """Store members first, then clients, then other host kinds in order of first appearance,
    the world last; hosts of one kind by number."""
    group = host_group(name)
    rank = {"m": 0, "c": 1}.get(group, 2)
    if name == WORLD:
        rank = 3
    match = _NUMBERED.match(name)
    number = int(match.group(2)) if match else -1
    return (rank, first_seen[group], group, number)


def _lanes(marks: Sequence[Mark], extra: Iterable[str]) -> tuple[Lane, ...]:
    first_seen: dict[str, int] = {}
    names: list[str] = []
    for name in [*(m.lane for m in marks), *extra]:
        first_seen.setdefault(host_group(name), len(first_seen))
        if name not in names:
            names.append(name)
    ordered = sorted(names, key=lambda name: _lane_order(name, first_seen))
    return tuple(Lane(name, host_group(name)) for name in ordered)


def build(lines: Sequence[Line], violation: Any | None = None) -> Model:
    """The model of ``lines``; ``violation`` is anything with ``prop``, ``message``, ``step``
    and ``evidence`` (a trace's record or a replay's :class:`Violation`)."""
    marks: list[Mark] = []
    arrows: list[Arrow] = []
    steps: list[int] = []
    flow_start: dict[str, Mark] = {}
    step = -1
    for index, line in enumerate(lines):
        info = line.info or {}
        flow = info.get("flow")
        lane = line.host
        start = flow_start.get(flow) if isinstance(flow, str) else None
        if line.kind == STEP:
            step += 1
            steps.append(index)
        elif start is not None and info.get("fault") == DROPPED:
            lane = str((start.info or {}).get("to", lane))  # lost on its way to the target
        mark = Mark(index, line.time, lane, line.kind, line.text, step, line.info)
        marks.append(mark)
        if not isinstance(flow, str):
            continue
        if start is None:
            flow_start[flow] = mark
            if "to" in info and line.kind != SEND:
                arrows.append(Arrow(flow, lane, str(info["to"]), index, index, "call"))
        elif "from" in info:
            arrows.append(Arrow(flow, str(info["from"]), lane, index, index, "answer"))
        elif line.kind == FAULT and info.get("fault") == DROPPED:
            arrows.append(Arrow(flow, start.lane, lane, start.index, index, DROPPED))
        elif line.kind != FAULT and lane != start.lane:
            arrows.append(Arrow(flow, start.lane, lane, start.index, index, "delivered"))
    arrived = {a.flow for a in arrows}
    for flow, start in flow_start.items():
        if start.kind == SEND and flow not in arrived:
            target = str((start.info or {}).get("to", start.lane))
            arrows.append(Arrow(flow, start.lane, target, start.index, None, "unseen"))
    end_time = marks[-1].time if marks else 0.0
    spans = _spans(marks)
    mark_of_violation = _violation(marks, steps, violation)
    extra = [s.lane for s in spans]
    if mark_of_violation is not None:
        extra.extend(mark_of_violation.lanes)
    extra.extend(a.target for a in arrows)
    return Model(
        lanes=_lanes(marks, extra),
        marks=tuple(marks),
        arrows=tuple(sorted(arrows, key=lambda a: a.start)),
        spans=tuple(spans),
        steps=tuple(steps),
        violation=mark_of_violation,
        end_time=end_time,
    )


def _spans(marks: Sequence[Mark]) -> list[Span]:
    """Fault spans, opened and closed by fault marks as the module docstring says."""
    spans: list[Span] = []
    open_spans: dict[tuple[str, str], Span] = {}

    def close(key: tuple[str, str], time: float) -> None:
        span = open_spans.pop(key)
        spans.append(attrs.evolve(span, end=time))

    for mark in marks:
        info = mark.info or {}
        kind = info.get("fault")
        if mark.kind != FAULT or not isinstance(kind, str):
            continue
        touched = [str(h) for h in info.get("hosts", [])] or (
            [mark.lane] if mark.lane != WORLD else []
        )
        if kind in OPENS:
            fault = OPENS[kind]
            # A fault that names no host is the world's (a partition of an older trace, say).
            lanes = [WORLD] if fault in NETWORK_WIDE or not touched else touched
            for lane in lanes:
                key = (lane, fault)
                if key in open_spans:
                    if fault not in NETWORK_WIDE:
                        continue  # already in force here; the mark still shows the new fault
                    close(key, mark.time)
                open_spans[key] = Span(lane, fault, mark.time, None, mark.index, mark.text)
        elif kind in CLOSES:
            ending = CLOSES[kind]
            for key in sorted(open_spans):
                lane, fault = key
                if fault in ending and (kind not in HOST_BOUND_CLOSERS or lane in touched):
                    close(key, mark.time)
    spans.extend(open_spans[key] for key in sorted(open_spans))
    return sorted(spans, key=lambda s: (s.start, s.lane, s.fault))


def _violation(
    marks: Sequence[Mark], steps: Sequence[int], violation: Any | None
) -> ViolationMark | None:
    if violation is None or not marks:
        return None
    step = int(violation.step)
    # The failure was detected at the end of its step: the last mark before the next step.
    end = steps[step + 1] - 1 if step + 1 < len(steps) else len(marks) - 1
    time = marks[max(end, 0)].time
    evidence = violation.evidence if isinstance(violation.evidence, dict) else {}
    lanes: list[str] = []
    for key in ("member", "host"):
        value = evidence.get(key)
        if isinstance(value, bool) or value is None:
            continue
        lanes.append(f"m{value}" if isinstance(value, int) else str(value))
    event = evidence.get("event")
    found: int | None = None
    if isinstance(event, str):
        for mark in reversed(marks[: end + 1]):
            if mark.text == event:
                found = mark.index
                lanes.append(mark.lane)
                break
    return ViolationMark(
        prop=str(violation.prop),
        message=str(violation.message),
        step=step,
        time=time,
        lanes=tuple(dict.fromkeys(lanes)),
        mark=found,
    )


def render_text(model: Model) -> Iterator[str]:
    """The text timeline: one mark a line, with where each message or request went."""
    targets: dict[int, list[str]] = {}
    for arrow in model.arrows:
        if arrow.outcome in ("call", "unseen") or arrow.start != arrow.end:
            targets.setdefault(arrow.start, []).append(f"-> {arrow.target}")
        if arrow.outcome == "answer":
            targets.setdefault(arrow.start, []).append(f"<- {arrow.source}")
    width = max([5, *(len(lane.name) for lane in model.lanes)])
    for mark in model.marks:
        where = targets.get(mark.index)
        suffix = f"  ({', '.join(dict.fromkeys(where))})" if where else ""
        yield f"{mark.time:12.6f}  {mark.lane:>{width}}  {mark.kind:<6} {mark.text}{suffix}"
