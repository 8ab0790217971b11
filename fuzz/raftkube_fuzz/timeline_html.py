"""The HTML timeline of a run: one self-contained page a person reads in any browser.

Drawn from the shared :class:`~raftkube_fuzz.timeline_model.Model`: one column (lane) per host,
virtual time running down the page, each timeline line a dot on its host's lane, messages and
requests as arrows between lanes, faults as shaded spans on the lanes they held, each step as a
rule across the page, and the violation as a red rule at the point it was detected.

The vertical axis is virtual time, but not linear: every instant at which something happened
gets a row per line it holds on its busiest lane, and the gap to the next instant grows with the
time between them up to a cap (a capped gap is labelled with the time it skips). A linear axis
would pile the hundreds of lines of one election into a pixel and spend screens on idle waits.

The page is built with ``xml.etree.ElementTree``, so every text from the trace is escaped by the
serializer; it holds inline SVG, CSS and a few lines of script (details of the line under the
pointer, a click on the table scrolls to its dot) and loads nothing from anywhere. Without
script, each dot's tooltip (``<title>``) and the table still give every detail.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from raftkube_fuzz.timeline import CHECK, CLIENT, EVENT, FAULT, SEND, STEP
from raftkube_fuzz.timeline_model import Arrow, Mark, Model, Span

AXIS_WIDTH = 110
LANE_WIDTH = 180
ROW = 13
"""Height of one line's row within an instant."""
TOP = 8
PX_PER_SECOND = 2000.0
MIN_GAP, MAX_GAP = 4.0, 60.0
LABEL_CHARS = 30

MARK_COLOURS = {
    EVENT: "#333",
    SEND: "#2a7f3f",
    CLIENT: "#1f5fbf",
    FAULT: "#c0561b",
    CHECK: "#777",
}
ARROW_CLASSES = ("delivered", "dropped", "unseen", "call", "answer")
SPAN_COLOURS = {
    "down": "#7f7f7f",
    "paused": "#d9a400",
    "cut": "#d1453b",
    "clock": "#3d7fd1",
    "disk": "#2b9c9c",
    "loss": "#8a5cc2",
    "duplicate": "#8a5cc2",
    "latency": "#8a5cc2",
}
SPAN_SLOTS = ("down", "paused", "cut", "clock", "disk", "loss", "duplicate", "latency")
"""A lane's spans side by side in this order, so overlapping faults stay visible."""

STYLE = """
body { margin: 0; font: 13px system-ui, sans-serif; color: #222; display: flex; height: 100vh; }
#diagram { flex: 1; overflow: auto; position: relative; }
#lane-heads { position: sticky; top: 0; z-index: 2; background: #fafafa; height: 34px;
  border-bottom: 1px solid #ccc; }
.lane-head { position: absolute; top: 0; text-align: center; font-weight: 600; padding-top: 3px; }
.lane-head small { display: block; font-weight: 400; color: #777; }
#side { width: 460px; border-left: 1px solid #ccc; display: flex; flex-direction: column; }
#summary, #details { padding: 8px 10px; border-bottom: 1px solid #ddd; }
#summary h1 { font-size: 15px; margin: 0 0 4px; }
#verdict { color: #b00; font-weight: 600; }
#details { min-height: 90px; white-space: pre-wrap; font-family: ui-monospace, monospace;
  font-size: 12px; }
#table { flex: 1; overflow: auto; }
table { border-collapse: collapse; font-size: 12px; width: 100%; }
td, th { padding: 1px 4px; text-align: left; vertical-align: top; }
th { position: sticky; top: 0; background: #eee; }
tr.hl { background: #ffef9e; }
tr.violation-row { background: #fdd; }
pre.evidence { max-height: 160px; overflow: auto; font-size: 11px; background: #f6f6f6;
  margin: 4px 0 0; }
svg text { font-size: 9.5px; font-family: ui-monospace, monospace; }
.lane-line { stroke: #bbb; stroke-width: 1; }
.axis text { fill: #555; }
.skip { fill: #999; font-style: italic; }
.step-rule { stroke: #9a9a9a; stroke-dasharray: 2 3; }
.step-label { fill: #444; font-weight: 600; }
.mark { cursor: pointer; }
.mark:hover, .mark.hl { stroke: #000; stroke-width: 2; r: 6; }
.arrow { fill: none; stroke-width: 1.1; }
.arrow.delivered { stroke: #2a7f3f; }
.arrow.dropped { stroke: #d1453b; stroke-dasharray: 4 3; }
.arrow.unseen { stroke: #999; stroke-dasharray: 2 2; }
.arrow.call, .arrow.answer { stroke: #1f5fbf; }
.span { opacity: 0.22; }
.span-edge { opacity: 0.9; }
.span-label { font-style: italic; }
#violation line { stroke: #d00; stroke-width: 2.5; }
#violation text { fill: #d00; font-weight: 700; font-size: 11px; }
.violation-ring { fill: none; stroke: #d00; stroke-width: 2.5; }
"""

