"""The token benchmark still runs and writes its figures (tiny sizes: a smoke test only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import tokens as bench_tokens

pytestmark = pytest.mark.integration

TOKENS = 3


def _timed(figures: dict[str, Any], unit: str, samples: int) -> None:
    assert figures["samples"] == samples
    p50, p99, mean = figures[f"p50_{unit}"], figures[f"p99_{unit}"], figures[f"mean_{unit}"]
    assert p50 > 0
    assert mean > 0
    assert p99 >= p50
    assert figures[f"max_{unit}"] >= p99


def test_token_benchmark_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "tokens.json"
    argv = ["--warm-samples", "200", "--cold-samples", "5", "--tokens", str(TOKENS)]
    assert bench_tokens.main([*argv, "--out", str(out)]) == 0
    result = json.loads(out.read_text())

    assert result["benchmark"] == "tokens"
    assert result["at"]
    assert result["machine"]["python"]

    warm = result["warm"]
    _timed(warm, "us", 200)
    assert warm["vault_requests"] == 0
    assert result["goal"]["warm_p99_us"] == warm["p99_us"]
    assert result["goal"]["met"] == (warm["p99_us"] < result["goal"]["warm_p99_us_below"])

    cold = result["cold"]
    _timed(cold, "ms", 5)
    assert cold["vault_requests_per_verify"] >= 2  # list versions + get one value
    assert cold["back_to_back_vault_requests"] > 0

    refusal = result["refusal"]
    for case in ("bad_checksum", "unknown_value", "unknown_name"):
        _timed(refusal[case], "us", 200)
    assert refusal["bad_checksum"]["vault_requests"] == 0
    _timed(refusal["new_name_each_call"], "ms", 5)
    assert refusal["new_name_each_call"]["vault_requests_per_call"] >= 1

    assert result["vault_baseline"]["list_versions_ms"] > 0
    assert result["vault_baseline"]["get_value_ms"] > 0

    rotation = result["rotation"]
    assert rotation["tokens"] == TOKENS
    assert rotation["create_seconds"] > 0
    due, idle = rotation["due_run"], rotation["idle_run"]
    assert due["rotated"] == TOKENS
    assert due["index_urls_updated"] == TOKENS
    assert idle["rotated"] == 0
    assert idle["index_urls_updated"] == 0
    for run in (due, idle):
        assert run["seconds"] > 0
        assert run["vault_requests_per_token"] > 0
    assert due["vault_requests_per_token"] > idle["vault_requests_per_token"]
