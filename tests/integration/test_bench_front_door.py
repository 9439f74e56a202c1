"""The front-door benchmark still runs and writes its figures (tiny sizes: a smoke test only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import front_door as bench_front_door

pytestmark = pytest.mark.integration

REQUESTS = 50
WORKERS = 2
SAMPLES = 50
WHEELS = 3


def test_front_door_benchmark_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "f.json"
    argv = [
        "--requests",
        str(REQUESTS),
        "--workers",
        str(WORKERS),
        "--handler-samples",
        str(SAMPLES),
        "--wheels",
        str(WHEELS),
        "--wheel-kb-min",
        "100",
        "--wheel-kb-max",
        "100",
        "--out",
        str(out),
    ]
    assert bench_front_door.main(argv) == 0
    result = json.loads(out.read_text())

    assert result["benchmark"] == "front_door"
    assert result["at"]
    assert result["machine"]["python"]

    rows = {(row["route"], row["workers"]): row for row in result["http"]}
    assert set(rows) == {(r, w) for r in ("simple_project", "files") for w in (1, WORKERS)}
    for row in rows.values():
        assert row["requests"] == REQUESTS
        assert row["requests_per_second"] > 0
        assert row["p50_ms"] > 0
        assert row["p99_ms"] >= row["p50_ms"]
    assert result["storage_baseline"]["get_page_ms"] > 0
    assert result["storage_baseline"]["info_file_ms"] > 0

    handlers = {row["function"]: row for row in result["handler_in_process"]["rows"]}
    assert set(handlers) == {"simple_project", "files"}
    for row in handlers.values():
        assert row["samples"] == SAMPLES
        assert row["p50_us"] > 0
        assert row["p99_us"] >= row["p50_us"]

    resolve = result["resolve"]
    assert resolve["wheels"] == WHEELS
    assert set(resolve["runs"]) == {"pip", "uv"}
    for client, runs in resolve["runs"].items():
        for index in ("wheelvault", "pypiserver"):
            run = runs[index]
            assert run["complete"] is True, (client, index)
            assert run["resolved"] == WHEELS
            assert run["bytes_downloaded"] > 0
            assert run["requests"] > 0
        assert set(runs["wheelvault"]["by_target"]) == {
            "wheelvault host",
            "azurite (SAS downloads)",
        }
        assert set(runs["pypiserver"]["by_target"]) == {"pypiserver"}
        assert "wheel" not in runs["wheelvault"]["by_kind"]  # resolved from .metadata alone
        ratio = runs["ratio_pypiserver_to_wheelvault"]
        expected = runs["pypiserver"]["bytes_downloaded"] / runs["wheelvault"]["bytes_downloaded"]
        assert ratio == pytest.approx(expected, abs=0.01)
    # pip has no PEP 658 files to use with pypiserver, so it downloads every wheel whole.
    assert (
        resolve["runs"]["pip"]["pypiserver"]["bytes_downloaded"] > resolve["wheel_bytes"]["total"]
    )
