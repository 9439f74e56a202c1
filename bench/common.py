"""What the benchmarks share: figures, request counting, the auth header, argument types."""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import threading
from pathlib import Path
from typing import Any, TypeVar

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


class RequestCounter:
    """Counts HTTP requests an Azure SDK client sends: pass it as `raw_request_hook`."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, request: Any) -> None:
        with self._lock:
            self.count += 1


def positive(text: str) -> int:
    """argparse type: a whole number of at least one."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def machine(load_before: float) -> dict[str, object]:
    """The machine a run measured on. Other work on it shows up in every figure: the 1-minute
    load average before the run (`load_before`, from `os.getloadavg()`) and after it."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "system": f"{platform.system()} {platform.machine()}",
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    }


def write_figures(out: Path, result: dict[str, Any]) -> None:
    """A benchmark's figures as indented JSON at `out` (its folder made if need be)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
