"""``raftkube bench snapshot`` on a small store: every step is timed and reported, and the
snapshot it takes loads back to the store it was taken of (the command asserts that)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from raftkube.cli import main


def test_a_small_store_is_snapshotted_step_by_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", "snapshot", "--keys", "300", "--writes", "900", "--writes-between", "200"]
    argv += ["--retention", "100", "--repeat", "2", "--dir", str(tmp_path)]
    # The command tunes and freezes the collector as a member does: undo that for the tests
    # that run after it in this process.
    thresholds = gc.get_threshold()
    try:
        assert main(argv) == 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    out = capsys.readouterr().out
    assert "store: 300 keys, 400 records, revision 1,201, compacted at 1,101" in out
    assert "2 snapshots, 200 puts before each" in out
    for step in ("capture", "encode", "stage", "save", "core", "read", "load"):
        assert out.count(f"\n{step} ") == 2  # a wall and a CPU row
    for figure in ("image", "loop I/O", "loop late", "peak RSS", "RSS after"):
        assert f"\n{figure} " in out
    # The last two snapshot files kept (as a member keeps them), none half-written.
    assert [p.suffix for p in tmp_path.iterdir()] == [".snap", ".snap"]
    assert main([*argv[:2], "--writes-between", "-1"]) == 1
    assert main([*argv[:2], "--switch-interval", "0"]) == 1
