"""The Entra ID benchmark still runs and writes its figures (tiny sizes: a smoke test only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import entra as bench_entra

pytestmark = pytest.mark.integration

CHECKS = {
    "wheelvault": 200,
    "entra_repeated_token": 200,
    "wheelvault_authorize": 200,
    "entra_authorize": 200,
    "wheelvault_beside_new_tokens": 5,
    "entra_new_token": 5,
}


def test_entra_benchmark_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "entra.json"
    assert bench_entra.main(["--samples", "200", "--fresh-samples", "5", "--out", str(out)]) == 0
    result = json.loads(out.read_text())

    assert result["benchmark"] == "entra"
    assert result["at"]
    assert result["machine"]["python"]
    assert {name: row["samples"] for name, row in result["checks"].items()} == CHECKS
    for row in result["checks"].values():
        assert 0 < row["p50_us"] <= row["p99_us"] <= row["max_us"]
        assert row["mean_us"] > 0
    ratios = result["ratios"]
    checks = result["checks"]
    assert ratios["warm_p50"] == round(
        checks["entra_repeated_token"]["p50_us"] / checks["wheelvault"]["p50_us"], 2
    )
    assert result["goal"]["warm_ratio_p50"] == ratios["warm_p50"]
    assert result["goal"]["met"] == (ratios["warm_p50"] <= result["goal"]["warm_ratio_p50_at_most"])
    assert result["key_fetches"] == 1  # the keys were read once, at the first check
    assert any("entra.py" in line for line in result["new_token_profile"])
