"""The timeline's shared model (lanes, arrows, fault spans, the violation), its text and HTML
renderings, the trace format's ``info`` field, and the HTML page loaded in a real browser."""

from __future__ import annotations

import json
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from raftkube.cli import main
from raftkube_fuzz.example import Run, run_steps
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suite_runner import patch_for
from raftkube_fuzz.suites import get_suite
from raftkube_fuzz.timeline import CLIENT, EVENT, FAULT, SEND, STEP, Line, Timeline, digest_lines
from raftkube_fuzz.timeline_model import build, render_text
from raftkube_fuzz.trace import TraceError, load_trace
from raftkube_fuzz.world.driver import deterministic_scheduling
from raftkube_spec.raft import events as ev
from raftkube_spec.raft.messages import RequestVoteRequest

CHROMIUM = Path("/usr/bin/chromium")


def test_lanes_come_from_the_lines_hosts_so_new_host_kinds_need_no_change() -> None:
    lines = [
        Line(0.0, None, STEP, "step 0: wait"),
        Line(0.1, None, EVENT, "watch", {"host": "kubelet-1"}),
        Line(0.1, 1, EVENT, "Timeout(server=1)"),
        Line(0.2, None, CLIENT, "#0 call", {"host": "apiserver-0", "to": "m0", "flow": "op-0"}),
        Line(0.2, None, EVENT, "sync", {"host": "kubelet-0"}),
        Line(0.3, 0, EVENT, "Timeout(server=0)"),
        Line(0.3, None, CLIENT, "#1 call", {"host": "c0", "to": "m1", "flow": "op-1"}),
    ]
    model = build(lines)
    assert [lane.name for lane in model.lanes] == [
        "m0",
        "m1",
        "c0",
        "kubelet-0",
        "kubelet-1",
        "apiserver-0",
        "world",
    ]
    assert {lane.name: lane.group for lane in model.lanes}["kubelet-1"] == "kubelet"
    assert model.steps == (0,)


def test_arrows_join_a_send_to_its_delivery_drop_or_answer() -> None:
    lines = [
        Line(0.0, 0, SEND, "vote 0->1", {"to": "m1", "flow": "msg-0"}),
        Line(0.0, 0, SEND, "vote 0->2", {"to": "m2", "flow": "msg-1"}),
        Line(0.0, 0, SEND, "vote 0->3", {"to": "m3", "flow": "msg-2"}),
        Line(0.1, 1, EVENT, "HandleVote", {"flow": "msg-0"}),
        Line(0.1, None, FAULT, "drop vote 0->2", {"fault": "dropped", "flow": "msg-1"}),
        Line(0.2, None, CLIENT, "#0 call Put", {"host": "c0", "to": "m1", "flow": "op-0"}),
        Line(0.3, None, CLIENT, "#0 returns Ok", {"host": "c0", "from": "m1", "flow": "op-0"}),
    ]
    model = build(lines)
    arrows = {(a.source, a.target, a.outcome): (a.start, a.end) for a in model.arrows}
    assert arrows == {
        ("m0", "m1", "delivered"): (0, 3),
        ("m0", "m2", "dropped"): (1, 4),
        ("m0", "m3", "unseen"): (2, None),
        ("c0", "m1", "call"): (5, 5),
        ("m1", "c0", "answer"): (6, 6),
    }
    assert model.marks[4].lane == "m2", "a drop is drawn where the message was going"
    text = list(render_text(model))
    assert text[0].endswith("(-> m1)") and text[6].endswith("(<- m1)")
    assert "     c0  client #0 call Put  (-> m1)" in text[5]


