"""``raftkube bench longrun``'s arithmetic: the measures it reads from ``/proc`` and the
fresh-versus-aged summary. (The command itself starts two clusters and runs for minutes: it is
a benchmark, run by hand, with its figures in docs/performance.md.)"""

from __future__ import annotations

import os
from pathlib import Path

from raftkube.bench.longrun import Round, cpu_seconds, dir_mib, rss_mib, summarize


def test_proc_readings_of_this_process(tmp_path: Path) -> None:
    sum(range(200_000))  # some CPU, so the reading is not 0
    assert cpu_seconds(os.getpid()) > 0
    assert rss_mib(os.getpid()) > 1
    (tmp_path / "a").write_bytes(b"x" * 2**20)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"x" * 2**19)
    assert dir_mib(tmp_path) == 1.5


def _round(cluster: str, writes: int, rate: float, cpu: float, rss: float) -> Round:
    return Round(cluster, writes, rate, 0, cpu, (rss, rss + 1, rss + 2), (10.0, 20.0, 30.0))


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