SCRIPT = """
(function () {
  var details = document.getElementById('details');
  var current = [];
  function highlight(i) {
    current.forEach(function (el) { el.classList.remove('hl'); });
    var row = document.getElementById('row-' + i);
    var dot = document.getElementById('mark-' + i);
    current = [row, dot].filter(Boolean);
    current.forEach(function (el) { el.classList.add('hl'); });
    var title = dot && dot.querySelector('title');
    if (title) { details.textContent = title.textContent; }
    return [row, dot];
  }
  // One listener each for the drawing and the table: a trace has thousands of lines.
  document.getElementById('marks').addEventListener('mouseover', function (event) {
    var dot = event.target.closest('.mark');
    if (!dot) { return; }
    var found = highlight(dot.getAttribute('data-i'));
    if (found[0]) { found[0].scrollIntoView({block: 'nearest'}); }
  });
  document.querySelector('#events tbody').addEventListener('click', function (event) {
    var row = event.target.closest('tr');
    if (!row) { return; }
    var found = highlight(row.getAttribute('data-i'));
    if (found[1]) { found[1].scrollIntoView({block: 'center', inline: 'center'}); }
  });
  var drawn = 0;
  document.querySelectorAll('.lane').forEach(function (lane) {
    if (lane.getBoundingClientRect().height > 0) { drawn += 1; }
  });
  document.body.setAttribute('data-lanes-drawn', String(drawn));
})();
"""


class Layout:
    """Where things go: lane x positions and each mark's and instant's y."""

    def __init__(self, model: Model) -> None:
        self.x = {
            lane.name: AXIS_WIDTH + LANE_WIDTH * i + LANE_WIDTH // 2
            for i, lane in enumerate(model.lanes)
        }
        self.width = AXIS_WIDTH + LANE_WIDTH * len(model.lanes) + 20
        times = sorted({m.time for m in model.marks})
        rows: dict[float, int] = dict.fromkeys(times, 1)
        slot: dict[int, int] = {}
        used: dict[tuple[float, str], int] = {}
        for mark in model.marks:
            key = (mark.time, mark.lane)
            slot[mark.index] = used.get(key, 0)
            used[key] = slot[mark.index] + 1
            rows[mark.time] = max(rows[mark.time], used[key])
        self.instant_y: dict[float, float] = {}
        self.skips: list[tuple[float, float]] = []
        """(y, seconds) of each gap drawn shorter than its time."""
        y = float(TOP + ROW)
        for i, time in enumerate(times):
            self.instant_y[time] = y
            y += rows[time] * ROW
            if i + 1 < len(times):
                wanted = (times[i + 1] - time) * PX_PER_SECOND
                if wanted > MAX_GAP:
                    self.skips.append((y + MAX_GAP / 2, times[i + 1] - time))
                y += min(max(wanted, MIN_GAP), MAX_GAP)
        self.height = y + 3 * ROW
        self.mark_y = {m.index: self.instant_y[m.time] + slot[m.index] * ROW for m in model.marks}

    def y_at(self, time: float | None) -> float:
        """The top of the instant at ``time`` (the bottom of the drawing for None)."""
        if time is None or time not in self.instant_y:
            return self.height - ROW
        return self.instant_y[time] - ROW / 2


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: Any) -> ET.Element:
    element = ET.SubElement(
        parent, tag, {k.rstrip("_").replace("_", "-"): str(v) for k, v in attrib.items()}
    )
    if text is not None:
        element.text = text
    return element


