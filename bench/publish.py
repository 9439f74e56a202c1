"""Publish benchmark: handler latency against a private Azurite, by index size and wheel size.

For each index size (projects already present) it publishes new versions of a 100 KB and a
10 MB wheel into an existing project through the registered blob-trigger function, and records
p50/p95 of the handler's own latency (the upload into `uploads` is not timed). The goal is that
publishing costs the same whatever the number of projects.

    .venv/bin/python -m bench.publish [--sizes 10,1000,10000] [--samples 30] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from packaging.utils import canonicalize_name

from devhost.azurite import API_VERSION, start_azurite
from shared.core import layout
from shared.core.pages import build_project_page, render_project_html, render_project_json
from shared.core.records import FileRecord
from shared.services.app import get_services, reset_services
from tests.support.functions import blob_event, handler
from tests.support.wheels import BuiltWheel, build_wheel

RESULTS = Path(__file__).parent / "results" / "publish.json"
TARGET = "bench-target"
WHEEL_SIZES = {"100KB": 100 * 1024, "10MB": 10 * 1024 * 1024}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def seed_projects(start: int, stop: int) -> None:
    """Add projects start..stop-1 as the publish path would leave them (record + pages + file)."""
    store = get_services().store

    def one(i: int) -> None:
        project = f"seed-{i:05d}"
        wheel_name = f"seed_{i:05d}-1.0-py3-none-any.whl"
        record = FileRecord(
            project=project,
            name=project,
            version="1.0",
            filename=wheel_name,
            sha256="0" * 64,
            size=1,
            upload_time=datetime.now(UTC),
            metadata_sha256="0" * 64,
        )
        page = build_project_page(record.normalized_project, [record])
        store.put(
            layout.INDEX,
            layout.file_path(record.normalized_project, wheel_name),
            b"0",
            content_type=layout.BINARY_TYPE,
        )
        store.put(
            layout.INDEX,
            layout.record_path(record.normalized_project, wheel_name),
            record.to_json(),
            content_type=layout.JSON_TYPE,
        )
        store.put(
            layout.INDEX,
            layout.project_json(record.normalized_project),
            render_project_json(page),
            content_type=layout.JSON_PAGE_TYPE,
        )
        store.put(
            layout.INDEX,
            layout.project_html(record.normalized_project),
            render_project_html(page),
            content_type=layout.HTML_TYPE,
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one, range(start, stop)))
    get_services().pages.refresh_root()


def publish_once(wheel: BuiltWheel) -> float:
    store = get_services().store
    etag = store.put(layout.UPLOADS, wheel.filename, wheel.data, content_type=layout.BINARY_TYPE)
    publish = handler("publish_upload")
    stream = blob_event(layout.UPLOADS, wheel.filename, wheel.data, etag)
    started = time.perf_counter()
    publish(stream)
    elapsed = time.perf_counter() - started
    if (
        store.info(layout.INDEX, layout.file_path(canonicalize_name(TARGET), wheel.filename))
        is None
    ):
        raise RuntimeError(f"benchmark wheel {wheel.filename} was not published")
    return elapsed


def run(sizes: list[int], samples: int, out: Path) -> dict[str, object]:
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="wheelvault-bench-") as tmp:
        azurite = start_azurite(Path(tmp) / "azurite")
        try:
            os.environ["WHEELVAULT_STORAGE"] = azurite.connection_string
            os.environ["WHEELVAULT_STORAGE_API_VERSION"] = API_VERSION
            reset_services()
            get_services().store.ensure_containers(layout.CONTAINERS)
            counter = 0
            for size in WHEEL_SIZES.values():  # a warm-up publish creates the target
                publish_once(build_wheel(TARGET, f"0.0.{counter}", payload_bytes=size))
                counter += 1
            seeded = 0
            for projects in sizes:
                seed_projects(seeded, projects)
                seeded = projects
                for label, size in WHEEL_SIZES.items():
                    n = samples if size < 1024 * 1024 else max(3, samples // 3)
                    timings = []
                    for _ in range(n):
                        counter += 1
                        wheel = build_wheel(TARGET, f"1.0.{counter}", payload_bytes=size)
                        timings.append(publish_once(wheel))
                    rows.append(
                        {
                            "projects": projects,
                            "wheel": label,
                            "samples": n,
                            "p50_ms": round(statistics.median(timings) * 1000, 2),
                            "p95_ms": round(percentile(timings, 0.95) * 1000, 2),
                        }
                    )
                    print_row(rows[-1])
        finally:
            azurite.stop()
    result = {
        "benchmark": "publish",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "rows": rows,
        "ratio_p50_largest_vs_smallest_index": ratios(rows, sizes),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def ratios(rows: list[dict[str, object]], sizes: list[int]) -> dict[str, float]:
    found: dict[str, float] = {}
    for label in WHEEL_SIZES:
        small = next(r for r in rows if r["projects"] == sizes[0] and r["wheel"] == label)
        large = next(r for r in rows if r["projects"] == sizes[-1] and r["wheel"] == label)
        found[label] = round(float(large["p50_ms"]) / float(small["p50_ms"]), 3)  # type: ignore[arg-type]
    return found


def print_row(row: dict[str, object]) -> None:
    print(
        f"{row['projects']:>8} projects  {row['wheel']:>6}  n={row['samples']:<3} "
        f"p50 {row['p50_ms']:>8} ms  p95 {row['p95_ms']:>8} ms",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sizes", default="10,1000,10000", help="index sizes (projects), ascending"
    )
    parser.add_argument("--samples", type=int, default=30, help="publishes per 100 KB cell")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    result = run(sizes, args.samples, args.out)
    print("p50 ratio, largest vs smallest index:", result["ratio_p50_largest_vs_smallest_index"])
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
