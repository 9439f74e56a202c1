"""Publish benchmark: the blob-trigger handler's latency against a private Azurite.

For each index size (projects already present: 10, 1,000, 10,000 by default), each project size
(files already in the project the wheel goes into: 10, 1,000, 10,000) and each wheel size
(100 KB, 10 MB) it publishes new versions through the registered function with a real
InputStream, and records p50/p95 of the handler's own latency (the upload into `uploads` is not
timed) and the storage requests each publish makes. After each sample the new file is deleted
again (untimed), so every publish meets a project of the same size. A worker keeps the page it
wrote last, parsed, so successive publishes here skip parsing it; the 100 KB cells also time a
third as many publishes by a cold worker, which parses the page first. Big projects are seeded
directly (records, claims and the rendered page, as publishing leaves them; no file blobs, which
no publish reads), so the whole run takes minutes.

Then 16 publishers at once into one 1,000-file project: wall time, each publish's latency,
requests per publish, and whether every file is listed afterwards.

It also times bare Azurite operations at each index size, because Azurite itself (unlike Blob
Storage) slows down as the number of blobs grows: its blob delete, which every publish ends with,
is linear in the number of blobs in the account (LokiJS index maintenance).

    .venv/bin/python -m bench.publish [--sizes 10,1000,10000] [--files 10,1000,10000]
        [--samples 30] [--concurrent 16] [--crowd-files 1000] [--out FILE]
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
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name

from bench.common import RequestCounter, percentile, positive, write_figures
from devhost.standins.azurite import API_VERSION, start_azurite
from devhost.wheels import build_wheel
from shared.core import layout
from shared.core.negotiate import JSON_V1
from shared.core.pages import build_project_page, render_project_json
from shared.core.records import FileRecord
from shared.services.wiring import Services, build_services, install_services
from shared.settings import Settings
from tests.support.functions import blob_event, handler

RESULTS = Path(__file__).parent / "results" / "publish.json"
WHEEL_SIZES = {"100KB": 100 * 1024, "10MB": 10 * 1024 * 1024}
SEED_WORKERS = 16


def median_ms(action: Callable[[], object], runs: int = 20) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return round(statistics.median(timings) * 1000, 2)


def seed_record(project: NormalizedName, version: str) -> FileRecord:
    return FileRecord(
        project=project,
        name=project,
        version=version,
        filename=f"{project.replace('-', '_')}-{version}-py3-none-any.whl",
        sha256="0" * 64,
        size=1,
        upload_time=datetime(2026, 1, 1, tzinfo=UTC),
        metadata_sha256="0" * 64,
    )


def seed_project(services: Services, project: str, files: int) -> None:
    """A project of `files` files as publishing leaves it, but for the file blobs (which no
    publish reads): claim and record per file, then the page rendered from the records."""
    name = canonicalize_name(project)
    store = services.store
    records = [seed_record(name, f"0.{i}") for i in range(files)]

    def one(record: FileRecord) -> None:
        services.records.claim(record.filename)
        path = layout.record_path(name, record.filename)
        store.put(layout.INDEX, path, record.to_json(), content_type=layout.JSON_TYPE)

    with ThreadPoolExecutor(max_workers=SEED_WORKERS) as pool:
        list(pool.map(one, records))
    page = render_project_json(build_project_page(name, records))
    store.put(layout.INDEX, layout.project_json(name), page, content_type=JSON_V1)
    services.pages.add_project(name)


def seed_projects(services: Services, start: int, stop: int) -> None:
    """Add one-file projects start..stop-1 (file, claim, record, page), then the root page."""
    with ThreadPoolExecutor(max_workers=SEED_WORKERS) as pool:
        list(pool.map(lambda i: _seed_small(services, i), range(start, stop)))
    services.pages.rebuild_root()


def _seed_small(services: Services, i: int) -> None:
    store = services.store
    project = canonicalize_name(f"seed-{i:05d}")
    record = seed_record(project, "1.0")
    page = render_project_json(build_project_page(project, [record]))
    services.records.claim(record.filename)
    for path, data, kind in (
        (layout.file_path(project, record.filename), b"0", layout.BINARY_TYPE),
        (layout.record_path(project, record.filename), record.to_json(), layout.JSON_TYPE),
        (layout.project_json(project), page, JSON_V1),
    ):
        store.put(layout.INDEX, path, data, content_type=kind)


def publish_once(
    services: Services, counter: RequestCounter, project: str, version: str, size: int
) -> tuple[float, int]:
    """Publish one new wheel through the function; returns (seconds, storage requests).

    The request count is exact only when nothing else uses the client meanwhile.
    """
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
    path = layout.file_path(canonicalize_name(project), wheel.filename)
    if services.store.info(layout.INDEX, path) is None:
        raise RuntimeError(f"benchmark wheel {wheel.filename} was not published")
    return elapsed, requests


def storage_baseline(services: Services) -> dict[str, float]:
    """Bare Azurite operations, to tell the emulator's own scaling from the handler's."""
    store = services.store
    for i in range(5):
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


def target(files: int) -> str:
    return f"bench-p{files}"


def run(
    sizes: list[int], files: list[int], samples: int, crowd: tuple[int, int], out: Path
) -> dict[str, Any]:
    """`crowd`: (publishers at once, files already in the project they publish into)."""
    rows: list[dict[str, Any]] = []
    baselines: dict[str, dict[str, float]] = {}
    seeding: dict[str, float] = {}
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
            for size in files:
                started = time.perf_counter()
                seed_project(services, target(size), size)
                seeding[f"{size} files"] = round(time.perf_counter() - started, 1)
            seeded = 0
            for projects in sizes:
                started = time.perf_counter()
                seed_projects(services, seeded, projects)
                seeding[f"{projects} projects"] = round(time.perf_counter() - started, 1)
                seeded = projects
                baselines[str(projects)] = storage_baseline(services)
                for size in files:
                    for number, (label, wheel) in enumerate(WHEEL_SIZES.items()):
                        version = f"{projects}.{number}"
                        cell = measure_cell(services, counter, size, version, wheel, samples)
                        rows.append({"projects": projects, "project_files": size, "wheel": label})
                        rows[-1].update(cell)
                        print_row(rows[-1])
            at_once = concurrent_publishers(services, counter, *crowd)
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
        "concurrent_publishers": at_once,
        "seeding_seconds": seeding,
        "azurite_baseline_by_index_size": baselines,
        "ratio_p50_largest_vs_smallest_index": ratios(rows, "projects", sizes, files[0], "p50_ms"),
        "ratio_p50_less_azurite_delete": ratios(
            rows, "projects", sizes, files[0], "p50_ms_less_azurite_delete"
        ),
        "ratio_largest_vs_smallest_project": {
            str(projects): {
                "p50_ms": ratios(rows, "project_files", files, projects, "p50_ms"),
                "storage_requests_per_publish": ratios(
                    rows, "project_files", files, projects, "storage_requests_per_publish"
                ),
                "p50_ms_cold_worker": ratios(
                    rows, "project_files", files, projects, "p50_ms_cold_worker", ["100KB"]
                ),
            }
            for projects in sizes
        },
    }
    write_figures(out, result)
    for index_size, base in baselines.items():
        print(f"azurite alone at {index_size:>6} projects: {base}")
    return result


def measure_cell(
    services: Services, counter: RequestCounter, files: int, version: str, size: int, samples: int
) -> dict[str, Any]:
    """Publish `samples` new versions into the `files`-file project, deleting each again."""
    project = target(files)
    n = samples if size < 1024 * 1024 else max(3, samples // 3)
    timings: list[float] = []
    requests: list[int] = []
    cold: list[float] = []
    for i in range(n + (max(1, n // 3) if size < 1024 * 1024 else 0)):
        if i >= n:  # a worker that did not write the page last: it parses it
            services.pages.forget_written()
        elapsed, count = publish_once(services, counter, project, f"{version}.{i}", size)
        (timings if i < n else cold).append(elapsed)
        requests.append(count)
        filename = f"{project.replace('-', '_')}-{version}.{i}-py3-none-any.whl"
        services.manager.delete_file(project, filename)
    figures: dict[str, Any] = {
        "samples": n,
        "p50_ms": round(statistics.median(timings) * 1000, 2),
        "p95_ms": round(percentile(timings, 0.95) * 1000, 2),
        "storage_requests_per_publish": statistics.median(requests),
    }
    if cold:
        figures["p50_ms_cold_worker"] = round(statistics.median(cold) * 1000, 2)
    return figures


def concurrent_publishers(
    services: Services, counter: RequestCounter, publishers: int, files: int
) -> dict[str, Any]:
    """`publishers` new 100 KB wheels at once into one project of `files` files."""
    project = f"bench-crowd-{files}"
    seed_project(services, project, files)
    wheels = [build_wheel(project, f"9.{i}", payload_bytes=100 * 1024) for i in range(publishers)]
    events = []
    for wheel in wheels:
        etag = services.store.put(
            layout.UPLOADS, wheel.filename, wheel.data, content_type=layout.BINARY_TYPE
        )
        events.append(blob_event(layout.UPLOADS, wheel.filename, wheel.data, etag))
    publish = handler("publish_upload")
    gate = threading.Barrier(publishers)

    def one(event: Any) -> float:
        gate.wait()
        started = time.perf_counter()
        publish(event)
        return time.perf_counter() - started

    before = counter.count
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=publishers) as pool:
        timings = list(pool.map(one, events))
    wall = time.perf_counter() - started
    requests = counter.count - before
    page = services.store.get(layout.INDEX, layout.project_json(canonicalize_name(project)))
    listed = set() if page is None else {f["filename"] for f in json.loads(page.data)["files"]}
    lost = sorted(w.filename for w in wheels if w.filename not in listed)
    figures = {
        "publishers": publishers,
        "files_before": files,
        "files_listed_after": len(listed),
        "lost_files": lost,
        "wall_s": round(wall, 3),
        "p50_ms": round(statistics.median(timings) * 1000, 2),
        "max_ms": round(max(timings) * 1000, 2),
        "storage_requests_per_publish": round(requests / publishers, 1),
    }
    print(f"{publishers} publishers at once into {files} files: {figures}", flush=True)
    return figures


def ratios(
    rows: list[dict[str, Any]],
    axis: str,
    values: list[int],
    fixed: int,
    key: str,
    labels: list[str] | None = None,
) -> dict[str, float]:
    """Per wheel size: `key` at the largest over the smallest of `values` along `axis`."""
    other = "project_files" if axis == "projects" else "projects"
    found: dict[str, float] = {}
    for label in labels or list(WHEEL_SIZES):
        cell = [r for r in rows if r["wheel"] == label and r[other] == fixed]
        small = next(r for r in cell if r[axis] == values[0])
        large = next(r for r in cell if r[axis] == values[-1])
        found[label] = round(large[key] / small[key], 3)
    return found


def print_row(row: dict[str, Any]) -> None:
    print(
        f"{row['projects']:>6} projects {row['project_files']:>6} files  {row['wheel']:>6}  "
        f"n={row['samples']:<3} p50 {row['p50_ms']:>8} ms  p95 {row['p95_ms']:>8} ms  "
        f"requests/publish {row['storage_requests_per_publish']}"
        + (
            f"  cold worker p50 {row['p50_ms_cold_worker']} ms"
            if "p50_ms_cold_worker" in row
            else ""
        ),
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    logging.getLogger("azure").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description="wheelvault publish benchmark")
    parser.add_argument("--sizes", default="10,1000,10000", help="index sizes (projects)")
    parser.add_argument(
        "--files", default="10,1000,10000", help="project sizes (files already in the project)"
    )
    parser.add_argument("--samples", type=int, default=30, help="publishes per 100 KB cell")
    parser.add_argument("--concurrent", type=positive, default=16, help="publishers at once")
    parser.add_argument(
        "--crowd-files", type=positive, default=1000, help="files in their project beforehand"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    files = sorted(int(s) for s in args.files.split(","))
    result = run(sizes, files, args.samples, (args.concurrent, args.crowd_files), args.out)
    print("p50 ratio, largest vs smallest index:", result["ratio_p50_largest_vs_smallest_index"])
    print("the same, less Azurite's own delete time:", result["ratio_p50_less_azurite_delete"])
    print("largest vs smallest project:", result["ratio_largest_vs_smallest_project"])
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
