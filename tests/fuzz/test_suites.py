"""The fuzz suites end to end: short clean runs, a mutant found, its trace replayed exactly.

These are the CI-sized versions of ``raftkube fuzz run`` and ``raftkube fuzz mutants``; the long
runs live in ``fuzz/`` and in docs/performance.md. ``RAFTKUBE_FUZZ_EXAMPLES`` raises the
budget of the clean runs. The ``cluster`` suite (a whole control plane per example, and no
Raft messages with its one store member) has its own in ``test_cluster_suite.py``.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest
import trio

from raftkube.cli import main
from raftkube.server.ready_pipeline import ReadyPipeline
from raftkube_fuzz.code_version import code_digest
from raftkube_fuzz.example import Run, run_steps
from raftkube_fuzz.steps import Step
from raftkube_fuzz.suite_runner import patch_for, run_suite
from raftkube_fuzz.suites import SUITE_NAMES, get_suite
from raftkube_fuzz.trace import TraceError, load_trace
from raftkube_fuzz.violation import Violation
from raftkube_spec.raft.messages import AppendEntriesResponse

EXAMPLES = int(os.environ.get("RAFTKUBE_FUZZ_EXAMPLES", "12"))


@pytest.mark.parametrize("suite", sorted(set(SUITE_NAMES) - {"cluster"}))
def test_clean_implementation_survives_a_short_run(suite: str, tmp_path: Path) -> None:
    outcome = run_suite(
        suite, examples=EXAMPLES, seed=2026, traces_dir=tmp_path, state_dir=tmp_path
    )
    assert outcome.trace is None and outcome.error is None, (
        outcome.trace.violation if outcome.trace else outcome.error
    )
    assert outcome.examples >= EXAMPLES
    assert outcome.deliveries > 0
    assert sum(outcome.faults.values()) > 0


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trace of the unsynced-vote mutant, found and shrunk by the runner."""
    where = tmp_path_factory.mktemp("mutant")
    outcome = run_suite(
        "raft",
        time_budget=120,
        seed=1,
        mutant="unsynced-vote",
        traces_dir=where,
        state_dir=where,
        shrink_time=30,
    )
    assert outcome.trace_path is not None, outcome.error
    return outcome.trace_path


def test_a_mutant_is_found_and_shrunk(found: Path) -> None:
    trace = load_trace(found)
    assert trace.mutant == "unsynced-vote"
    assert trace.violation is not None
    assert trace.violation.prop == "Durability"
    assert len(trace.steps) <= 30
    assert trace.timeline, "the trace carries its event timeline"