def _text(text: str) -> ET.Element:
    """A bare text node to append between elements (ElementTree keeps text in ``tail``)."""
    span = ET.Element("span")
    span.text = text
    return span


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "\u2026"


def _details(mark: Mark) -> str:
    lines = [
        f"t = {mark.time:.9f} s (virtual)",
        f"host {mark.lane}, {mark.kind}, step {mark.step if mark.step >= 0 else '(settling)'}",
        mark.text,
    ]
    if mark.info:
        lines.append(json.dumps(mark.info, sort_keys=True))
    return "\n".join(lines)


def render_html(
    model: Model,
    *,
    title: str,
    summary: Sequence[str],
    verdict: str,
    evidence: dict[str, Any] | None = None,
) -> str:
    """The page: ``summary`` lines (suite, seed, ...) and ``verdict`` above the event table."""
    layout = Layout(model)
    html = ET.Element("html", lang="en")
    head = _sub(html, "head")
    _sub(head, "meta", charset="utf-8")
    _sub(head, "title", title)
    _sub(head, "style", STYLE)
    body = _sub(html, "body")
    diagram = _sub(body, "div", id="diagram")
    heads = _sub(diagram, "div", id="lane-heads", style=f"width: {layout.width}px")
    for lane in model.lanes:
        cell = _sub(
            heads,
            "div",
            lane.name,
            class_="lane-head",
            data_host=lane.name,
            style=f"left: {layout.x[lane.name] - LANE_WIDTH // 2}px; width: {LANE_WIDTH}px",
        )
        _sub(cell, "small", lane.group)
    svg = _sub(
        diagram,
        "svg",
        xmlns="http://www.w3.org/2000/svg",
        width=layout.width,
        height=int(layout.height),
        viewBox=f"0 0 {layout.width} {int(layout.height)}",
    )
    _defs(svg)
    _axis(svg, model, layout)
    _spans(svg, model.spans, layout)
    _lanes(svg, model, layout)
    _steps(svg, model, layout)
    _arrows(svg, model, layout)
    _marks(svg, model, layout)
    _violation(svg, model, layout)
    _side(body, model, title, summary, verdict, evidence)
    _sub(body, "script", SCRIPT)
    return "<!DOCTYPE html>\n" + ET.tostring(html, encoding="unicode", method="html") + "\n"


def _defs(svg: ET.Element) -> None:
    defs = _sub(svg, "defs")
    for name, colour in (("delivered", "#2a7f3f"), ("call", "#1f5fbf"), ("unseen", "#999")):
        marker = _sub(
            defs,
            "marker",
            id=f"head-{name}",
            viewBox="0 0 10 10",
            refX=9,
            refY=5,
            markerWidth=7,
            markerHeight=7,
            orient="auto-start-reverse",
        )
        _sub(marker, "path", d="M 0 0 L 10 5 L 0 10 z", fill=colour)
    cross = _sub(
        defs,
        "marker",
        id="head-dropped",
        viewBox="0 0 10 10",
        refX=5,
        refY=5,
        markerWidth=9,
        markerHeight=9,
    )
    _sub(cross, "path", d="M 1 1 L 9 9 M 9 1 L 1 9", stroke="#d1453b", stroke_width=2)


