"""The upload benchmark still runs and writes its figures (one run per cell: a smoke test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import upload as bench_upload

pytestmark = pytest.mark.integration


def test_upload_benchmark_writes_both_indexes_figures(tmp_path: Path) -> None:
    out = tmp_path / "upload.json"
    assert bench_upload.main(["--runs", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["sizes"]) == {"100 KB", "10 MB"}
    for row in result["sizes"].values():
        for index in ("wheelvault", "pypiserver"):
            assert len(row[index]["samples_ms"]) == 1
            assert row[index]["p50_ms"] > 0
        assert row["ratio_wheelvault_to_pypiserver_p50"] > 0
