"""The benchmark report: percentiles as etcd's tool computes them, and its layout."""

from __future__ import annotations

import math

from raftkube.bench.report import Summary, render


def test_nearest_rank_percentiles() -> None:
    s = Summary(total_seconds=2.0, latencies=tuple(n / 1000 for n in range(1, 101)), errors=0)
    assert s.percentile(50) == 0.050
    assert s.percentile(90) == 0.090
    assert s.percentile(99) == 0.099
    assert s.percentile(99.9) == 0.100
    assert s.requests_per_second == 50.0


def test_report_layout_matches_etcd_benchmark() -> None:
    s = Summary(total_seconds=1.0, latencies=(0.001, 0.002, 0.004), errors=1)
    text = render(s)
    for line in (
        "Summary:",
        "Requests/sec:\t3.0000",
        "Errors:\t1",
        "Latency distribution:",
        "  50% in 0.0020 secs.",
        "  99% in 0.0040 secs.",
        "Response time histogram:",
    ):
        assert line in text


def test_empty_run_reports_no_percentiles() -> None:
    s = Summary(total_seconds=0.5, latencies=(), errors=3)
    assert math.isnan(s.percentile(50))
    assert "Latency distribution" not in render(s)