def _axis(svg: ET.Element, model: Model, layout: Layout) -> None:
    axis = _sub(svg, "g", class_="axis")
    _sub(axis, "text", "virtual time (s)", x=4, y=TOP + 2)
    last = -1e9
    for time, y in layout.instant_y.items():
        if y - last >= 2 * ROW:
            _sub(axis, "text", f"{time:.9f}", x=4, y=f"{y + 3:.1f}")
            last = y
    for y, seconds in layout.skips:
        _sub(axis, "text", f"\u22ee +{seconds:.3f} s", class_="skip", x=14, y=f"{y + 3:.1f}")


def _spans(svg: ET.Element, spans: Sequence[Span], layout: Layout) -> None:
    group = _sub(svg, "g", id="spans")
    for span in spans:
        colour = SPAN_COLOURS.get(span.fault, "#999")
        slot = SPAN_SLOTS.index(span.fault) if span.fault in SPAN_SLOTS else len(SPAN_SLOTS)
        left = layout.x[span.lane] - LANE_WIDTH // 2 + 3 + slot * 5
        top = layout.y_at(span.start)
        bottom = layout.y_at(span.end)
        height = max(bottom - top, 3.0)
        until = "the end" if span.end is None else f"{span.end:.6f} s"
        g = _sub(group, "g", class_=f"fault-span {span.fault}", data_host=span.lane)
        _sub(
            g,
            "title",
            f"{span.fault} on {span.lane} from {span.start:.6f} s to {until}: {span.label}",
        )
        width = LANE_WIDTH - 6 - slot * 5
        _sub(
            g,
            "rect",
            class_="span",
            x=left,
            y=f"{top:.1f}",
            width=width,
            height=f"{height:.1f}",
            fill=colour,
        )
        _sub(
            g,
            "rect",
            class_="span-edge",
            x=left,
            y=f"{top:.1f}",
            width=4,
            height=f"{height:.1f}",
            fill=colour,
        )
        _sub(
            g, "text", span.fault, class_="span-label", x=left + 6, y=f"{top + 9:.1f}", fill=colour
        )


def _lanes(svg: ET.Element, model: Model, layout: Layout) -> None:
    group = _sub(svg, "g", id="lanes")
    for lane in model.lanes:
        g = _sub(group, "g", class_="lane", data_host=lane.name, data_group=lane.group)
        x = layout.x[lane.name]
        _sub(g, "line", class_="lane-line", x1=x, x2=x, y1=0, y2=int(layout.height))


def _steps(svg: ET.Element, model: Model, layout: Layout) -> None:
    group = _sub(svg, "g", id="steps")
    for index in model.steps:
        mark = model.marks[index]
        y = layout.mark_y[index]
        _sub(group, "line", class_="step-rule", x1=AXIS_WIDTH, x2=layout.width, y1=y, y2=y)
        _sub(group, "text", mark.text, class_="step-label", x=AXIS_WIDTH + 4, y=f"{y - 3:.1f}")


def _arrows(svg: ET.Element, model: Model, layout: Layout) -> None:
    group = _sub(svg, "g", id="arrows")
    for arrow in model.arrows:
        _arrow(group, model, layout, arrow)


def _arrow(group: ET.Element, model: Model, layout: Layout, arrow: Arrow) -> None:
    x1, y1 = layout.x[arrow.source], layout.mark_y[arrow.start]
    x2 = layout.x[arrow.target]
    if arrow.end is None:  # a stub pointing the way it went
        x2 = x1 + (30 if x2 >= x1 else -30)
        y2 = y1 + 10
    else:
        y2 = layout.mark_y[arrow.end]
    if arrow.outcome == "answer":
        x1, x2 = layout.x[arrow.source], layout.x[arrow.target]
    head = {"dropped": "dropped", "unseen": "unseen", "delivered": "delivered"}.get(
        arrow.outcome, "call"
    )
    start = model.marks[arrow.start]
    g = _sub(group, "g", class_=f"flow {arrow.outcome}", data_flow=arrow.flow)
    _sub(g, "title", f"{arrow.outcome}: {arrow.source} -> {arrow.target}: {start.text}")
    _sub(
        g,
        "line",
        class_=f"arrow {arrow.outcome}",
        x1=x1,
        y1=f"{y1:.1f}",
        x2=x2,
        y2=f"{y2:.1f}",
        marker_end=f"url(#head-{head})",
    )


