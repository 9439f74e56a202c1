"""The publish benchmark's project-size axis and concurrent run still work and write their
figures (tiny sizes: a smoke test only; the real figures are in bench/results/publish.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import publish as bench_publish

pytestmark = pytest.mark.integration


def test_publish_benchmark_measures_project_sizes_and_concurrent_publishers(
    tmp_path: Path,
) -> None:
    out = tmp_path / "publish.json"
    argv = ["--sizes", "2,4", "--files", "3,30", "--samples", "2", "--concurrent", "4"]
    assert bench_publish.main([*argv, "--crowd-files", "30", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    cells = {(r["projects"], r["project_files"], r["wheel"]) for r in result["rows"]}
    assert cells == {(p, f, w) for p in (2, 4) for f in (3, 30) for w in ("100KB", "10MB")}
    requests = {r["storage_requests_per_publish"] for r in result["rows"]}
    assert len(requests) == 1, "a publish costs the same requests whatever the sizes"
    by_project = result["ratio_largest_vs_smallest_project"]
    assert set(by_project) == {"2", "4"}
    assert by_project["4"]["storage_requests_per_publish"] == {"100KB": 1.0, "10MB": 1.0}
    crowd = result["concurrent_publishers"]
    assert crowd["publishers"] == 4
    assert crowd["lost_files"] == []
    assert crowd["files_listed_after"] == 34
