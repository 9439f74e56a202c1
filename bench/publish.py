"""Publish benchmark: the blob-trigger handler's latency against a private Azurite.

For each index size (projects already present: 10, 1,000, 10,000 by default) and each wheel size
(100 KB, 10 MB) it publishes new versions into a project that holds five files, through the
registered function with a real InputStream, and records p50/p95 of the handler's own latency
(the upload into `uploads` is not timed). After each sample the new file is deleted again
(untimed), so every publish meets the same project. It also counts the storage requests each
publish makes, and times bare Azurite operations at each index size, because Azurite itself
(unlike Blob Storage) slows down as the number of blobs grows: its blob delete, which every
publish ends with, is linear in the number of blobs in the account (LokiJS index maintenance).

    .venv/bin/python -m bench.publish [--sizes 10,1000,10000] [--samples 30] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from bench.common import RequestCounter, percentile
from devhost.azurite import API_VERSION, start_azurite
from devhost.wheels import build_wheel
from shared.core import layout
from shared.core.pages import build_project_page, render_project_html, render_project_json
from shared.core.records import FileRecord
from shared.services.app import Services, build_services, install_services
from shared.settings import Settings
from tests.support.functions import blob_event, handler

RESULTS = Path(__file__).parent / "results" / "publish.json"
WHEEL_SIZES = {"100KB": 100 * 1024, "10MB": 10 * 1024 * 1024}
FILES_IN_TARGET = 5


def median_ms(action: Callable[[], object], runs: int = 20) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return round(statistics.median(timings) * 1000, 2)


def seed_projects(services: Services, start: int, stop: int) -> None:
    """Add projects start..stop-1 as publishing leaves them: file, record and both pages."""
    store = services.store

    def one(i: int) -> None:
        project = canonicalize_name(f"seed-{i:05d}")
        filename = f"seed_{i:05d}-1.0-py3-none-any.whl"
        record = FileRecord(
            project=project,
            name=project,
            version="1.0",
            filename=filename,
            sha256="0" * 64,
            size=1,
            upload_time=datetime.now(UTC),
            metadata_sha256="0" * 64,
        )
        page = build_project_page(project, [record])
        for path, data, kind in (
            (layout.file_path(project, filename), b"0", layout.BINARY_TYPE),
            (layout.record_path(project, filename), record.to_json(), layout.JSON_TYPE),
            (layout.project_json(project), render_project_json(page), layout.JSON_PAGE_TYPE),
            (layout.project_html(project), render_project_html(page), layout.HTML_TYPE),
        ):
            store.put(layout.INDEX, path, data, content_type=kind)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one, range(start, stop)))
    services.pages.refresh_root()


def publish_once(
    services: Services, counter: RequestCounter, project: str, version: str, size: int
) -> tuple[float, int]:
    """Publish one new wheel through the function; returns (seconds, storage requests)."""
    wheel = build_wheel(project, version, payload_bytes=size)
    etag = services.store.put(
        layout.UPLOADS, wheel.filename, wheel.data, content_type=layout.BINARY_TYPE
    )
    stream = blob_event(layout.UPLOADS, wheel.filename, wheel.data, etag)
    publish = handler("publish_upload")
    requests_before = counter.count
    started = time.perf_counter()
    publish(stream)
    elapsed = time.perf_counter() - started
    requests = counter.count - requests_before
    if (
        services.store.info(
            layout.INDEX, layout.file_path(canonicalize_name(project), wheel.filename)
        )
        is None
    ):
        raise RuntimeError(f"benchmark wheel {wheel.filename} was not published")
    return elapsed, requests


def storage_baseline(services: Services) -> dict[str, float]:
    """Bare Azurite operations, to tell the emulator's own scaling from the handler's."""
    store = services.store
    for i in range(FILES_IN_TARGET):
        store.put(layout.INDEX, f"baseline/{i}", b"x", content_type=layout.BINARY_TYPE)
    counter = iter(range(10**9))

    def put_then_delete() -> None:
        name = f"baseline-delete/{next(counter)}"
        store.put(layout.UPLOADS, name, b"x", content_type=layout.BINARY_TYPE)
        started = time.perf_counter()
        store.delete(layout.UPLOADS, name)
        deletes.append(time.perf_counter() - started)

    deletes: list[float] = []
    for _ in range(20):
        put_then_delete()
    return {
        "head_ms": median_ms(lambda: store.info(layout.INDEX, "baseline/0")),
        "put_1kb_ms": median_ms(
            lambda: store.put(layout.INDEX, "baseline/put", b"x" * 1024, content_type="x/y")
        ),
        "list_5_ms": median_ms(lambda: list(store.list(layout.INDEX, "baseline/"))),
        "delete_ms": round(statistics.median(deletes) * 1000, 2),
    }


def run(sizes: list[int], samples: int, out: Path) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    baselines: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="wheelvault-bench-") as tmp:
        azurite = start_azurite(Path(tmp) / "azurite")
        try:
            counter = RequestCounter()
            settings = Settings.model_validate(
                {
                    "WHEELVAULT_STORAGE": azurite.connection_string,
                    "WHEELVAULT_STORAGE_API_VERSION": API_VERSION,
                }
            )
            services = build_services(settings, raw_request_hook=counter)
            install_services(services)
            services.store.ensure_containers(layout.CONTAINERS)
            seeded = 0
            for projects in sizes:
                seed_projects(services, seeded, projects)
                seeded = projects
                baselines[str(projects)] = storage_baseline(services)
                for label, size in WHEEL_SIZES.items():
                    rows.append(measure_cell(services, counter, projects, label, size, samples))
                    print_row(rows[-1])
        finally:
            install_services(None)
            azurite.stop()
    for row in rows:
        # The part of the latency that is not Azurite's own O(blobs) delete (see module doc).
        delete_ms = baselines[str(row["projects"])]["delete_ms"]
        row["p50_ms_less_azurite_delete"] = round(row["p50_ms"] - delete_ms, 2)
    result = {
        "benchmark": "publish",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "storage": "Azurite 3.37 on loopback (HTTP)",
        "rows": rows,
        "azurite_baseline_by_index_size": baselines,
        "ratio_p50_largest_vs_smallest_index": ratios(rows, sizes, "p50_ms"),
        "ratio_p50_less_azurite_delete": ratios(rows, sizes, "p50_ms_less_azurite_delete"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for index_size, base in baselines.items():
        print(f"azurite alone at {index_size:>6} projects: {base}")
    return result


def measure_cell(
    services: Services, counter: RequestCounter, projects: int, label: str, size: int, samples: int
) -> dict[str, Any]:
    target = f"bench-{projects}-{label.lower()}"
    for i in range(FILES_IN_TARGET):
        publish_once(services, counter, target, f"0.{i}", 1024)
    n = samples if size < 1024 * 1024 else max(3, samples // 3)
    timings: list[float] = []
    requests: list[int] = []
    for i in range(n):
        version = f"1.{i}"
        elapsed, count = publish_once(services, counter, target, version, size)
        timings.append(elapsed)
        requests.append(count)
        services.admin.delete_file(target, f"{target.replace('-', '_')}-{version}-py3-none-any.whl")
    return {
        "projects": projects,
        "wheel": label,
        "samples": n,
        "p50_ms": round(statistics.median(timings) * 1000, 2),
        "p95_ms": round(percentile(timings, 0.95) * 1000, 2),
        "storage_requests_per_publish": statistics.median(requests),
    }


def ratios(rows: list[dict[str, Any]], sizes: list[int], key: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for label in WHEEL_SIZES:
        small = next(r for r in rows if r["projects"] == sizes[0] and r["wheel"] == label)
        large = next(r for r in rows if r["projects"] == sizes[-1] and r["wheel"] == label)
        found[label] = round(large[key] / small[key], 3)
    return found


def print_row(row: dict[str, Any]) -> None:
    print(
        f"{row['projects']:>8} projects  {row['wheel']:>6}  n={row['samples']:<3} "
        f"p50 {row['p50_ms']:>8} ms  p95 {row['p95_ms']:>8} ms  "
        f"requests/publish {row['storage_requests_per_publish']}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("azure").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description="wheelvault publish benchmark")
    parser.add_argument("--sizes", default="10,1000,10000", help="index sizes (projects)")
    parser.add_argument("--samples", type=int, default=30, help="publishes per 100 KB cell")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    result = run(sizes, args.samples, args.out)
    print("p50 ratio, largest vs smallest index:", result["ratio_p50_largest_vs_smallest_index"])
    print("the same, less Azurite's own delete time:", result["ratio_p50_less_azurite_delete"])
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
