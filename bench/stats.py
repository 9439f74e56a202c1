"""Figures and request helpers shared by the benchmarks."""

from __future__ import annotations

import base64
import statistics
from typing import TypeVar

Number = TypeVar("Number", int, float)


def percentile(values: list[Number], q: float) -> Number:
    """Nearest-rank percentile of `values` (0 <= q <= 1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(timings_ns: list[int], unit: str) -> dict[str, float]:
    """p50/p99/mean/max of nanosecond timings, in `unit` ("us" or "ms")."""
    scale = {"us": 1_000, "ms": 1_000_000}[unit]
    return {
        f"p50_{unit}": round(percentile(timings_ns, 0.50) / scale, 3),
        f"p99_{unit}": round(percentile(timings_ns, 0.99) / scale, 3),
        f"mean_{unit}": round(statistics.fmean(timings_ns) / scale, 3),
        f"max_{unit}": round(max(timings_ns) / scale, 3),
    }


def basic_header(user: str, token: str) -> str:
    """What pip sends for `https://<user>:<token>@host/simple/`."""
    return "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode("ascii")