def test_fault_spans_open_and_close_per_host() -> None:
    def fault(time: float, kind: str, member: int | None = None, **info: object) -> Line:
        return Line(time, member, FAULT, kind, {"fault": kind, **info})

    lines = [
        fault(1.0, "crash", 1),
        fault(2.0, "partition", hosts=["m0", "m2"]),
        fault(2.5, "loss"),
        fault(3.0, "loss"),
        fault(3.5, "clock_jump", 2),
        fault(4.0, "restart", 1),
        fault(5.0, "heal"),
        fault(6.0, "heal_all"),
        fault(6.5, "pause", 0),
        fault(6.6, "crash", hosts=["kubelet-0"], host="kubelet-0"),
        fault(6.7, "partition"),
        Line(7.0, None, STEP, "step 9: finish"),
    ]
    model = build(lines)
    spans = {(s.lane, s.fault, s.start): s.end for s in model.spans}
    assert spans == {
        ("m1", "down", 1.0): 4.0,
        ("m0", "cut", 2.0): 5.0,
        ("m2", "cut", 2.0): 5.0,
        ("world", "loss", 2.5): 3.0,
        ("world", "loss", 3.0): 6.0,
        ("m2", "clock", 3.5): 6.0,
        ("m0", "paused", 6.5): None,
        ("kubelet-0", "down", 6.6): None,
        ("world", "cut", 6.7): None,
    }


def test_a_suite_names_the_hosts_a_fault_touched_and_gets_their_lanes() -> None:
    run = Run(get_suite("raft"), {"servers": 3, "read_mode": "read_index", "max_batch": 1}, 0)
    try:
        run.fault("crash", "apiserver-0 crashed", hosts=["apiserver-0"])
        run.fault("partition", "partition [0] | [1, 2]", members=[0])
        run.fault("restart", "apiserver-0 restarted", hosts=["apiserver-0"])
        lines = list(run.timeline.lines())
    finally:
        run.close()
    assert [line.host for line in lines[-3:]] == ["apiserver-0", "world", "apiserver-0"]
    model = build(lines)
    assert [(s.lane, s.fault, s.end is None) for s in model.spans] == [
        ("apiserver-0", "down", False),
        ("m0", "cut", True),
    ]


def test_a_timeline_pairs_each_delivery_with_the_very_message_sent() -> None:
    timeline = Timeline()
    sent = RequestVoteRequest(term=1, source=0, dest=1, last_log_term=0, last_log_index=0)
    equal_but_never_sent = RequestVoteRequest(
        term=1, source=0, dest=1, last_log_term=0, last_log_index=0
    )
    timeline.begin_step(0.0, "step 0: wait")
    timeline.add(0.0, 0, SEND, sent)
    timeline.add(0.1, 1, EVENT, ev.UpdateTerm(sent))
    timeline.add(0.1, 1, EVENT, ev.HandleRequestVoteRequest(sent))
    timeline.add(0.2, 1, EVENT, ev.HandleRequestVoteRequest(equal_but_never_sent))
    timeline.add(0.3, 1, EVENT, ev.HandleRequestVoteRequest(sent))  # a duplicate's delivery
    flows = [(line.info or {}).get("flow") for line in timeline.lines()]
    assert flows == [None, "msg-1", "msg-1", None, None, "msg-1"]
    assert next(iter(timeline.lines(2)))
    model = build(list(timeline.lines()))
    assert [(a.outcome, a.end) for a in model.arrows] == [("delivered", 2), ("delivered", 5)]


def test_info_is_optional_in_the_trace_format_and_old_digests_still_hold(
    tmp_path: Path,
) -> None:
    old = [
        Line(0.0, None, STEP, "step 0: wait(seconds=0.005)"),
        Line(0.009765625, 0, EVENT, "Timeout(server=0)"),
        Line(0.5, 2, FAULT, "crashed"),
    ]
    # The digest these lines had before lines could carry info (a trace of that version).
    assert digest_lines(old) == "acb1e51c3291f65bfac1f63cf26f92feedbb55e8703548889d2c19f966fc6660"
    assert [Line.from_json(line.to_json()) for line in old] == old
    assert len(old[0].to_json()) == 4
    with_info = Line(0.5, 2, FAULT, "crashed", {"fault": "crash"})
    assert Line.from_json(json.loads(json.dumps(with_info.to_json()))) == with_info
    assert digest_lines([with_info]) != digest_lines([old[2]])
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "format": "raftkube-fuzz-trace",
                "version": 1,
                "suite": "raft",
                "seed": 0,
                "config": {},
                "steps": [],
                "violation": None,
                "timeline": [[0.0, 0, "fault", "crashed", "not an object"]],
            }
        )
    )
    with pytest.raises(TraceError, match="info must be an object"):
        load_trace(bad)


