"""Latency summaries printed the way etcd's ``benchmark`` tool prints them, so figures from the
two can be read side by side."""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence

import attrs

PERCENTILES = (10, 25, 50, 75, 90, 95, 99, 99.9)


@attrs.frozen(slots=False)
class Summary:
    total_seconds: float
    latencies: tuple[float, ...]
    """Seconds per successful request, in completion order."""
    errors: int

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies) / self.total_seconds if self.total_seconds > 0 else 0.0

    @functools.cached_property
    def _ordered(self) -> tuple[float, ...]:
        """The latencies sorted once: the report asks for many percentiles of 10^4-10^5 of
        them, and the benchmark's CPU time per request includes the report."""
        return tuple(sorted(self.latencies))

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile, as etcd's report computes it."""
        ordered = self._ordered
        if not ordered:
            return math.nan
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1]


def render(summary: Summary, histogram_buckets: int = 10) -> str:
    lat = summary.latencies
    lines = ["", "Summary:", f"  Total:\t{summary.total_seconds:.4f} secs."]
    if lat:
        lines += [
            f"  Slowest:\t{max(lat):.4f} secs.",
            f"  Fastest:\t{min(lat):.4f} secs.",
            f"  Average:\t{statistics.fmean(lat):.4f} secs.",
            f"  Stddev:\t{statistics.pstdev(lat):.4f} secs.",
        ]
    lines.append(f"  Requests/sec:\t{summary.requests_per_second:.4f}")
    if summary.errors:
        lines.append(f"  Errors:\t{summary.errors}")
    if lat:
        lines += ["", "Response time histogram:", *_histogram(lat, histogram_buckets)]
        lines += ["", "Latency distribution:"]
        lines += [f"  {p:g}% in {summary.percentile(p):.4f} secs." for p in PERCENTILES]
    return "\n".join(lines) + "\n"


def _histogram(latencies: Sequence[float], buckets: int) -> list[str]:
    low, high = min(latencies), max(latencies)
    width = (high - low) / buckets or 1e-9
    counts = [0] * (buckets + 1)
    for value in latencies:
        counts[min(buckets, int((value - low) / width))] += 1
    peak = max(counts)
    return [
        f"  {low + n * width:.4f} [{count}]\t|{'∎' * (40 * count // peak if peak else 0)}"
        for n, count in enumerate(counts)
    ]