def test_a_trace_replays_to_the_same_violation_in_a_new_process(found: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "raftkube.cli", "fuzz", "replay", str(found), "--json"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    trace = load_trace(found)
    assert trace.violation is not None
    assert report["reproduced"] is True
    assert report["digest_matches"] is True
    assert report["code_matches"] is True
    assert report["violation"]["step"] == trace.violation.step
    assert report["violation"]["property"] == trace.violation.prop


def test_replay_until_stops_early_and_prints_a_timeline(found: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "raftkube.cli", "fuzz", "replay", str(found), "--until", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "step 0:" in result.stdout
    assert "step 1:" not in result.stdout


@pytest.mark.parametrize("stamp", ["changed", "absent"])
def test_a_replay_says_whether_the_code_is_the_one_that_recorded_the_trace(
    found: Path, tmp_path: Path, stamp: str
) -> None:
    data = json.loads(found.read_text())
    assert data["code"]["source"] == code_digest()
    if stamp == "changed":
        data["code"]["source"] = "0" * 16
        data["code"]["trio"] = "0.1"
    else:
        del data["code"]  # a trace from before the stamp
    older = tmp_path / "older.json"
    older.write_text(json.dumps(data))
    result = subprocess.run(
        [sys.executable, "-m", "raftkube.cli", "fuzz", "replay", str(older), "--until", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    if stamp == "changed":
        assert f"code: NOT the trace's (source {'0' * 16} then, {code_digest()} now; trio 0.1 " in (
            result.stdout
        )
    else:
        assert "code: the trace does not record which code wrote it" in result.stdout


def test_the_same_steps_give_the_same_events_in_process() -> None:
    suite = get_suite("raft")
    steps = [
        Step.of("write", member=0, key="a", value="v1"),
        Step.of("crash", member="leader", torn=1),
        Step.of("loss", p=0.3),
        Step.of("read", member=1, key="a", serializable=False, repeat=1),
        Step.of("wait", seconds=0.5),
        Step.of("restart", member=0),
        Step.of("write", member=2, key="b", value="v2"),
        Step.of("wait", seconds=0.2),
    ]
    config = {**suite.default_config, "servers": 3}
    digests = set()
    for _ in range(2):
        run = run_steps(suite, config, 99, steps)
        assert run.violation is None, run.violation
        digests.add(run.digest())
    assert len(digests) == 1


@pytest.mark.parametrize("sync", ["instant", "slow"])
def test_a_slow_sync_runs_the_real_runner_s_overlaps(
    sync: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``sync=slow`` a member syncs through its ``run_sync`` hook, so the simulator
    exercises what only the real runner did before: a leader's appends leaving before its own
    write and acknowledgements arriving while that write is in flight."""
    during_sync: list[int] = []
    original = ReadyPipeline.on_message

    def on_message(self: ReadyPipeline, m: Any) -> None:
        if self._syncing and isinstance(m, AppendEntriesResponse):
            during_sync.append(m.match_index)
        original(self, m)

    monkeypatch.setattr(ReadyPipeline, "on_message", on_message)
    suite = get_suite("raft")
    steps = [
        Step.of("write", member="leader", key="a", value="v1", repeat=20),
        Step.of("wait", seconds=0.3),
    ]
    run = run_steps(suite, {**suite.default_config, "sync": sync}, 5, steps)
    assert run.violation is None, run.violation
    assert bool(during_sync) == (sync == "slow")


def test_a_closed_run_is_freed_without_the_cyclic_collector() -> None:
    """An ended world is cyclic garbage; the run, with everything it recorded, must not hang
    off it (the collector would traverse it all, a tenth of a fuzz run's CPU), crashed
    incarnations' hooks included."""
    suite = get_suite("kv")
    steps = [
        Step.of("put", member=0, key="a", value="v1", lease=0),
        Step.of("crash", member=0, torn=0),
        Step.of("wait", seconds=0.5),
        Step.of("restart", member=0),
        Step.of("watch", member=1, key="a", prefix=False, revision=0),
        Step.of("put", member=2, key="a", value="v2", lease=0),
    ]
    config = {**suite.default_config, "servers": 3}
    gc.collect()
    gc.disable()
    try:
        run = run_steps(suite, config, 7, steps)
        assert run.violation is None, run.violation
        assert run.stats["deliveries"] > 0 and run.digest()
        freed = weakref.ref(run)
        timeline = weakref.ref(run.timeline)
        del run
        assert freed() is None and timeline() is None
    finally:
        gc.enable()


def test_a_violation_recorded_first_wins_over_the_liveness_failure_it_causes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A checker that fails inside a member's event during the final probe (a member whose
    log diverged, say) may stop the cluster from serving: the run must report that first
    violation, not the liveness timeout that followed it."""

    async def probe(self: Run) -> None:
        def planted() -> None:
            raise Violation("Conformance", "planted", {})

        self.listener.guard(planted)
        await trio.sleep_forever()

    monkeypatch.setattr(Run, "_probe", probe)
    suite = get_suite("raft")
    config = {**suite.default_config, "servers": 3}
    run = run_steps(suite, config, 7, [Step.of("wait", seconds=0.01)])
    assert run.violation is not None
    assert (run.violation.prop, run.violation.step) == ("Conformance", 1)


def test_watches_are_judged_only_after_the_last_apply_has_drained() -> None:
    """Found by ``raftkube fuzz run kv --time 10m --seed 2033``: the final probe waited for
    every member to apply what was committed when it looked, then for the pending operations,
    then one tick; a follower applied the last delete (learning its commit from a heartbeat)
    at the very end of that tick, and its watch was judged before its stream could drain."""
    suite = get_suite("kv")
    steps = [
        Step.of("compact", member=0, revision=1),
        Step.of("crash", hold=0.05, member=4, torn=0),
        Step.of("wait", seconds=0.002),
        Step.of("compact", member=0, revision=1),
        Step.of("compact", member=0, revision=1),
        Step.of("wait", seconds=0.002),
        Step.of("put", key="k0", lease=0, member=0, value="v1"),
        Step.of("isolate", hold=0.05, member=0),
        Step.of("watch", key="k0", member=0, prefix=False, revision=0),
        Step.of("watch", key="k0", member=0, prefix=False, revision=0),
        Step.of("wait", seconds=0.052000000000000005),
        Step.of("compact", member=0, revision=2),
        Step.of("compact", member=0, revision=2),
        Step.of("loss", hold=0.05, p=0.3),
        Step.of("watch", key="k0", member=0, prefix=False, revision=0),
        Step.of("loss", hold=0.05, p=0.3),
        Step.of("clock_jump", member="leader", seconds=0.05),
        Step.of("skew", member="leader"),
        Step.of("wait", seconds=0.002),
        Step.of("crash", member=0, torn=0),
        Step.of("wait", seconds=0.01),
        Step.of("resync"),
        Step.of("wait", seconds=0.004),
        Step.of("crash", hold=0.25, member="leader", torn=0),
        Step.of("clock_jump", member=0, seconds=0.05),
        Step.of("compact", member=4, revision=2),
        Step.of("latency", high=0.05, hold=0.05),
        Step.of("compact", member=4, revision=2),
        Step.of(
            "get",
            count_only=False,
            key="k0",
            keys_only=False,
            limit=0,
            member=1,
            prefix=False,
            revision=0,
            serializable=False,
        ),
        Step.of("crash", hold=0.25, member="leader", torn=0),
        Step.of("delete", key="k0", member=2, prefix=False),
        Step.of("wait", seconds=0.002),
    ]
    config = {"servers": 5, "read_mode": "lease", "snapshot_every": 64, "load": "none"}
    run = run_steps(suite, config, 4283, steps)
    assert run.violation is None, run.violation


def test_an_edited_or_foreign_file_is_refused(found: Path, tmp_path: Path) -> None:
    data = json.loads(found.read_text())
    data["timeline"][0][3] = "edited"
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    with pytest.raises(TraceError, match="digest"):
        load_trace(edited)
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"hello": 1}')
    with pytest.raises(TraceError, match="not a raftkube fuzz trace"):
        load_trace(foreign)
    result = subprocess.run(
        [sys.executable, "-m", "raftkube.cli", "fuzz", "replay", str(foreign)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "not a raftkube fuzz trace" in result.stderr


def test_ctrl_c_stops_a_run_at_the_next_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An interrupt must not land inside a simulated member (it would be judged a crash and
    shrunk as a failure): the run stops cleanly, reports what it did, and exits 130."""
    monkeypatch.chdir(tmp_path)
    # As in a terminal, whatever started pytest (a background job ignores Ctrl-C).
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupt = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGINT))
    interrupt.start()
    try:
        code = main(["fuzz", "run", "kv", "--time", "120s", "--seed", "3"])
        restored = signal.getsignal(signal.SIGINT)
    finally:
        interrupt.cancel()
        signal.signal(signal.SIGINT, before)
    out = capsys.readouterr().out
    assert code == 130, out
    assert "interrupted, no failure so far" in out
    assert "ERROR" not in out and "FAILED" not in out
    assert restored is signal.default_int_handler


def test_steps_round_trip_through_json() -> None:
    step = Step.of("partition", minority=[0, 2])
    assert Step.from_json(json.loads(json.dumps(step.to_json()))) == step
    assert step.describe() == "partition(minority=[0, 2])"
    with pytest.raises(ValueError):
        Step.from_json({"member": 1})


def test_unknown_mutant_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="no mutant named"):
        patch_for("no-such-bug")