# --- the page in a real browser -----------------------------------------------------------------


class _Elements(HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.texts: dict[str, str] = {}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))
        self._in = dict(attrs).get("id")

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self.texts[self._in] = self.texts.get(self._in, "") + data

    def text_of(self, element_id: str) -> str:
        """The text directly inside the element with that id."""
        return self.texts.get(element_id, "")

    def having(self, tag: str, **wanted: str) -> list[dict[str, str | None]]:
        return [
            attrs
            for t, attrs in self.found
            if t == tag
            and all(attrs.get(k.rstrip("_").replace("_", "-")) == v for k, v in wanted.items())
        ]


def _distinct_rows(png: bytes) -> int:
    """How many different scanlines a PNG holds (still filtered, which is enough to tell a
    drawing from a blank page: a uniform image filters to one or two distinct rows)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data, width, depth = 8, b"", 0, 0
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, _, _, colour = struct.unpack(">IIBB", body[:10])
            depth = {2: 3, 6: 4}[colour]
        elif kind == b"IDAT":
            data += body
        pos += 12 + length
    raw = zlib.decompress(data)
    stride = width * depth + 1
    return len({raw[i : i + stride] for i in range(0, len(raw), stride)})


def _trace_with_a_violation(where: Path) -> Path:
    """The unsynced-vote mutant, caught while the world settles; one crash first, and the
    background load, so there are clients, a fault span, deliveries and drops to draw."""
    steps = [Step.from_json({"kind": "crash", "member": 1, "torn": 0})]
    config = {"servers": 3, "read_mode": "read_index", "max_batch": 1, "load": "both"}
    deterministic_scheduling(0)
    with patch_for("unsynced-vote"):
        run = run_steps(get_suite("raft"), config, 0, steps, mutant="unsynced-vote")
    assert run.violation is not None and run.violation.prop == "Durability"
    return run.trace().save(where / "trace.json")


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs a real browser: Debian's Chromium at /usr/bin/chromium "
    "(apt-get install -y chromium)",
)
def test_the_html_timeline_renders_in_a_headless_browser(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = _trace_with_a_violation(tmp_path)
    page = tmp_path / "timeline.html"
    assert main(["fuzz", "replay", str(trace), "--html", str(page)]) == 1
    out = capsys.readouterr().out
    assert "reproduced: Durability after step 0" in out
    assert "matches the trace" in out
    source = page.read_text()
    assert "http://" not in source.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in source
    # A person pointing at the first delivered message's dot: the page's script must show
    # that line's details and highlight its row in the table.
    pointed = tmp_path / "pointed.html"
    pointed.write_text(
        source.replace(
            "</body>",
            "<script>var dot = document.querySelector('.mark.event');"
            "document.body.setAttribute('data-pointed', dot.getAttribute('data-i'));"
            "dot.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));</script></body>",
        )
    )
    shot = tmp_path / "shot.png"
    browser = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-sync",
            "--disable-component-update",
            "--window-size=1200,800",
            f"--screenshot={shot}",
            "--dump-dom",
            pointed.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert browser.returncode == 0, browser.stderr[-2000:]
    dom = _Elements()
    dom.feed(browser.stdout)
    lanes = [attrs["data-host"] for attrs in dom.having("g", class_="lane")]
    assert lanes == ["m0", "m1", "m2", "c0", "c1", "world"]
    # The page's script ran after layout and found every lane drawn with a height.
    assert dom.having("body", data_lanes_drawn=str(len(lanes)))
    assert dom.having("g", id="violation", data_property="Durability", data_step="0")
    assert dom.having("line", id="violation-line") and dom.having("a", href="#violation-line")
    assert dom.having("g", class_="fault-span down", data_host="m1")
    assert dom.having("g", class_="flow delivered")
    assert len(dom.having("tr")) > 20, "the side table lists the lines"
    [body] = dom.having("body")
    assert dom.having("tr", id=f"row-{body['data-pointed']}", class_="hl")
    assert "host m" in dom.text_of("details")
    assert _distinct_rows(shot.read_bytes()) > 100, "the screenshot is blank"
