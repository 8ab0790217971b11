"""``raftkube fuzz replay TRACE``: re-run a trace's steps in this process and say what happened.

The steps run without Hypothesis, from the trace's seed, suite settings and mutant. The verdict
says whether the recorded violation came back at the recorded step (exit 1), whether the run
passes now (0) or fails differently (3), and whether the timeline is byte for byte the
recorded one; a last line says whether this is the code that recorded the trace
(:mod:`raftkube_fuzz.code_version`), without which neither a pass nor a different digest says
anything about the bug. A file that is not a readable trace exits 2. ``--json`` prints the
same as one object, ``--html`` draws the timeline (:mod:`raftkube_fuzz.timeline_html`),
``--until N`` stops after step N.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from raftkube.tuning import tune_gc


def replay_trace(args: argparse.Namespace) -> int:
    """``raftkube fuzz replay TRACE``: see the module docstring."""
    tune_gc()
    from raftkube_fuzz import timeline_model
    from raftkube_fuzz.code_version import differences
    from raftkube_fuzz.example import run_steps
    from raftkube_fuzz.suite_runner import patch_for
    from raftkube_fuzz.suites import get_suite
    from raftkube_fuzz.trace import TraceError, load_trace
    from raftkube_fuzz.world.driver import deterministic_scheduling

    try:
        trace = load_trace(args.trace)
        suite = get_suite(trace.suite)
        patch = patch_for(trace.mutant)
    except (TraceError, KeyError) as exc:
        print(f"raftkube fuzz replay: {exc}", file=sys.stderr)
        return 2
    deterministic_scheduling(trace.seed)
    with patch:
        run = run_steps(
            suite,
            trace.config,
            trace.seed,
            list(trace.steps),
            mutant=trace.mutant,
            until=args.until,
        )
    lines = list(run.timeline.lines())
    model = timeline_model.build(lines, run.violation)
    recorded = trace.violation
    got = run.violation
    same_violation = (
        recorded is not None
        and got is not None
        and got.prop == recorded.prop
        and got.step == recorded.step
    )
    digest = run.digest()
    digest_matches = digest == trace.digest
    code_changes = None if trace.code is None else differences(trace.code)
    if got is None:
        verdict, code = "passes now (the recorded violation did not happen)", 0
    elif same_violation:
        verdict, code = f"reproduced: {got.prop} after step {got.step}", 1
    else:
        verdict, code = f"different failure: {got.prop} after step {got.step}", 3
    if args.until is not None and got is None:
        verdict, code = f"stopped after step {args.until} as asked (no violation so far)", 0
    if args.json:
        print(
            json.dumps(
                {
                    "trace": str(args.trace),
                    "suite": trace.suite,
                    "mutant": trace.mutant,
                    "seed": trace.seed,
                    "verdict": verdict,
                    "reproduced": same_violation,
                    "digest_matches": digest_matches,
                    "code_matches": None if code_changes is None else not code_changes,
                    "violation": None
                    if got is None
                    else {
                        "property": got.prop,
                        "message": got.message,
                        "step": got.step,
                        "evidence": got.evidence,
                    },
                    "timeline": [line.to_json() for line in lines],
                },
                indent=1,
            )
        )
        return code
    if args.html is not None:
        try:
            _write_html(args, trace, model, verdict, got)
        except OSError as exc:
            print(f"raftkube fuzz replay: cannot write {args.html}: {exc}", file=sys.stderr)
            return 2
        print(f"timeline written to {args.html}")
    elif not args.quiet:
        for text in timeline_model.render_text(model):
            print(text)
    print()
    print(verdict)
    if got is not None:
        print(f"  {got.message}")
        for key, value in got.evidence.items():
            text = json.dumps(value, default=str)
            print(f"  {key}: {text if len(text) < 2000 else text[:2000] + ' ...'}")
    if args.until is None:
        print(
            "timeline digest "
            + (
                "matches the trace (same events, byte for byte)"
                if digest_matches
                else f"DIFFERS from the trace ({digest[:12]} vs {trace.digest[:12]})"
            )
        )
    print(_code_verdict(code_changes))
    return code


def _code_verdict(changes: list[str] | None) -> str:
    """Whether the replaying code is the recording code: a replay is exact only on that."""
    if changes is None:
        return "code: the trace does not record which code wrote it"
    if not changes:
        return "code: the same as the trace's (sources and dependency versions)"
    return (
        "code: NOT the trace's (" + "; ".join(changes) + "): a replay re-runs the same "
        "execution only on the code that recorded it"
    )


def _write_html(args: argparse.Namespace, trace: Any, model: Any, verdict: str, got: Any) -> None:
    from raftkube_fuzz.timeline_html import render_html

    summary = [
        f"suite {trace.suite}, mutant {trace.mutant or 'none'}, seed {trace.seed}",
        f"config {json.dumps(trace.config, sort_keys=True)}",
        f"{len(trace.steps)} steps, {len(model.marks)} timeline lines, "
        f"{len(model.lanes)} hosts, virtual time 0 to {model.end_time:.6f} s",
    ]
    page = render_html(
        model,
        title=f"raftkube fuzz replay {args.trace.name}",
        summary=summary,
        verdict=verdict,
        evidence=None if got is None else got.evidence,
    )
    args.html.write_text(page, encoding="utf-8")