def _marks(svg: ET.Element, model: Model, layout: Layout) -> None:
    group = _sub(svg, "g", id="marks")
    for mark in model.marks:
        if mark.kind == STEP:
            continue
        x, y = layout.x[mark.lane], layout.mark_y[mark.index]
        dot = _sub(
            group,
            "circle",
            id=f"mark-{mark.index}",
            class_=f"mark {mark.kind}",
            data_i=mark.index,
            cx=x,
            cy=f"{y:.1f}",
            r=3.5,
            fill=MARK_COLOURS.get(mark.kind, "#333"),
        )
        _sub(dot, "title", _details(mark))
        if mark.kind != SEND:  # a send is its arrow; its text is in the tooltip and table
            _sub(group, "text", _short(mark.text), x=x + 6, y=f"{y + 3:.1f}")


def _violation(svg: ET.Element, model: Model, layout: Layout) -> None:
    found = model.violation
    if found is None:
        return
    last = [m.index for m in model.marks if m.time <= found.time]
    y = (layout.mark_y[last[-1]] if last else layout.y_at(found.time)) + ROW * 0.8
    group = _sub(svg, "g", id="violation", data_property=found.prop, data_step=found.step)
    _sub(group, "title", f"{found.prop} after step {found.step}: {found.message}")
    _sub(
        group,
        "line",
        id="violation-line",
        x1=AXIS_WIDTH,
        x2=layout.width,
        y1=f"{y:.1f}",
        y2=f"{y:.1f}",
    )
    _sub(
        group,
        "text",
        f"\u2716 {found.prop} (after step {found.step}): {found.message}",
        x=AXIS_WIDTH + 4,
        y=f"{y + 14:.1f}",
    )
    for lane in found.lanes:
        if lane in layout.x:
            _sub(group, "circle", class_="violation-ring", cx=layout.x[lane], cy=f"{y:.1f}", r=7)
    if found.mark is not None:
        mark = model.marks[found.mark]
        _sub(
            group,
            "circle",
            id="violation-event",
            class_="violation-ring",
            cx=layout.x[mark.lane],
            cy=f"{layout.mark_y[mark.index]:.1f}",
            r=8,
        )


def _side(
    body: ET.Element,
    model: Model,
    title: str,
    summary: Sequence[str],
    verdict: str,
    evidence: dict[str, Any] | None,
) -> None:
    side = _sub(body, "div", id="side")
    head = _sub(side, "div", id="summary")
    _sub(head, "h1", title)
    for line in summary:
        _sub(head, "div", line)
    _sub(head, "div", verdict, id="verdict")
    if model.violation is not None:
        _sub(head, "div", model.violation.message)
        links = _sub(head, "div")
        _sub(links, "a", "show where it was detected", href="#violation-line")
        if model.violation.mark is not None:
            links.append(_text(" \u00b7 "))
            _sub(links, "a", "show the event it names", href="#violation-event")
    if evidence:
        text = json.dumps(evidence, indent=1, default=str)
        _sub(head, "pre", text if len(text) < 4000 else text[:4000] + " ...", class_="evidence")
    _sub(side, "div", "Point at a dot (or click a row) for its details.", id="details")
    holder = _sub(side, "div", id="table")
    table = _sub(holder, "table", id="events")
    header = _sub(_sub(table, "thead"), "tr")
    for name in ("#", "time (s)", "host", "kind", "what"):
        _sub(header, "th", name)
    rows = _sub(table, "tbody")
    ring = model.violation.mark if model.violation is not None else None
    for mark in model.marks:
        row = _sub(rows, "tr", id=f"row-{mark.index}", data_i=mark.index)
        if mark.index == ring:
            row.set("class", "violation-row")
        for cell in (str(mark.index), f"{mark.time:.6f}", mark.lane, mark.kind, mark.text):
            _sub(row, "td", cell)
