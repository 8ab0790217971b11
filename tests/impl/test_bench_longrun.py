"""``raftkube bench longrun``'s arithmetic: the measures it reads from ``/proc`` and the
fresh-versus-aged summary. (The command itself starts two clusters and runs for minutes: it is
a benchmark, run by hand, with its figures in docs/performance.md.)"""

from __future__ import annotations

import os
from pathlib import Path

from raftkube.bench.longrun import (
    SAVED_SNAPSHOT,
    Round,
    count_saved_snapshots,
    cpu_seconds,
    dir_mib,
    rss_mib,
    summarize,
)


def test_proc_readings_of_this_process(tmp_path: Path) -> None:
    sum(range(200_000))  # some CPU, so the reading is not 0
    assert cpu_seconds(os.getpid()) > 0
    assert rss_mib(os.getpid()) > 1
    (tmp_path / "a").write_bytes(b"x" * 2**20)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"x" * 2**19)
    assert dir_mib(tmp_path) == 1.5


def _round(
    cluster: str, writes: int, rate: float, cpu: float, rss: float, snapshots: int = 0
) -> Round:
    return Round(
        cluster,
        writes,
        rate,
        0,
        cpu,
        (rss, rss + 1, rss + 2),
        (10.0, 20.0, 30.0),
        seconds=100 / rate,
        acknowledged=100,
        snapshots=snapshots,
    )


def test_summary_compares_only_the_alternated_rounds() -> None:
    rounds = [_round("aged", 100 * k, 9_000.0, 50.0, 100.0 + k) for k in range(1, 6)]
    rounds += [
        _round("fresh", 100, 10_000.0, 80.0, 50.0),
        _round("aged", 600, 9_000.0, 88.0, 106.0),
        _round("fresh", 200, 12_000.0, 100.0, 50.0),
        _round("aged", 700, 11_000.0, 90.0, 107.0),
    ]
    text = summarize(rounds, window=2)
    assert "fresh: 11,000 writes/s, 90 us" in text
    assert "aged:  10,000 writes/s (-9.1%), 89 us member CPU per write (-1.1%)" in text
    assert "ending at 600..700 writes" in text
    assert "peak RSS MiB per member: 107.0 108.0 109.0" in text
    assert "peak data dir MiB per member: 10.0 20.0 30.0" in text
    assert "no comparison" in summarize(rounds[:5], window=2)


def test_whole_windows_count_the_snapshot_rounds_the_medians_leave_out() -> None:
    """Three alternated rounds a side of 100 writes each; the aged cluster's one snapshot
    round is slow and costly, which its median does not show and the whole window does."""
    rounds = [
        _round("fresh", 100, 10_000.0, 100.0, 50.0),
        _round("aged", 600, 10_000.0, 100.0, 106.0),
        _round("fresh", 200, 10_000.0, 100.0, 50.0),
        _round("aged", 700, 2_500.0, 400.0, 107.0, snapshots=1),
        _round("fresh", 300, 10_000.0, 100.0, 50.0),
        _round("aged", 800, 10_000.0, 100.0, 108.0),
    ]
    text = summarize(rounds, window=3)
    assert "aged:  10,000 writes/s (+0.0%), 100 us member CPU per write (+0.0%)" in text
    assert (
        "fresh: 10,000 writes/s, 100 us member CPU per write, 0 of 3 rounds with a snapshot" in text
    )
    # 300 writes in 0.01 + 0.04 + 0.01 s; (100 + 400 + 100) us over 3 equal rounds.
    assert (
        "aged:  5,000 writes/s (-50.0%), 200 us member CPU per write (+100.0%), "
        "1 of 3 rounds with a snapshot" in text
    )


def test_saved_snapshots_are_counted_from_the_log_a_whole_line_at_a_time(
    tmp_path: Path,
) -> None:
    log = tmp_path / "member-0.log"
    assert count_saved_snapshots(log, 0) == (0, 0)  # no log yet
    line = b"02:16:49.118 INFO member 0" + SAVED_SNAPSHOT + b"10009 (2796025 bytes; ...)\n"
    log.write_bytes(line + b"02:16:50.000 INFO member 0: elected leader\n" + line[:30])
    count, offset = count_saved_snapshots(log, 0)
    assert count == 1 and offset == len(log.read_bytes()) - 30
    with open(log, "ab") as f:
        f.write(line[30:] + line)
    assert count_saved_snapshots(log, offset) == (2, len(log.read_bytes()))
