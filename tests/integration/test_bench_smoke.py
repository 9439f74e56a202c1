"""The publish benchmark still runs and writes its figures (tiny sizes: a smoke test only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import publish as bench_publish

pytestmark = pytest.mark.integration


def test_publish_benchmark_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "publish.json"
    argv = ["--sizes", "2,4", "--files", "3", "--samples", "2", "--concurrent", "2"]
    assert bench_publish.main([*argv, "--crowd-files", "3", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    cells = {(row["projects"], row["wheel"]) for row in result["rows"]}
    assert cells == {(2, "100KB"), (2, "10MB"), (4, "100KB"), (4, "10MB")}
    for row in result["rows"]:
        assert row["p50_ms"] > 0
        assert row["p95_ms"] >= row["p50_ms"]
        assert row["storage_requests_per_publish"] > 0
    assert set(result["ratio_p50_largest_vs_smallest_index"]) == {"100KB", "10MB"}
    assert set(result["azurite_baseline_by_index_size"]) == {"2", "4"}
